"""Threads, runs and steps, with run lifecycles evaluated lazily.

No task runs in the background: each run keeps a small heap of timed events
(phase changes, steps appearing and finishing) and applies the due ones
whenever it is read. Reading a run whose next event is in the future costs a
comparison, so tens of thousands of runs can be watched at once.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import attrs

from ._assistants import Assistants
from ._clock import Clock
from ._ratelimit import RateLimit, RateLimiter
from ._script import TERMINAL, Fault, Phase, RunScript, ScriptedCall

JSON = dict[str, Any]
FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"

# A step's status when its run ends while the step is still in progress.
_STEP_END = {
    "completed": "completed",
    "incomplete": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "expired": "expired",
}
_sequence = itertools.count()
_COMPLETES = RunScript.completed()
_ASKS_FOR_OUTPUTS = RunScript.requires_action()


def new_id(prefix: str) -> str:
    """Return a fresh id in the API's style, such as `run_…` (`file-…` for files)."""
    return f"{prefix}{'-' if prefix == 'file' else '_'}{secrets.token_hex(12)}"


class ApiError(Exception):
    """An error the emulator answers with, in the API's error body.

    Args:
        status: The HTTP status.
        message: The human-readable message.
        param: The request parameter at fault, if any.
        code: The API's machine-readable code, if any.
        type: The API's error type.
        headers: Extra response headers, such as `Retry-After`.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.body: JSON = {
            "error": {"message": message, "type": type, "param": param, "code": code}
        }


@attrs.define
class RequestCounts:
    """How many API requests the emulator has answered.

    Attributes:
        total: All API requests, control channel excluded.
        by_run: Requests whose path names a run, by run id.
        retrieves: `GET` requests for a run (retrieves), by run id.
    """

    total: int = 0
    by_run: Counter[str] = attrs.Factory(Counter)
    retrieves: Counter[str] = attrs.Factory(Counter)

    def record(self, run_id: str | None, *, retrieve: bool) -> None:
        """Count one request, about *run_id* if given."""
        self.total += 1
        if run_id is not None:
            self.by_run[run_id] += 1
            if retrieve:
                self.retrieves[run_id] += 1

    def to_json(self) -> JSON:
        """Return the counts as the control channel's `stats` body."""
        return {
            "requests": self.total,
            "runs": {
                run_id: {"requests": n, "retrieves": self.retrieves[run_id]}
                for run_id, n in self.by_run.items()
            },
        }


