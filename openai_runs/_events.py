"""Stream events: typed from server-sent events, and snapshots rebuilt from deltas.

Sans-I/O: [parse_event][openai_runs._events.parse_event] turns one
server-sent event into a [StreamEvent][openai_runs.StreamEvent], and
[Snapshots][openai_runs._events.Snapshots] keeps each message and step as it
stands after the deltas seen so far, as openai-python's
``AssistantEventHandler`` does.
"""

from __future__ import annotations

import json
from typing import Any, Final

import attrs
import cattrs

from ._converter import client_converter
from .models import (
    ErrorObject,
    Message,
    MessageDelta,
    Run,
    RunStep,
    RunStepDelta,
    Thread,
)

__all__ = ["EVENT_MODELS", "Snapshots", "StreamData", "StreamEvent", "parse_event"]

StreamData = (
    Thread
    | Run
    | RunStep
    | RunStepDelta
    | Message
    | MessageDelta
    | ErrorObject
    | dict[str, Any]
    | str
)
"""What a [StreamEvent][openai_runs.StreamEvent] may carry as ``data``."""

_RUN_EVENTS = [
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
_STEP_EVENTS = "created in_progress completed failed cancelled expired".split()  # noqa: SIM905
_MESSAGE_EVENTS = ["created", "in_progress", "completed", "incomplete"]

EVENT_MODELS: Final[dict[str, type[Any]]] = {
    "thread.created": Thread,
    **{f"thread.run.{name}": Run for name in _RUN_EVENTS},
    **{f"thread.run.step.{name}": RunStep for name in _STEP_EVENTS},
    "thread.run.step.delta": RunStepDelta,
    **{f"thread.message.{name}": Message for name in _MESSAGE_EVENTS},
    "thread.message.delta": MessageDelta,
    "error": ErrorObject,
}
"""The model of ``data`` for each event name the API documents (but ``done``)."""


@attrs.frozen
class StreamEvent:
    """One event of a run stream.

    | ``event`` | ``data`` |
    | --- | --- |
    | ``thread.created`` | [Thread][openai_runs.models.Thread] |
    | ``thread.run.*`` (``created`` ... ``expired``) | [Run][openai_runs.Run] |
    | ``thread.run.step.*`` (but ``delta``) | [RunStep][openai_runs.RunStep] |
    | ``thread.run.step.delta`` | [RunStepDelta][openai_runs.models.RunStepDelta] |
    | ``thread.message.*`` (but ``delta``) | [Message][openai_runs.models.Message] |
    | ``thread.message.delta`` | [MessageDelta][openai_runs.models.MessageDelta] |
    | ``error`` | [ErrorObject][openai_runs.models.ErrorObject] |
    | a name added after this version | the JSON object as a ``dict``, or the raw text |

    Attributes:
        event: The event's name, such as ``thread.message.delta``.
        data: Its data, a model chosen by *event*.
    """

    event: str
    data: StreamData = attrs.field(repr=False)


class EventDataError(ValueError):
    """An event's data is not the JSON of its documented model."""


def parse_event(event: str, data: str) -> tuple[StreamEvent, Any]:
    """Build the typed event from a server-sent event's name and data.

    Returns:
        The event, and its data as decoded JSON (for
        [Snapshots][openai_runs._events.Snapshots]).

    Raises:
        EventDataError: A documented event whose data is not its model's JSON.
    """
    model = EVENT_MODELS.get(event)
    try:
        payload = json.loads(data)
    except ValueError as exc:
        if model is None:
            # A newer event may carry something that is not JSON; keep it.
            return StreamEvent(event, data), None
        raise EventDataError(f"{event}: the data is not JSON ({exc})") from None
    if model is None:
        value = payload if isinstance(payload, dict) else data
        return StreamEvent(event, value), payload
    try:
        return StreamEvent(event, client_converter().structure(payload, model)), payload
    except cattrs.ClassValidationError as exc:
        detail = "; ".join(cattrs.transform_error(exc)[:5])
    except (cattrs.BaseValidationError, TypeError, AttributeError, KeyError) as exc:
        detail = str(exc)
    raise EventDataError(f"{event}: not a valid {model.__name__}: {detail}")


def _copy(value: Any) -> Any:
    """A copy of decoded JSON: new dicts and lists, the same immutable leaves."""
    if value.__class__ is dict:
        return {k: _copy(v) for k, v in value.items()}
    if value.__class__ is list:
        return [_copy(v) for v in value]
    return value


def accumulate(snapshot: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """Merge *delta* into *snapshot* in place, the way the API's deltas mean it.

    Strings are appended (text and argument fragments); lists of objects are
    merged by each item's ``index`` (message parts, tool calls, annotations);
    objects are merged key by key; anything else replaces what was there.
    """
    for key, value in delta.items():
        current = snapshot.get(key)
        if current is None or key in ("index", "type"):
            snapshot[key] = _copy(value)
        elif isinstance(current, str) and isinstance(value, str):
            snapshot[key] = current + value
        elif isinstance(current, dict) and isinstance(value, dict):
            accumulate(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            _merge_by_index(current, value)
        else:
            snapshot[key] = _copy(value)
    return snapshot


def _merge_by_index(items: list[Any], deltas: list[Any]) -> None:
    for delta in deltas:
        index = delta.get("index") if isinstance(delta, dict) else None
        if not isinstance(index, int) or index < 0:
            items.append(_copy(delta))
            continue
        while len(items) <= index:
            items.append({})
        if isinstance(items[index], dict):
            accumulate(items[index], delta)
        else:
            items[index] = _copy(delta)


def _without_index(value: Any, *, in_list: bool = False) -> Any:
    """*value* without the ``index`` keys that the items of delta lists carry."""
    if isinstance(value, dict):
        return {
            k: _without_index(v)
            for k, v in value.items()
            if not (in_list and k == "index")
        }
    if isinstance(value, list):
        return [_without_index(v, in_list=True) for v in value]
    return value


class Snapshots:
    """The messages and steps of a stream as they stand after its deltas.

    A ``created`` (or any full) event sets the snapshot; each delta is merged
    into it ([accumulate][openai_runs._events.accumulate]); the models are
    built when asked for. Order is the order of first appearance.
    """

    def __init__(self) -> None:
        self._messages: dict[str, dict[str, Any]] = {}
        self._steps: dict[str, dict[str, Any]] = {}
        self._built: dict[tuple[str, str], Any] = {}

    def observe(self, event: str, payload: Any) -> None:
        """Take one event's name and its decoded JSON data."""
        if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
            return
        key = payload["id"]
        if event == "thread.message.delta":
            self._merge(self._messages, "message", key, payload)
        elif event == "thread.run.step.delta":
            self._merge(self._steps, "step", key, payload)
        elif event.startswith("thread.message."):
            self._messages[key] = _copy(payload)
            self._built.pop(("message", key), None)
        elif event.startswith("thread.run.step."):
            self._steps[key] = _copy(payload)
            self._built.pop(("step", key), None)

    def _merge(
        self,
        into: dict[str, dict[str, Any]],
        kind: str,
        key: str,
        payload: dict[str, Any],
    ) -> None:
        delta = payload.get("delta")
        snapshot = into.get(key)
        if snapshot is None or not isinstance(delta, dict):
            return  # a delta for an object this stream never showed
        accumulate(snapshot, delta)
        self._built.pop((kind, key), None)

    def message(self, message_id: str) -> Message | None:
        """The message as it stands, or *None* if the stream has not shown it."""
        built: Message | None = self._build(
            "message", message_id, self._messages, Message
        )
        return built

    def step(self, step_id: str) -> RunStep | None:
        """The step as it stands, or *None* if the stream has not shown it."""
        built: RunStep | None = self._build("step", step_id, self._steps, RunStep)
        return built

    def messages(self) -> list[Message]:
        """Every message the stream showed, as it stands now."""
        return [m for key in self._messages if (m := self.message(key)) is not None]

    def steps(self) -> list[RunStep]:
        """Every step the stream showed, as it stands now."""
        return [s for key in self._steps if (s := self.step(key)) is not None]

    def _build(
        self, kind: str, key: str, store: dict[str, dict[str, Any]], cls: type[Any]
    ) -> Any:
        if key not in store:
            return None
        built = self._built.get((kind, key))
        if built is None:
            built = client_converter().structure(_without_index(store[key]), cls)
            self._built[(kind, key)] = built
        return built
