"""Thread and Message models against ``threads-messages.openapi.json``.

The spec's own examples, property tests over payloads generated from its
schemas, every content part and annotation, unknown parts and ``Message.text``.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from typing import Any

import pytest
from _spec import GENERATED, THREADS, json_schema, response_examples, schema_examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from test_models import round_trip, unknown_variants

from openai_runs import converter
from openai_runs.models import (
    CodeInterpreterTool,
    DeletedMessage,
    DeletedThread,
    FileCitationAnnotation,
    FilePathAnnotation,
    FileSearchTool,
    ImageFileContent,
    ImageUrlContent,
    Message,
    MessageStatus,
    Page,
    RefusalPart,
    TextPart,
    Thread,
    UnknownAnnotation,
    UnknownPart,
)

MODEL_OF_SCHEMA: dict[str, Any] = {
    "ThreadObject": Thread,
    "MessageObject": Message,
    "ListMessagesResponse": Page[Message],
    "DeleteThreadResponse": DeletedThread,
    "DeleteMessageResponse": DeletedMessage,
}

HYPOTHESIS_EXAMPLES = int(os.environ.get("OPENAI_RUNS_HYPOTHESIS_EXAMPLES", "6"))
"""As in test_models.py. A message (four content part kinds, two annotation
kinds) takes several seconds to generate here, so messages and pages of them
get a half and a third of that."""

EXAMPLES = [
    pytest.param(schema_name, text, id=label)
    for label, schema_name, text in response_examples(THREADS)
] + [
    pytest.param(schema_name, text, id=f"{schema_name}.example")
    for schema_name, text in schema_examples(THREADS)
    if schema_name in ("ThreadObject", "MessageObject")
]


def test_spec_has_examples() -> None:
    """Every operation's example and both schema examples are found."""
    labels = [p.id for p in EXAMPLES]

    assert len(EXAMPLES) == 12
    assert "listMessages" in labels
    assert "deleteThread" in labels
    assert "MessageObject.example" in labels


@pytest.mark.parametrize(("schema_name", "text"), EXAMPLES)
def test_spec_example_round_trips(schema_name: str, text: str) -> None:
    """Every example of the API reference parses, with known variants only, and
    unstructures back to the same JSON (the message examples lack ``status``
    and three more required keys: they parse anyway, as ``completed``)."""
    payload = json.loads(text)
    cl = MODEL_OF_SCHEMA[schema_name]

    obj = converter.structure(payload, cl)

    assert unknown_variants(obj) == []
    for item in obj.data if isinstance(obj, Page) else [obj]:
        if isinstance(item, Message):
            assert all(
                not isinstance(p, UnknownPart | UnknownAnnotation) for p in item.content
            )
    assert without_default_status(round_trip(payload, cl), payload) == payload


def without_default_status(out: Any, sent: Any) -> Any:
    """*out* without the ``status`` that the message model supplies when the
    API reference's examples leave it out (``completed``)."""
    if isinstance(out, list):
        return [without_default_status(o, s) for o, s in zip(out, sent, strict=True)]
    if isinstance(out, dict):
        return {
            k: without_default_status(v, sent.get(k))
            for k, v in out.items()
            if not (k == "status" and k not in sent and v == "completed")
        }
    return out


@functools.cache
def payloads(schema_name: str) -> st.SearchStrategy[Any]:
    """Schema-valid payloads for the component *schema_name*."""
    schema = json_schema(schema_name, THREADS)
    # ListMessagesResponse declares no ``type``; the API always sends an object.
    schema["type"] = "object"
    # MessageObject.attachments puts ``required: [file_id, tools]`` on the
    # array instead of its items, where it means nothing; the API sends both
    # (every example does), and so do the generated payloads.
    attachments = schema["$defs"]["MessageObject"]["properties"]["attachments"]
    attachments["anyOf"][0]["items"]["required"] = ["file_id", "tools"]
    return from_schema(schema)