def check_metadata(metadata: object, param: str = "metadata") -> dict[str, str]:
    """Return *metadata* if it keeps the API's limits, else raise `ApiError`.

    The limits are stated only in the API's prose: 16 keys, keys up to 64
    characters, string values up to 512 characters.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ApiError(
            400,
            f"Invalid type for '{param}': expected an object, but got "
            f"{type(metadata).__name__} instead.",
            param=param,
            code="invalid_type",
        )
    if len(metadata) > 16:
        raise ApiError(
            400,
            f"Invalid '{param}': too many properties. Expected an object with at "
            f"most 16 properties, but got an object with {len(metadata)} "
            "properties instead.",
            param=param,
            code="object_above_max_properties",
        )
    for key, value in metadata.items():
        if len(key) > 64:
            raise ApiError(
                400,
                f"Invalid '{param}': keys must be at most 64 characters, but got a "
                f"key with length {len(key)}.",
                param=param,
                code="invalid_value",
            )
        if not isinstance(value, str):
            raise ApiError(
                400,
                f"Invalid type for '{param}.{key}': expected a string, but got "
                f"{type(value).__name__} instead.",
                param=f"{param}.{key}",
                code="invalid_type",
            )
        if len(value) > 512:
            raise ApiError(
                400,
                f"Invalid '{param}.{key}': string too long. Expected a string with "
                f"maximum length 512, but got a string with length {len(value)} "
                "instead.",
                param=f"{param}.{key}",
                code="string_above_max_length",
            )
    return dict(metadata)


class _Step:
    __slots__ = (
        "completed",
        "created",
        "details",
        "ended_at",
        "id",
        "status",
        "usage",
    )

    def __init__(self, created: float, details: JSON) -> None:
        self.id = new_id("step")
        self.created = created
        self.details = details
        self.status = "in_progress"
        self.ended_at: int | None = None
        self.completed = False
        # (prompt, completion) tokens, once the step has completed.
        self.usage: tuple[int, int] | None = None


class Run:
    """One run: its request fields, its script and where it is in it."""

    def __init__(
        self,
        *,
        thread_id: str,
        fields: JSON,
        script: RunScript,
        now: float,
        expires_after: float | None,
        cancel_delay: float,
    ) -> None:
        self.id = new_id("run")
        self.thread_id = thread_id
        self.fields = fields
        self.script = script
        self.created_at = int(now)
        self.cancel_delay = (
            cancel_delay if script.cancel_delay is None else script.cancel_delay
        )
        self.expires: float | None = (
            None if expires_after is None else now + expires_after
        )
        self.expires_at = None if self.expires is None else int(self.expires)
        self.status: str = "queued"
        self.phase = 0
        self.started_at: int | None = None
        self.ended_at: int | None = None
        self.required_action: JSON | None = None
        self.steps: list[_Step] = []
        self._events: list[tuple[float, int, Callable[[float], None]]] = []
        self._tools_run = False
        self._waiting: _Step | None = None
        # Calls still to ask for, one at a time, when parallel_tool_calls is off.
        self._queued_calls: list[ScriptedCall] = []
        # Each completed step's (prompt, completion) tokens, once known.
        self._share: tuple[int, int] | None = None
        # Called once when the run ends: the thread appends the reply.
        self.on_end: Callable[[Run, float], None] | None = None
        self._enter(0, now)

    # -- the lifecycle ------------------------------------------------------

    def advance(self, now: float) -> None:
        """Apply every event due by *now*, then expiry if it has come."""
        horizon = now if self.expires is None else min(now, self.expires)
        events = self._events
        while events and events[0][0] <= horizon:
            when, _, action = heapq.heappop(events)
            action(when)
        if self.expires is not None and now >= self.expires:
            self._end("expired", self.expires)

    def cancel(self, now: float) -> None:
        """Start cancelling: `cancelling` now, `cancelled` after the delay.

        Raises:
            ApiError: If the run has ended or is already cancelling.
        """
        if self.status in TERMINAL or self.status == "cancelling":
            raise ApiError(400, f"Cannot cancel run with status '{self.status}'.")
        self.status = "cancelling"
        self.required_action = None
        self._events.clear()
        self._at(now + self.cancel_delay, lambda when: self._end("cancelled", when))

    def submit(self, outputs: dict[str, str], now: float) -> None:
        """Take tool outputs and move on to the phase after `requires_action`.

        Raises:
            ApiError: If the run is not waiting for these tool outputs.
        """
        if self.status != "requires_action" or self._waiting is None:
            raise ApiError(
                400, f'Runs in status "{self.status}" do not accept tool outputs.'
            )
        step = self._waiting
        expected = [call["id"] for call in step.details["tool_calls"]]
        if sorted(outputs) != sorted(expected):
            raise ApiError(
                400,
                f"Expected tool outputs for call_ids {expected}, got {list(outputs)}.",
                param="tool_outputs",
            )
        for call in step.details["tool_calls"]:
            call["function"]["output"] = outputs[call["id"]]
        self._finish(step, "completed", now)
        self._waiting = None
        self.required_action = None
        if self._queued_calls:
            # Without parallel tool calls the model asks again, for the next.
            self._ask(self._queued_calls.pop(0), now=now)
            return
        self._enter(self.phase + 1, now)

    def rescript(self, script: RunScript, now: float) -> None:
        """Follow *script* from its first phase, starting now.

        Raises:
            ApiError: If the run has already ended.
        """
        if self.status in TERMINAL:
            raise ApiError(400, f"Cannot script run with status '{self.status}'.")
        self._events.clear()
        for step in self.steps:
            if step.status == "in_progress":
                self._finish(step, "completed", now)
        self._waiting = None
        self._queued_calls = []
        self._share = None
        self.required_action = None
        self.script = script
        if script.cancel_delay is not None:
            self.cancel_delay = script.cancel_delay
        self._enter(0, now)

    def _at(self, when: float, action: Callable[[float], None]) -> None:
        heapq.heappush(self._events, (when, next(_sequence), action))

    def _enter(self, index: int, now: float) -> None:
        self.phase = index
        phase = self.script.phases[index]
        if phase.status in TERMINAL:
            self._end(phase.status, now)
            return
        if phase.status == "requires_action" and not self.may_call_functions:
            # tool_choice "none" (or another tool forced): the model calls no
            # function, so the run goes straight on.
            self._enter(index + 1, now)
            return
        self.status = phase.status
        if phase.status == "requires_action":
            self._ask_for_outputs(phase, now)
            return
        if phase.status == "in_progress":
            if self.started_at is None:
                self.started_at = int(now)
            self._plan_steps(index, now, phase.seconds)
        if phase.seconds is not None:
            self._at(now + phase.seconds, lambda when: self._enter(index + 1, when))

    def _end(self, status: str, now: float) -> None:
        self.status = status
        self.ended_at = int(now)
        self.required_action = None
        self._events.clear()
        self.expires = None
        if status != "expired":
            self.expires_at = None
        for step in self.steps:
            if step.status == "in_progress":
                self._finish(step, _STEP_END[status], now)
        if self.on_end is not None:
            on_end, self.on_end = self.on_end, None
            on_end(self, now)

    def _plan_steps(self, index: int, now: float, seconds: float | None) -> None:
        # Steps spread evenly over the phase; the last one is still in
        # progress when the phase ends and finishes as the run ends.
        phases = self.script.phases
        after = phases[index + 1].status if index + 1 < len(phases) else None
        planned: list[JSON] = []
        if not self._tools_run:
            self._tools_run = True
            planned += [
                _tool_step(tool["type"])
                for tool in self.fields["tools"]
                if tool["type"] in _STEP_TOOLS
            ]
        if after != "requires_action":
            planned.append(
                {
                    "type": "message_creation",
                    "message_creation": {"message_id": new_id("msg")},
                }
            )
        if not planned:
            return
        share = 0.0 if seconds is None else seconds / len(planned)
        for i, details in enumerate(planned):
            last = i == len(planned) - 1
            step = _Step(now + i * share, details)
            self._at(step.created, functools.partial(self._show, step))
            if not last or (seconds is not None and after not in TERMINAL):
                self._at(step.created + share, functools.partial(self._complete, step))

    def _show(self, step: _Step, _: float) -> None:
        self.steps.append(step)

    def _complete(self, step: _Step, now: float) -> None:
        self._finish(step, "completed", now)

    @property
    def may_call_functions(self) -> bool:
        """Whether the run's `tool_choice` lets the model call a function."""
        choice = self.fields["tool_choice"]
        if isinstance(choice, dict):
            return bool(choice["type"] == "function")
        return bool(choice != "none")

    def _ask_for_outputs(self, phase: Phase, now: float) -> None:
        calls = phase.tool_calls or tuple(
            ScriptedCall(tool["function"]["name"])
            for tool in self.fields["tools"]
            if tool["type"] == "function"
        )
        calls = calls or (ScriptedCall("lookup"),)
        choice = self.fields["tool_choice"]
        if isinstance(choice, dict):
            # A forced function: the model calls that one and no other.
            name = choice["function"]["name"]
            calls = tuple(c for c in calls if c.name == name) or (ScriptedCall(name),)
        if self.fields["parallel_tool_calls"] is False:
            first, *rest = calls
            self._queued_calls = rest
            calls = (first,)
        self._ask(*calls, now=now)

    def _ask(self, *calls: ScriptedCall, now: float) -> None:
        ids = [new_id("call") for _ in calls]
        self.required_action = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call_id, call in zip(ids, calls, strict=True)
                ]
            },
        }
        step = _Step(
            now,
            {
                "type": "tool_calls",
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {
                            "name": call.name,
                            "arguments": call.arguments,
                            "output": None,
                        },
                    }
                    for call_id, call in zip(ids, calls, strict=True)
                ],
            },
        )
        self.steps.append(step)
        self._waiting = step

    def _finish(self, step: _Step, status: str, now: float) -> None:
        step.status = status
        step.ended_at = int(now)
        if status == "completed":
            step.usage = self._step_usage(step)
        for call in step.details.get("tool_calls", ()):
            if call["type"] == "code_interpreter" and status == "completed":
                call["code_interpreter"]["outputs"] = [
                    {"type": "logs", "logs": "42.0\n"}
                ]

    # -- usage --------------------------------------------------------------

    def _step_usage(self, step: _Step) -> tuple[int, int]:
        """The tokens one completed step used.

        The script's totals are shared out over the steps its path plans;
        the message that ends a run `completed` or `incomplete` takes what
        is left, so such a run's usage is the script's totals. A run that
        ends otherwise (cancelled, failed, expired) used only what its
        completed steps used. Either way a run's usage is the sum of its
        steps'.
        """
        script = self.script
        if step.details["type"] == "message_creation" and self.status in (
            "completed",
            "incomplete",
        ):
            used = self._used()
            return (
                max(0, script.prompt_tokens - used[0]),
                max(0, script.completion_tokens - used[1]),
            )
        if self._share is None:
            planned = self._planned_steps()
            self._share = (
                script.prompt_tokens // planned,
                script.completion_tokens // planned,
            )
        return self._share

    def _planned_steps(self) -> int:
        tools = sum(1 for tool in self.fields["tools"] if tool["type"] != "function")
        asks = sum(
            1 for phase in self.script.phases if phase.status == "requires_action"
        )
        if asks and self.fields["parallel_tool_calls"] is False:
            functions = sum(1 for t in self.fields["tools"] if t["type"] == "function")
            asks *= max(1, functions)
        return tools + asks + 1

    def _used(self) -> tuple[int, int]:
        prompt = completion = 0
        for step in self.steps:
            if step.usage is not None:
                prompt += step.usage[0]
                completion += step.usage[1]
        return prompt, completion

    # -- payloads -----------------------------------------------------------

    def to_json(self) -> JSON:
        """Return the run as the API's `RunObject`."""
        script, status, ended = self.script, self.status, self.ended_at
        return {
            "id": self.id,
            "object": "thread.run",
            "created_at": self.created_at,
            "thread_id": self.thread_id,
            "status": status,
            "required_action": self.required_action,
            "last_error": (
                {"code": script.error_code, "message": script.error_message}
                if status == "failed"
                else None
            ),
            "expires_at": self.expires_at,
            "started_at": self.started_at,
            "cancelled_at": ended if status == "cancelled" else None,
            "failed_at": ended if status == "failed" else None,
            "completed_at": ended if status == "completed" else None,
            "incomplete_details": (
                {"reason": script.incomplete_reason} if status == "incomplete" else None
            ),
            # The sum of the steps': a run cancelled while queued used none.
            "usage": _usage(*self._used()) if status in TERMINAL else None,
            **self.fields,
        }

    def step_json(self, step: _Step, *, content: bool) -> JSON:
        """Return *step* as the API's `RunStepObject`.

        Args:
            step: One of this run's steps.
            content: Whether to include file search result content, which the
                API sends only when `include[]` asks for it.
        """
        status, ended = step.status, step.ended_at
        details = step.details if content else _without_content(step.details)
        return {
            "id": step.id,
            "object": "thread.run.step",
            "created_at": int(step.created),
            "assistant_id": self.fields["assistant_id"],
            "thread_id": self.thread_id,
            "run_id": self.id,
            "type": details["type"],
            "status": status,
            "step_details": details,
            "last_error": (
                # The step's code enum lacks the run's `invalid_prompt`.
                {
                    "code": (
                        "rate_limit_exceeded"
                        if self.script.error_code == "rate_limit_exceeded"
                        else "server_error"
                    ),
                    "message": self.script.error_message,
                }
                if status == "failed"
                else None
            ),
            "expired_at": ended if status == "expired" else None,
            "cancelled_at": ended if status == "cancelled" else None,
            "failed_at": ended if status == "failed" else None,
            "completed_at": ended if status == "completed" else None,
            "metadata": {},
            "usage": None if step.usage is None else _usage(*step.usage),
        }


