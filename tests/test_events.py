"""Typed stream events and the snapshots rebuilt from their deltas."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _threads_spec import STREAM_SCHEMAS, validator

from openai_runs import Run, RunStep, StreamEvent
from openai_runs._events import EVENT_MODELS, EventDataError, Snapshots, parse_event
from openai_runs.models import (
    ErrorObject,
    FileCitationAnnotation,
    FunctionCall,
    Message,
    MessageDelta,
    RefusalPart,
    RunStepDelta,
    TextPart,
    TextPartDelta,
    Thread,
    ToolCallsDetails,
    UnknownPart,
    UnknownPartDelta,
)

THREAD = {
    "id": "thread_1",
    "object": "thread",
    "created_at": 1,
    "tool_resources": None,
    "metadata": {},
}
RUN = {
    "id": "run_1",
    "object": "thread.run",
    "created_at": 1,
    "thread_id": "thread_1",
    "assistant_id": "asst_1",
    "status": "queued",
    "required_action": None,
    "last_error": None,
    "expires_at": None,
    "started_at": None,
    "cancelled_at": None,
    "failed_at": None,
    "completed_at": None,
    "incomplete_details": None,
    "model": "gpt-4o",
    "instructions": "",
    "tools": [],
    "metadata": {},
    "usage": None,
    "temperature": 1.0,
    "top_p": 1.0,
    "max_prompt_tokens": None,
    "max_completion_tokens": None,
    "truncation_strategy": {"type": "auto", "last_messages": None},
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "response_format": "auto",
}
STEP = {
    "id": "step_1",
    "object": "thread.run.step",
    "created_at": 1,
    "assistant_id": "asst_1",
    "thread_id": "thread_1",
    "run_id": "run_1",
    "type": "tool_calls",
    "status": "in_progress",
    "step_details": {"type": "tool_calls", "tool_calls": []},
    "last_error": None,
    "expired_at": None,
    "cancelled_at": None,
    "failed_at": None,
    "completed_at": None,
    "metadata": {"index": "kept"},
    "usage": None,
}
MESSAGE = {
    "id": "msg_1",
    "object": "thread.message",
    "created_at": 1,
    "thread_id": "thread_1",
    "status": "in_progress",
    "incomplete_details": None,
    "completed_at": None,
    "incomplete_at": None,
    "role": "assistant",
    "content": [],
    "assistant_id": "asst_1",
    "run_id": "run_1",
    "attachments": [],
    "metadata": {},
}


def text_delta(index: int, value: str, **more: Any) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "object": "thread.message.delta",
        "delta": {
            "content": [{"index": index, "type": "text", "text": {"value": value}}],
            **more,
        },
    }


def call_delta(**call: Any) -> dict[str, Any]:
    return {
        "id": "step_1",
        "object": "thread.run.step.delta",
        "delta": {
            "step_details": {
                "type": "tool_calls",
                "tool_calls": [{"type": "function", **call}],
            }
        },
    }


EXAMPLES: dict[str, Any] = {
    "thread.created": THREAD,
    "thread.run.step.delta": call_delta(
        index=0, id="call_1", function={"name": "f", "arguments": ""}
    ),
    "thread.message.delta": text_delta(0, "Hel"),
    "error": {"type": "server_error", "message": "boom", "param": None, "code": None},
}
for _name, _schema in STREAM_SCHEMAS.items():
    _base = {"RunObject": RUN, "RunStepObject": STEP, "MessageObject": MESSAGE}
    if _schema in _base:
        EXAMPLES[_name] = _base[_schema]


@pytest.mark.parametrize("name", sorted(STREAM_SCHEMAS))
def test_every_documented_event_is_typed(name: str) -> None:
    """Each of the 24 documented data-carrying events parses into its model."""
    payload = EXAMPLES[name]
    validator("AssistantStreamEvent").validate({"event": name, "data": payload})
    event, decoded = parse_event(name, json.dumps(payload))
    assert event.event == name
    assert type(event.data) is EVENT_MODELS[name]
    assert decoded == payload


def test_model_for_each_kind() -> None:
    """The models are the ones the issue names: Run, RunStep, deltas, Message, error."""
    assert EVENT_MODELS["thread.run.completed"] is Run
    assert EVENT_MODELS["thread.run.step.created"] is RunStep
    assert EVENT_MODELS["thread.run.step.delta"] is RunStepDelta
    assert EVENT_MODELS["thread.message.completed"] is Message
    assert EVENT_MODELS["thread.message.delta"] is MessageDelta
    assert EVENT_MODELS["thread.created"] is Thread
    assert EVENT_MODELS["error"] is ErrorObject
    assert len(EVENT_MODELS) == 24  # the 25 names less ``done``


def test_unknown_event_with_json_is_kept_as_dict() -> None:
    """An event name added later is yielded with its JSON object as a dict."""
    event, _ = parse_event("thread.run.step.thinking", '{"id": "x", "n": 1}')
    assert event == StreamEvent("thread.run.step.thinking", {"id": "x", "n": 1})


def test_unknown_event_with_text_is_kept_as_text() -> None:
    """An unknown event whose data is not a JSON object keeps its raw text."""
    assert parse_event("ping", "hello")[0] == StreamEvent("ping", "hello")
    assert parse_event("ping", "[1, 2]")[0] == StreamEvent("ping", "[1, 2]")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("thread.run.created", "{not json"),
        ("thread.run.created", '{"id": "run_1"}'),
        ("thread.message.delta", "null"),
        ("error", '{"type": "server_error"}'),
    ],
)
def test_malformed_documented_event(name: str, data: str) -> None:
    """A documented event whose data is not its model's JSON raises EventDataError."""
    with pytest.raises(EventDataError, match=name):
        parse_event(name, data)