PROPERTY = settings(
    max_examples=HYPOTHESIS_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def assert_round_trips(payload: Any, schema_name: str) -> None:
    """*payload* structures into its model and unstructures back unchanged."""
    sent = copy.deepcopy(payload)

    assert round_trip(payload, MODEL_OF_SCHEMA[schema_name]) == sent
    assert payload == sent, "structuring changed its input"


@GENERATED
@PROPERTY
@given(payload=payloads("ThreadObject"))
def test_generated_thread_round_trips(payload: dict[str, Any]) -> None:
    """Any thread valid under the spec structures and unstructures unchanged."""
    assert_round_trips(payload, "ThreadObject")


@GENERATED
@settings(PROPERTY, max_examples=max(1, HYPOTHESIS_EXAMPLES // 2))
@given(payload=payloads("MessageObject"))
def test_generated_message_round_trips(payload: dict[str, Any]) -> None:
    """Any message valid under the spec, every content part and annotation
    included, structures and unstructures unchanged, with known parts only."""
    assert_round_trips(payload, "MessageObject")
    message = converter.structure(payload, Message)
    assert not any(isinstance(p, UnknownPart) for p in message.content)


@GENERATED
@settings(PROPERTY, max_examples=max(1, HYPOTHESIS_EXAMPLES // 3))
@given(payload=payloads("ListMessagesResponse"))
def test_generated_message_page_round_trips(payload: dict[str, Any]) -> None:
    """Any page of messages valid under the spec structures into
    ``Page[Message]`` and back."""
    assert_round_trips(payload, "ListMessagesResponse")


@GENERATED
@PROPERTY
@given(
    payload=payloads("DeleteThreadResponse") | payloads("DeleteMessageResponse"),
)
def test_generated_deleted_objects_round_trip(payload: dict[str, Any]) -> None:
    """Any deleted-thread or deleted-message answer round-trips."""
    name = (
        "DeleteThreadResponse"
        if payload["object"] == "thread.deleted"
        else "DeleteMessageResponse"
    )
    assert_round_trips(payload, name)


# --- Content parts ---------------------------------------------------------------

MESSAGE: dict[str, Any] = {
    "id": "msg_1",
    "object": "thread.message",
    "created_at": 1700000000,
    "thread_id": "thread_1",
    "status": "completed",
    "incomplete_details": None,
    "completed_at": 1700000001,
    "incomplete_at": None,
    "role": "assistant",
    "content": [
        {
            "type": "text",
            "text": {
                "value": "See 【4:0†a.md】 and sandbox:/out.csv.",
                "annotations": [
                    {
                        "type": "file_citation",
                        "text": "【4:0†a.md】",
                        "file_citation": {"file_id": "file_a"},
                        "start_index": 4,
                        "end_index": 14,
                    },
                    {
                        "type": "file_path",
                        "text": "sandbox:/out.csv",
                        "file_path": {"file_id": "file_b"},
                        "start_index": 19,
                        "end_index": 35,
                    },
                ],
            },
        },
        {"type": "image_file", "image_file": {"file_id": "file_c", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
        {"type": "refusal", "refusal": "I can't share that."},
        {"type": "text", "text": {"value": " Bye.", "annotations": []}},
    ],
    "assistant_id": "asst_1",
    "run_id": "run_1",
    "attachments": [
        {
            "file_id": "file_d",
            "tools": [{"type": "code_interpreter"}, {"type": "file_search"}],
        }
    ],
    "metadata": {},
}


@pytest.fixture(name="message_payload")
def _message_payload() -> dict[str, Any]:
    """A message with every content part and annotation, fresh per test."""
    return copy.deepcopy(MESSAGE)


def test_every_content_part_has_its_model(message_payload: dict[str, Any]) -> None:
    """Each part and annotation type structures into its own model, and the
    message comes back exactly."""
    message = converter.structure(message_payload, Message)

    assert [type(p) for p in message.content] == [
        TextPart,
        ImageFileContent,
        ImageUrlContent,
        RefusalPart,
        TextPart,
    ]
    first = message.content[0]
    assert isinstance(first, TextPart)
    assert [type(a) for a in first.text.annotations] == [
        FileCitationAnnotation,
        FilePathAnnotation,
    ]
    assert message.status is MessageStatus.COMPLETED
    assert message.attachments is not None
    assert [type(t) for t in message.attachments[0].tools] == [
        CodeInterpreterTool,
        FileSearchTool,
    ]
    assert round_trip(message_payload, Message) == MESSAGE


def test_text_joins_the_text_parts(message_payload: dict[str, Any]) -> None:
    """``Message.text`` is the text parts' values in order, nothing else;
    ``refusal`` the refusal parts."""
    message = converter.structure(message_payload, Message)

    assert message.text == "See 【4:0†a.md】 and sandbox:/out.csv. Bye."
    assert message.refusal == "I can't share that."


def test_text_of_a_message_without_text_is_empty(
    message_payload: dict[str, Any],
) -> None:
    """A message of images only has empty ``text`` and no refusal."""
    message_payload["content"] = message_payload["content"][1:3]

    message = converter.structure(message_payload, Message)

    assert message.text == ""
    assert message.refusal is None


def test_unknown_part_and_annotation_are_kept(
    message_payload: dict[str, Any],
) -> None:
    """A content part or annotation of a new type parses into the ``Unknown…``
    variant, keeps its data, is skipped by ``text``, and is written back."""
    message_payload["content"].insert(1, {"type": "audio", "audio": {"id": "au_1"}})
    annotations = message_payload["content"][0]["text"]["annotations"]
    annotations.append({"type": "url_citation", "url": "https://x.test"})

    message = converter.structure(message_payload, Message)

    part = message.content[1]
    assert isinstance(part, UnknownPart)
    assert (part.type, part.extra) == ("audio", {"audio": {"id": "au_1"}})
    first = message.content[0]
    assert isinstance(first, TextPart)
    assert isinstance(first.text.annotations[2], UnknownAnnotation)
    assert message.text.endswith("Bye.")
    assert round_trip(message_payload, Message) == message_payload


@pytest.mark.parametrize("status", ["in_progress", "incomplete", "completed"])
def test_known_statuses_are_enum_members(
    status: str, message_payload: dict[str, Any]
) -> None:
    """A known status is a ``MessageStatus``; a new one stays a string."""
    message_payload["status"] = status
    assert isinstance(
        converter.structure(message_payload, Message).status, MessageStatus
    )

    message_payload["status"] = "archived"
    assert converter.structure(message_payload, Message).status == "archived"


def test_thread_tool_resources_are_kept_as_sent() -> None:
    """A thread's tool resources, unknown tools included, come back as sent."""
    payload = {
        "id": "thread_1",
        "object": "thread",
        "created_at": 1,
        "tool_resources": {
            "code_interpreter": {"file_ids": ["file_1"]},
            "file_search": {"vector_store_ids": ["vs_1"]},
            "web": {"x": 1},
        },
        "metadata": {"k": "v"},
    }

    thread = converter.structure(payload, Thread)

    assert thread.tool_resources == payload["tool_resources"]
    assert converter.unstructure(thread) == payload


def test_an_attachment_without_its_optional_keys_parses_and_round_trips() -> None:
    """The schema requires neither file_id nor tools of a message's attachment: {} parses, and stays {}."""
    payload = {**MESSAGE, "attachments": [{}, {"file_id": "file_1"}]}
    message = converter.structure(copy.deepcopy(payload), Message)
    assert message.attachments is not None
    assert [(a.file_id, a.tools) for a in message.attachments] == [
        (None, None),
        ("file_1", None),
    ]
    assert converter.unstructure(message)["attachments"] == [{}, {"file_id": "file_1"}]