def _usage(prompt: int, completion: int) -> JSON:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


# The tools the server runs itself, each with a step of its own; Azure AI
# Foundry's `connected_agent` and `azure_function` have no step tool call in
# its v1 spec, and function calls go to the client.
_STEP_TOOLS = frozenset(
    {"code_interpreter", "file_search", "azure_ai_search", "bing_grounding", "openapi"}
)


def _tool_step(kind: str) -> JSON:
    call: JSON
    if kind in ("azure_ai_search", "bing_grounding", "openapi"):
        # Azure AI Foundry's: a string map "reserved for future use".
        details = {"bing_grounding": {"requesturl": "https://api.bing.microsoft.com/"}}
        call = {"id": new_id("call"), "type": kind, kind: details.get(kind, {})}
    elif kind == "code_interpreter":
        call = {
            "id": new_id("call"),
            "type": "code_interpreter",
            "code_interpreter": {
                "input": "import math\nprint(math.sqrt(1764))",
                "outputs": [],
            },
        }
    else:
        call = {
            "id": new_id("call"),
            "type": "file_search",
            "file_search": {
                "ranking_options": {
                    "ranker": "default_2024_08_21",
                    "score_threshold": 0.0,
                },
                "results": [
                    {
                        "file_id": new_id("file"),
                        "file_name": "handbook.md",
                        "score": 0.82,
                        "content": [
                            {"type": "text", "text": "Runs end in a terminal status."}
                        ],
                    }
                ],
            },
        }
    return {"type": "tool_calls", "tool_calls": [call]}