def test_unknown_parts_and_calls_parse() -> None:
    """Part and call types added later structure into the Unknown variants."""
    delta = text_delta(0, "a")
    delta["delta"]["content"].append({"index": 1, "type": "audio", "audio": {}})
    event, _ = parse_event("thread.message.delta", json.dumps(delta))
    assert isinstance(event.data, MessageDelta)
    content = event.data.delta.content
    assert content is not None
    assert isinstance(content[0], TextPartDelta)
    assert isinstance(content[1], UnknownPartDelta)
    assert content[1].extra == {"audio": {}}


def feed(snapshots: Snapshots, *events: tuple[str, dict[str, Any]]) -> None:
    for name, payload in events:
        snapshots.observe(name, json.loads(json.dumps(payload)))


def test_message_text_is_rebuilt_from_deltas() -> None:
    """Text fragments are appended in order to the part they name by index."""
    snapshots = Snapshots()
    feed(
        snapshots,
        ("thread.message.created", MESSAGE),
        ("thread.message.delta", text_delta(0, "Hel")),
        ("thread.message.delta", text_delta(0, "lo")),
        ("thread.message.delta", text_delta(1, "!")),
    )
    message = snapshots.message("msg_1")
    assert message is not None
    assert [p.text.value for p in message.content if isinstance(p, TextPart)] == [
        "Hello",
        "!",
    ]
    assert message.text == "Hello!"
    assert message.content[0].extra == {}  # the delta's ``index`` is not kept


def test_annotations_and_refusal_by_index() -> None:
    """Annotations merge by their own index; a refusal part builds too."""
    annotation = {
        "index": 0,
        "type": "file_citation",
        "text": "【4:0†source】",
        "file_citation": {"file_id": "file_1"},
        "start_index": 5,
        "end_index": 17,
    }
    delta = text_delta(0, "Hello【4:0†source】")
    delta["delta"]["content"][0]["text"]["annotations"] = [annotation]
    refusal = {
        "id": "msg_1",
        "object": "thread.message.delta",
        "delta": {"content": [{"index": 1, "type": "refusal", "refusal": "No."}]},
    }
    snapshots = Snapshots()
    feed(
        snapshots,
        ("thread.message.created", MESSAGE),
        ("thread.message.delta", delta),
        ("thread.message.delta", refusal),
    )
    message = snapshots.message("msg_1")
    assert message is not None
    text, refused = message.content
    assert isinstance(text, TextPart)
    (cited,) = text.text.annotations
    assert isinstance(cited, FileCitationAnnotation)
    assert cited.file_citation.file_id == "file_1"
    assert refused == RefusalPart(refusal="No.")


