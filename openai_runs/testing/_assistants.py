"""Assistants the emulator knows, and what a run inherits from one.

By default the emulator accepts any `assistant_id` (a test rarely wants to
create assistants first) and a run inherits nothing. Registered assistants
give runs their model, instructions, tools, temperature, top_p and response
format unless the run's request overrides them, as the live API does. In
strict mode an id that is not registered is the API's 404.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import attrs

JSON = dict[str, Any]


def _tools(tools: Iterable[JSON]) -> tuple[JSON, ...]:
    return tuple(tools)


@attrs.frozen(kw_only=True)
class Assistant:
    """An assistant registered with the emulator.

    Attributes:
        id: The assistant's id (`asst_…`).
        model: The model runs use unless they name one.
        instructions: The instructions runs use unless they give their own
            (`additional_instructions` are appended either way).
        tools: The tools runs use unless they give their own, as the API's
            tool objects.
        temperature: Runs' temperature unless they set one; `None`: 1.0.
        top_p: Runs' top_p unless they set one; `None`: 1.0.
        response_format: Runs' response format unless they set one; `None`:
            `"auto"`.
    """

    id: str
    model: str = "gpt-4o"
    instructions: str = ""
    tools: tuple[JSON, ...] = attrs.field(default=(), converter=_tools)
    temperature: float | None = None
    top_p: float | None = None
    response_format: Any = None

    def defaults(self) -> JSON:
        """Return the create-run body fields a run inherits, by body key."""
        inherited: JSON = {
            "model": self.model,
            "instructions": self.instructions,
            "tools": [dict(tool) for tool in self.tools],
            "temperature": self.temperature,
            "top_p": self.top_p,
            "response_format": self.response_format,
        }
        return {key: value for key, value in inherited.items() if value is not None}


class Assistants:
    """The registered assistants, and whether unknown ids are refused."""

    def __init__(self, assistants: Iterable[Assistant] = (), *, strict: bool) -> None:
        self.strict = strict
        self._known = {assistant.id: assistant for assistant in assistants}
        self._lock = threading.Lock()

    def add(self, assistant: Assistant) -> None:
        """Register *assistant*, replacing one with the same id."""
        with self._lock:
            self._known[assistant.id] = assistant

    def all(self) -> list[Assistant]:
        """Return every registered assistant."""
        with self._lock:
            return list(self._known.values())

    def apply(self, body: JSON) -> JSON:
        """Return a create-run *body* with what its assistant gives it.

        A field the body sets (even to an empty list of tools) wins; one it
        leaves out or sets to null comes from the assistant.

        Raises:
            LookupError: In strict mode, for an assistant not registered.
        """
        assistant_id = body["assistant_id"]
        with self._lock:
            assistant = self._known.get(assistant_id)
        if assistant is None:
            if self.strict:
                raise LookupError(assistant_id)
            return body
        merged = dict(body)
        for key, value in assistant.defaults().items():
            if merged.get(key) is None:
                merged[key] = value
        return merged