def _without_content(details: JSON) -> JSON:
    if details["type"] != "tool_calls" or not any(
        call["type"] == "file_search" for call in details["tool_calls"]
    ):
        return details
    calls = []
    for call in details["tool_calls"]:
        if call["type"] != "file_search":
            calls.append(call)
            continue
        search = call["file_search"]
        results = [
            {k: v for k, v in result.items() if k != "content"}
            for result in search["results"]
        ]
        calls.append({**call, "file_search": {**search, "results": results}})
    return {**details, "tool_calls": calls}


@attrs.define
class _Thread:
    id: str
    created_at: int
    metadata: dict[str, str]
    runs: list[Run] = attrs.Factory(list)
    positions: dict[str, int] = attrs.Factory(dict)
    messages: list[JSON] = attrs.Factory(list)
    tool_resources: JSON = attrs.Factory(dict)


@attrs.define
class _ActiveFault:
    fault: Fault
    left: int | None


def page(
    items: Sequence[Any],
    ids: Callable[[Any], str],
    *,
    limit: int,
    order: Literal["asc", "desc"],
    after: str | None,
    before: str | None,
    unknown_cursor: Literal["error", "empty"] = "error",
) -> tuple[list[Any], bool]:
    """Cut one page out of *items* (oldest first) the way the API does.

    Returns:
        The page, in *order*, and whether more items lie beyond it in the
        direction of travel.

    Raises:
        ApiError: If a cursor names no item and *unknown_cursor* is
            `"error"` (with `"empty"` the page is empty instead).
    """
    ordered = list(items) if order == "asc" else list(reversed(items))
    positions = {ids(item): i for i, item in enumerate(ordered)}
    start, end = 0, len(ordered)
    for param, cursor in (("after", after), ("before", before)):
        if cursor is None:
            continue
        if cursor not in positions:
            if unknown_cursor == "empty":
                return [], False
            raise ApiError(
                400, f"Invalid '{param}': no object with id '{cursor}'.", param=param
            )
        if param == "after":
            start = positions[cursor] + 1
        else:
            end = positions[cursor]
    window = ordered[start:end]
    if before is not None and after is None:
        return window[-limit:], len(window) > limit
    return window[:limit], len(window) > limit


