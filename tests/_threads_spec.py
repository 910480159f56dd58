"""The Threads/Messages extract (with the stream events) as JSON Schema, for tests.

``tests/threads-messages.openapi.json`` is a second extract of the official
document (see its ``.md``); it is rewritten into JSON Schema 2020-12 by the
same rules as ``runs.openapi.json`` in ``_spec.py``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
from _spec import _convert

SPEC_PATH = Path(__file__).with_name("threads-messages.openapi.json")

STREAM_SCHEMAS: dict[str, str] = {
    "thread.created": "ThreadObject",
    **{
        f"thread.run.{status}": "RunObject"
        for status in [
            "created",
            "queued",
            "in_progress",
            "requires_action",
            "completed",
            "incomplete",
            "failed",
            "cancelling",
            "cancelled",
            "expired",
        ]
    },
    **{
        f"thread.run.step.{status}": "RunStepObject"
        for status in [
            "created",
            "in_progress",
            "completed",
            "failed",
            "cancelled",
            "expired",
        ]
    },
    "thread.run.step.delta": "RunStepDeltaObject",
    **{
        f"thread.message.{status}": "MessageObject"
        for status in ["created", "in_progress", "completed", "incomplete"]
    },
    "thread.message.delta": "MessageDeltaObject",
    "error": "Error",
}
"""The schema of each event's ``data`` (``done`` carries ``[DONE]``, not JSON)."""


@functools.cache
def spec() -> dict[str, Any]:
    """The document, parsed once."""
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


@functools.cache
def _defs() -> dict[str, Any]:
    return {
        name: _convert(schema)
        for name, schema in spec()["components"]["schemas"].items()
    }


@functools.cache
def validator(schema_name: str) -> jsonschema.Draft202012Validator:
    """A ``jsonschema`` validator for the component *schema_name*."""
    defs = _defs()
    return jsonschema.Draft202012Validator(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **defs[schema_name],
            "$defs": defs,
        }
    )