def test_tool_calls_are_rebuilt_by_index() -> None:
    """The first delta brings id and name; argument fragments are appended."""
    snapshots = Snapshots()
    feed(
        snapshots,
        ("thread.run.step.created", STEP),
        (
            "thread.run.step.delta",
            call_delta(
                index=0, id="call_a", function={"name": "weather", "arguments": ""}
            ),
        ),
        (
            "thread.run.step.delta",
            call_delta(
                index=1, id="call_b", function={"name": "time", "arguments": "{}"}
            ),
        ),
        (
            "thread.run.step.delta",
            call_delta(index=0, function={"arguments": '{"city": '}),
        ),
        (
            "thread.run.step.delta",
            call_delta(index=0, function={"arguments": '"Oslo"}'}),
        ),
    )
    step = snapshots.step("step_1")
    assert step is not None
    assert isinstance(step.step_details, ToolCallsDetails)
    calls = step.step_details.tool_calls
    assert all(isinstance(call, FunctionCall) for call in calls)
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [  # type: ignore[union-attr]
        ("call_a", "weather", '{"city": "Oslo"}'),
        ("call_b", "time", "{}"),
    ]
    assert step.metadata == {"index": "kept"}  # only list items lose ``index``


def test_full_event_replaces_the_snapshot() -> None:
    """A completed event is the truth: it replaces what the deltas built."""
    done = {
        **MESSAGE,
        "status": "completed",
        "content": [{"type": "text", "text": {"value": "Final", "annotations": []}}],
    }
    snapshots = Snapshots()
    feed(
        snapshots,
        ("thread.message.created", MESSAGE),
        ("thread.message.delta", text_delta(0, "Draf")),
        ("thread.message.completed", done),
    )
    message = snapshots.message("msg_1")
    assert message is not None
    assert message.text == "Final"
    assert message.status == "completed"


def test_delta_of_unseen_object_is_ignored() -> None:
    """A delta for a message the stream never created changes nothing."""
    snapshots = Snapshots()
    feed(snapshots, ("thread.message.delta", text_delta(0, "x")))
    assert snapshots.message("msg_1") is None
    assert snapshots.messages() == []


def test_unknown_part_in_snapshot() -> None:
    """A part of a new type in a delta stays in the snapshot as UnknownPart."""
    snapshots = Snapshots()
    delta = {
        "id": "msg_1",
        "object": "thread.message.delta",
        "delta": {"content": [{"index": 0, "type": "audio", "audio": {"id": "a"}}]},
    }
    feed(
        snapshots, ("thread.message.created", MESSAGE), ("thread.message.delta", delta)
    )
    message = snapshots.message("msg_1")
    assert message is not None
    assert message.content == [UnknownPart(type="audio", extra={"audio": {"id": "a"}})]


def test_snapshots_in_order_of_appearance() -> None:
    """messages() and steps() list objects in the order the stream showed them."""
    snapshots = Snapshots()
    feed(
        snapshots,
        ("thread.run.step.created", {**STEP, "id": "step_b"}),
        ("thread.run.step.created", STEP),
        ("thread.message.created", {**MESSAGE, "id": "msg_b"}),
        ("thread.message.created", MESSAGE),
        ("thread.run.step.completed", {**STEP, "id": "step_b", "status": "completed"}),
    )
    assert [s.id for s in snapshots.steps()] == ["step_b", "step_1"]
    assert [m.id for m in snapshots.messages()] == ["msg_b", "msg_1"]
    assert snapshots.steps()[0].status == "completed"