class EmulatorState:
    """Everything the emulator knows; safe to use from several threads.

    Args:
        clock: Where time comes from.
        default_script: The script for runs that do not choose one.
        scripts: Named scripts that runs choose with the metadata key
            `emulator_script`.
        cancel_delay: Seconds from a cancel request to `cancelled`.
        expires_after: Seconds from creation to `expires_at`; `None` for
            runs that never expire.
        poll_after_ms: An `openai-poll-after-ms` hint for run responses.
        seed: Seeds the random generator used for fault probabilities.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        default_script: RunScript | None,
        scripts: dict[str, RunScript],
        cancel_delay: float,
        expires_after: float | None,
        poll_after_ms: int | None,
        seed: int,
    ) -> None:
        self.clock = clock
        self.default_script = default_script
        self.scripts = scripts
        self.cancel_delay = cancel_delay
        self.expires_after = expires_after
        self.poll_after_ms = poll_after_ms
        self.counts = RequestCounts()
        # Reported in x-ratelimit-* headers; enforced only when asked for.
        self.rate_limiter = RateLimiter(RateLimit(enforce=False))
        self.assistants = Assistants(strict=False)
        # Where the live behaviour is not documented, the emulator's choice.
        self.metadata_update: Literal["replace", "merge"] = "replace"
        self.unknown_cursor: Literal["error", "empty"] = "error"
        self.lock = threading.RLock()
        self.threads: dict[str, _Thread] = {}
        self.runs: dict[str, Run] = {}
        self._faults: list[_ActiveFault] = []
        # Called as each run ends (the conversation appends the reply).
        self.on_run_end: Callable[[Run, float], None] | None = None
        # Fault draws must be reproducible, not secret.
        self._random = random.Random(seed)  # noqa: S311

    def create_thread(self, metadata: dict[str, str] | None = None) -> JSON:
        """Create an empty thread and return it as the API's thread object."""
        with self.lock:
            thread = _Thread(
                new_id("thread"), int(self.clock.now()), check_metadata(metadata)
            )
            self.threads[thread.id] = thread
            return _thread_json(thread)

    def create_run(
        self, thread_id: str, fields: JSON, script: RunScript | None = None
    ) -> Run:
        """Start a run on a thread.

        Args:
            thread_id: The thread to run.
            fields: The run's static `RunObject` fields (assistant, model,
                tools, metadata, ...).
            script: The run's script; by default the one its metadata names,
                or the emulator's default.

        Raises:
            ApiError: If the thread or a named script does not exist.
        """
        with self.lock:
            thread = self._thread(thread_id)
            script = script or self._script_for(fields)
            run = Run(
                thread_id=thread_id,
                fields=fields,
                script=script,
                now=self.clock.now(),
                expires_after=self.expires_after,
                cancel_delay=self.cancel_delay,
            )
            thread.positions[run.id] = len(thread.runs)
            thread.runs.append(run)
            self.runs[run.id] = run
            if self.on_run_end is not None:
                run.on_end = self.on_run_end
                if run.status in TERMINAL:  # a script that ends at once
                    run.on_end = None
                    self.on_run_end(run, self.clock.now())
            return run

    def inherit(self, body: JSON) -> JSON:
        """Return a create-run *body* with what its assistant gives it.

        Raises:
            ApiError: 404 in strict mode for an assistant not registered.
        """
        try:
            return self.assistants.apply(body)
        except LookupError:
            raise ApiError(
                404, f"No assistant found with id '{body['assistant_id']}'."
            ) from None

    def _script_for(self, fields: JSON) -> RunScript:
        name = (fields["metadata"] or {}).get("emulator_script")
        if name is not None:
            if name not in self.scripts:
                raise ApiError(
                    400,
                    f"No emulator script named '{name}'.",
                    param="metadata.emulator_script",
                )
            return self.scripts[name]
        if self.default_script is not None:
            return self.default_script
        choice = fields["tool_choice"]
        may_call = choice != "none" and (
            not isinstance(choice, dict) or choice["type"] == "function"
        )
        if may_call and any(tool["type"] == "function" for tool in fields["tools"]):
            return _ASKS_FOR_OUTPUTS
        return _COMPLETES

    def _thread(self, thread_id: str) -> _Thread:
        try:
            return self.threads[thread_id]
        except KeyError:
            raise ApiError(404, f"No thread found with id '{thread_id}'.") from None

    def run(self, thread_id: str | None, run_id: str) -> Run:
        """Return a run, brought up to date with the clock.

        Args:
            thread_id: The thread the run must belong to; `None` for any.
            run_id: The run's id.

        Raises:
            ApiError: 404 if the thread or run does not exist.
        """
        with self.lock:
            if thread_id is not None:
                self._thread(thread_id)
            run = self.runs.get(run_id)
            if run is None or thread_id not in (None, run.thread_id):
                raise ApiError(404, f"No run found with id '{run_id}'.")
            run.advance(self.clock.now())
            return run

    def list_runs(
        self,
        thread_id: str,
        *,
        limit: int,
        order: Literal["asc", "desc"],
        after: str | None,
        before: str | None,
    ) -> JSON:
        """Return one page of a thread's runs as the API's `ListRunsResponse`."""
        with self.lock:
            runs, has_more = page(
                self._thread(thread_id).runs,
                lambda run: run.id,
                limit=limit,
                order=order,
                after=after,
                before=before,
                unknown_cursor=self.unknown_cursor,
            )
            now = self.clock.now()
            for run in runs:
                run.advance(now)
            return _list_json([run.to_json() for run in runs], has_more)

    def list_steps(
        self,
        thread_id: str,
        run_id: str,
        *,
        limit: int,
        order: Literal["asc", "desc"],
        after: str | None,
        before: str | None,
        content: bool,
    ) -> JSON:
        """Return one page of a run's steps as the API's `ListRunStepsResponse`."""
        with self.lock:
            run = self.run(thread_id, run_id)
            steps, has_more = page(
                run.steps,
                lambda step: step.id,
                limit=limit,
                order=order,
                after=after,
                before=before,
                unknown_cursor=self.unknown_cursor,
            )
            data = [run.step_json(step, content=content) for step in steps]
            return _list_json(data, has_more)

    def step(self, thread_id: str, run_id: str, step_id: str, *, content: bool) -> JSON:
        """Return one step as the API's `RunStepObject`.

        Raises:
            ApiError: 404 if the thread, run or step does not exist.
        """
        with self.lock:
            run = self.run(thread_id, run_id)
            for step in run.steps:
                if step.id == step_id:
                    return run.step_json(step, content=content)
            raise ApiError(404, f"No step found with id '{step_id}'.")

    def modify(self, thread_id: str, run_id: str, metadata: object) -> JSON:
        """Set a run's metadata and return the run.

        The given metadata replaces the run's, or with `metadata_update`
        `"merge"` is merged into it (an empty string value removes a key).
        """
        with self.lock:
            run = self.run(thread_id, run_id)
            if metadata is not None:
                given = check_metadata(metadata)
                if self.metadata_update == "merge":
                    merged = {**run.fields["metadata"], **given}
                    given = check_metadata(
                        {key: value for key, value in merged.items() if value != ""}
                    )
                run.fields["metadata"] = given
            return run.to_json()

    def cancel(self, thread_id: str | None, run_id: str) -> JSON:
        """Start cancelling a run and return it, `cancelling`."""
        with self.lock:
            run = self.run(thread_id, run_id)
            run.cancel(self.clock.now())
            return run.to_json()

    def submit(
        self, thread_id: str | None, run_id: str, outputs: dict[str, str]
    ) -> JSON:
        """Give a run its tool outputs and return it."""
        with self.lock:
            run = self.run(thread_id, run_id)
            run.submit(outputs, self.clock.now())
            return run.to_json()

    def rescript(self, run_id: str, script: RunScript) -> JSON:
        """Make a run follow *script* from now on and return it."""
        with self.lock:
            run = self.run(None, run_id)
            run.rescript(script, self.clock.now())
            return run.to_json()

    # -- faults -------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        """Start applying *fault* to matching requests."""
        with self.lock:
            self._faults.append(_ActiveFault(fault, fault.times))

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self.lock:
            self._faults.clear()

    def faults(self) -> list[Fault]:
        """Return the faults still active."""
        with self.lock:
            return [active.fault for active in self._faults]

    def draw_fault(self, run_id: str | None) -> Fault | None:
        """Return the fault for one request about *run_id*, using it up."""
        with self.lock:
            for active in self._faults:
                fault = active.fault
                if fault.run_id not in (None, run_id):
                    continue
                if (
                    fault.probability < 1.0
                    and self._random.random() >= fault.probability
                ):
                    continue
                if active.left is not None:
                    active.left -= 1
                    if active.left <= 0:
                        self._faults.remove(active)
                return fault
            return None


def _thread_json(thread: _Thread) -> JSON:
    return {
        "id": thread.id,
        "object": "thread",
        "created_at": thread.created_at,
        "metadata": thread.metadata,
        "tool_resources": thread.tool_resources,
    }


def _list_json(data: Iterable[JSON], has_more: bool) -> JSON:
    items = list(data)
    # The spec types first_id/last_id as strings; the live API sends null
    # for an empty page, and so do we.
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
    }
