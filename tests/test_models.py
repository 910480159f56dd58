"""The models and :data:`openai_runs.converter`: the spec's JSON in and back out.

Parsing the spec's own examples, property tests over payloads generated from
its schemas, forward compatibility (unknown keys, statuses and ``type`` tags)
and what a payload that is not a run does.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import os
from typing import Any

import attrs
import cattrs
import pytest
from _spec import GENERATED, json_schema, response_examples, schema_examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from openai_runs import converter
from openai_runs.models import (
    CodeInterpreterCall,
    CodeInterpreterTool,
    CodeOutputImage,
    CodeOutputLogs,
    FileSearchCall,
    FileSearchTool,
    FunctionCall,
    FunctionTool,
    MessageCreationDetails,
    NamedToolChoice,
    NamedToolChoiceFunction,
    Page,
    ResponseFormatJsonObject,
    ResponseFormatJsonSchema,
    ResponseFormatText,
    Run,
    RunStatus,
    RunStep,
    RunStepStatus,
    ToolCall,
    ToolCallsDetails,
    UnknownCodeOutput,
    UnknownResponseFormat,
    UnknownStepDetails,
    UnknownStepToolCall,
    UnknownTool,
    UnknownToolCall,
    as_datetime,
)

MODEL_OF_SCHEMA: dict[str, Any] = {
    "RunObject": Run,
    "RunStepObject": RunStep,
    "ListRunsResponse": Page[Run],
    "ListRunStepsResponse": Page[RunStep],
}

HYPOTHESIS_EXAMPLES = int(os.environ.get("OPENAI_RUNS_HYPOTHESIS_EXAMPLES", "6"))
"""Examples per property test; set ``OPENAI_RUNS_HYPOTHESIS_EXAMPLES`` for a deep run.

Generating from these schemas is slow (about 1 s per run, 0.3 s per step or
list page, measured here), so the default keeps this file near 20 s.
"""

UNKNOWN_VARIANTS = (
    UnknownTool,
    UnknownResponseFormat,
    UnknownStepDetails,
    UnknownStepToolCall,
    UnknownCodeOutput,
)


def without_added_nulls(out: Any, sent: Any) -> Any:
    """*out*, minus every null key that *sent* did not have, at any depth.

    A model has one value for "the API left this key out" and "the API sent
    null": ``None``, and unstructuring writes every field. So a key missing
    from a payload (the spec's examples leave out ``required_action``,
    ``metadata`` and more) comes back as ``"key": null``. That is the one
    difference a round trip may make; everything else, including unknown keys
    and values the API sends as null, must come back exactly as sent.
    """
    if isinstance(out, dict) and isinstance(sent, dict):
        return {
            key: without_added_nulls(value, sent[key]) if key in sent else value
            for key, value in out.items()
            if key in sent or value is not None
        }
    if isinstance(out, list) and isinstance(sent, list) and len(out) == len(sent):
        return [without_added_nulls(o, s) for o, s in zip(out, sent, strict=True)]
    return out


def round_trip(payload: Any, cl: Any) -> Any:
    """Structure *payload* into *cl*, unstructure it, drop the nulls it added."""
    return without_added_nulls(
        converter.unstructure(converter.structure(payload, cl)), payload
    )


def unknown_variants(obj: Any) -> list[Any]:
    """Every ``Unknown…`` variant inside the model *obj*."""
    if isinstance(obj, list):
        return [u for item in obj for u in unknown_variants(item)]
    if not attrs.has(type(obj)):
        return []
    found = [obj] if isinstance(obj, UNKNOWN_VARIANTS) else []
    for field in attrs.fields(type(obj)):
        if field.name != "extra":
            found += unknown_variants(getattr(obj, field.name))
    return found


# --- The spec's own examples --------------------------------------------------

EXAMPLES = [
    pytest.param(schema_name, text, id=label)
    for label, schema_name, text in response_examples()
] + [
    pytest.param(schema_name, text, id=f"{schema_name}.example")
    for schema_name, text in schema_examples()
]


def test_spec_has_examples() -> None:
    """The spec yields every operation's JSON example and both schema examples."""
    labels = [p.id for p in EXAMPLES]

    assert len(EXAMPLES) == 11
    assert "cancelRun" in labels
    assert "listRunSteps" in labels
    assert "RunStepObject.example" in labels


@pytest.mark.parametrize(("schema_name", "text"), EXAMPLES)
def test_spec_example_round_trips(schema_name: str, text: str) -> None:
    """Every example of the API reference parses, with known variants only, and
    unstructures back to the same JSON."""
    payload = json.loads(text)
    cl = MODEL_OF_SCHEMA[schema_name]

    obj = converter.structure(payload, cl)

    assert unknown_variants(obj) == []
    assert round_trip(payload, cl) == payload


@pytest.mark.parametrize(("schema_name", "text"), EXAMPLES)
def test_spec_example_statuses_are_known(schema_name: str, text: str) -> None:
    """The examples' statuses structure into the enums, not plain strings."""
    obj = converter.structure(json.loads(text), MODEL_OF_SCHEMA[schema_name])

    for item in obj.data if isinstance(obj, Page) else [obj]:
        assert isinstance(item.status, RunStatus | RunStepStatus)


# --- Property tests over the schemas -----------------------------------------


@functools.cache
def payloads(schema_name: str) -> st.SearchStrategy[Any]:
    """Schema-valid payloads for the component *schema_name*."""
    schema = json_schema(schema_name)
    # ListRunStepsResponse declares properties but no ``type``, which lets any
    # non-object through; the API always answers with an object.
    schema["type"] = "object"
    return from_schema(schema)


PROPERTY = settings(
    max_examples=HYPOTHESIS_EXAMPLES,
    deadline=None,
    database=None,
    # Slow by nature. hypothesis-jsonschema also discards many drafts: it
    # filters oneOf branches, and gives up on an object once it has drawn all
    # its optional keys (incomplete_details has just one, ``reason``).
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
"""Shared by the property tests below. One test per schema with ``@given(strategy)``
rather than a parametrized ``st.data()`` test: interactive draws made generation
about 60 % slower here."""


PAGE_PROPERTY = settings(PROPERTY, max_examples=max(1, HYPOTHESIS_EXAMPLES // 2))
"""Half as many pages: each holds several runs or steps, which the tests above
already cover one by one; what a page adds is the list wrapper."""


def assert_round_trips(payload: Any, schema_name: str) -> None:
    """*payload* structures into its model and unstructures back unchanged."""
    sent = copy.deepcopy(payload)

    assert round_trip(payload, MODEL_OF_SCHEMA[schema_name]) == sent
    assert payload == sent, "structuring changed its input"


@GENERATED
@PROPERTY
@given(payload=payloads("RunObject"))
def test_generated_run_round_trips(payload: dict[str, Any]) -> None:
    """Any run valid under the spec, unknown extra keys at any depth included,
    structures and unstructures back to the same JSON."""
    assert_round_trips(payload, "RunObject")


@GENERATED
@PROPERTY
@given(payload=payloads("RunStepObject"))
def test_generated_step_round_trips(payload: dict[str, Any]) -> None:
    """Any run step valid under the spec structures and unstructures back to
    the same JSON."""
    assert_round_trips(payload, "RunStepObject")


@GENERATED
@PAGE_PROPERTY
@given(payload=payloads("ListRunsResponse"))
def test_generated_run_page_round_trips(payload: dict[str, Any]) -> None:
    """Any page of runs valid under the spec structures into ``Page[Run]`` and
    back to the same JSON."""
    assert_round_trips(payload, "ListRunsResponse")


@GENERATED
@PAGE_PROPERTY
@given(payload=payloads("ListRunStepsResponse"))
def test_generated_step_page_round_trips(payload: dict[str, Any]) -> None:
    """Any page of run steps valid under the spec structures into
    ``Page[RunStep]`` and back to the same JSON."""
    assert_round_trips(payload, "ListRunStepsResponse")


# --- Forward compatibility -----------------------------------------------------


RUN: dict[str, Any] = {
    "id": "run_abc123",
    "object": "thread.run",
    "created_at": 1699076792,
    "thread_id": "thread_abc123",
    "assistant_id": "asst_abc123",
    "status": "requires_action",
    "required_action": {
        "type": "submit_tool_outputs",
        "submit_tool_outputs": {
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ]
        },
    },
    "last_error": None,
    "expires_at": 1699077392,
    "started_at": 1699076793,
    "cancelled_at": None,
    "failed_at": None,
    "completed_at": None,
    "incomplete_details": None,
    "model": "gpt-4o",
    "instructions": "Be brief.",
    "tools": [
        {"type": "code_interpreter"},
        {
            "type": "file_search",
            "file_search": {
                "max_num_results": 5,
                "ranking_options": {"ranker": "auto", "score_threshold": 0.5},
            },
        },
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city.",
                "parameters": {"type": "object", "properties": {}},
                "strict": False,
            },
        },
    ],
    "metadata": {"k": "v"},
    "usage": None,
    "temperature": 1.0,
    "top_p": 1.0,
    "max_prompt_tokens": 1000,
    "max_completion_tokens": 1000,
    "truncation_strategy": {"type": "auto", "last_messages": None},
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "response_format": "auto",
}

STEP: dict[str, Any] = {
    "id": "step_abc123",
    "object": "thread.run.step",
    "created_at": 1699063291,
    "assistant_id": "asst_abc123",
    "thread_id": "thread_abc123",
    "run_id": "run_abc123",
    "type": "tool_calls",
    "status": "completed",
    "step_details": {
        "type": "tool_calls",
        "tool_calls": [
            {
                "id": "call_code",
                "type": "code_interpreter",
                "code_interpreter": {
                    "input": "print(1)",
                    "outputs": [
                        {"type": "logs", "logs": "1\n"},
                        {"type": "image", "image": {"file_id": "file_1"}},
                    ],
                },
            },
            {
                "id": "call_search",
                "type": "file_search",
                "file_search": {
                    "ranking_options": {
                        "ranker": "default_2024_08_21",
                        "score_threshold": 0.0,
                    },
                    "results": [
                        {
                            "file_id": "file_2",
                            "file_name": "a.txt",
                            "score": 0.9,
                            "content": [{"type": "text", "text": "hello"}],
                        }
                    ],
                },
            },
            {
                "id": "call_fn",
                "type": "function",
                "function": {"name": "f", "arguments": "{}", "output": None},
            },
        ],
    },
    "last_error": None,
    "expired_at": None,
    "cancelled_at": None,
    "failed_at": None,
    "completed_at": 1699063292,
    "metadata": None,
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
}


@pytest.fixture(name="run_payload")
def _run_payload() -> dict[str, Any]:
    """A run payload with every field and every tool kind, fresh per test."""
    return copy.deepcopy(RUN)


@pytest.fixture(name="step_payload")
def _step_payload() -> dict[str, Any]:
    """A tool-calls step with all three tool call kinds, fresh per test."""
    return copy.deepcopy(STEP)


def test_full_payloads_round_trip_exactly(
    run_payload: dict[str, Any], step_payload: dict[str, Any]
) -> None:
    """A payload with every key comes back exactly, with no normalizing."""
    run = converter.structure(run_payload, Run)
    step = converter.structure(step_payload, RunStep)

    assert converter.unstructure(run) == RUN
    assert converter.unstructure(step) == STEP
    assert [type(t) for t in run.tools] == [
        CodeInterpreterTool,
        FileSearchTool,
        FunctionTool,
    ]
    assert isinstance(step.step_details, ToolCallsDetails)
    assert [type(c) for c in step.step_details.tool_calls] == [
        CodeInterpreterCall,
        FileSearchCall,
        FunctionCall,
    ]
    call = step.step_details.tool_calls[0]
    assert isinstance(call, CodeInterpreterCall)
    assert [type(o) for o in call.code_interpreter.outputs] == [
        CodeOutputLogs,
        CodeOutputImage,
    ]


def _get(obj: Any, path: tuple[str | int, ...]) -> Any:
    """Follow *path* through JSON (keys, indexes) or models (attributes, indexes)."""
    for key in path:
        obj = (
            obj[key]
            if isinstance(key, int) or isinstance(obj, dict)
            else getattr(obj, key)
        )
    return obj


NESTED = (
    ("required_action", "submit_tool_outputs", "tool_calls", 0, "function"),
    ("tools", 1, "file_search", "ranking_options"),
    ("tools", 2, "function"),
    ("truncation_strategy",),
)
STEP_NESTED = (
    ("step_details",),
    ("step_details", "tool_calls", 0, "code_interpreter", "outputs", 1, "image"),
    ("step_details", "tool_calls", 1, "file_search", "results", 0, "content", 0),
    ("step_details", "tool_calls", 2, "function"),
    ("usage",),
)


@pytest.mark.parametrize(
    ("cl", "path"),
    [pytest.param(Run, (), id="run")]
    + [pytest.param(Run, p, id=".".join(map(str, p))) for p in NESTED]
    + [pytest.param(RunStep, (), id="step")]
    + [pytest.param(RunStep, p, id=".".join(map(str, p))) for p in STEP_NESTED],
)
def test_unknown_keys_kept_in_extra(
    cl: type,
    path: tuple[str | int, ...],
    run_payload: dict[str, Any],
    step_payload: dict[str, Any],
) -> None:
    """A key this version does not know lands in that object's ``extra`` and is
    written back where it was."""
    payload = run_payload if cl is Run else step_payload
    new = {"reasoning_effort": "high", "future": {"nested": [1, None]}}
    _get(payload, path).update(new)

    obj = converter.structure(payload, cl)

    assert _get(obj, path).extra == new
    assert converter.unstructure(obj) == payload


# Statuses: a run with an unknown status ends only with a terminal timestamp.
@pytest.mark.parametrize(
    ("status", "stamps", "terminal"),
    [
        ("completed", {"completed_at": 1}, True),
        ("expired", {}, True),
        ("incomplete", {}, True),
        ("cancelling", {}, False),
        ("requires_action", {}, False),
        ("in_progress", {"completed_at": 1}, False),
        ("paused", {}, False),
        ("paused", {"expires_at": 1699077392}, False),
        ("archived", {"completed_at": 1699077000}, True),
        ("archived", {"failed_at": 1699077000}, True),
        ("archived", {"cancelled_at": 0}, True),
    ],
)
def test_is_terminal(
    status: str, stamps: dict[str, int], terminal: bool, run_payload: dict[str, Any]
) -> None:
    """Known statuses decide by themselves; an unknown one needs a terminal
    timestamp (even the epoch, 0) to count as an end."""
    run_payload.update(status=status, **stamps)

    run = converter.structure(run_payload, Run)

    assert run.is_terminal is terminal
    assert run.status == status


@pytest.mark.parametrize(
    ("cl", "status", "kind"),
    [
        (Run, "queued", RunStatus),
        (Run, "paused", str),
        (RunStep, "in_progress", RunStepStatus),
        (RunStep, "skipped", str),
    ],
)
def test_status_is_enum_or_string(
    cl: type,
    status: str,
    kind: type,
    run_payload: dict[str, Any],
    step_payload: dict[str, Any],
) -> None:
    """A known status becomes its enum member; an unknown one stays a plain
    string and is written back unchanged."""
    payload = run_payload if cl is Run else step_payload
    payload["status"] = status

    obj = converter.structure(payload, cl)

    assert type(obj.status) is kind
    assert converter.unstructure(obj) == payload


# Unknown ``type`` tags: (model, path to the list or field, new value, variant).
UNKNOWN_TAGS = [
    pytest.param(
        Run,
        ("tools", 0),
        {"type": "computer_use", "display": {"width": 1024}},
        UnknownTool,
        id="tool",
    ),
    pytest.param(
        Run,
        ("response_format",),
        {"type": "grammar", "grammar": {"syntax": "lark"}},
        UnknownResponseFormat,
        id="response_format",
    ),
    pytest.param(
        RunStep,
        ("step_details",),
        {"type": "reasoning", "summary": [{"text": "thinking"}]},
        UnknownStepDetails,
        id="step_details",
    ),
    pytest.param(
        RunStep,
        ("step_details", "tool_calls", 0),
        {"id": "call_web", "type": "web_search", "web_search": {"query": "q"}},
        UnknownStepToolCall,
        id="step_tool_call",
    ),
    pytest.param(
        RunStep,
        ("step_details", "tool_calls", 0, "code_interpreter", "outputs", 0),
        {"type": "chart", "chart": {"file_id": "file_9"}},
        UnknownCodeOutput,
        id="code_output",
    ),
]


@pytest.mark.parametrize(("cl", "path", "value", "variant"), UNKNOWN_TAGS)
def test_unknown_type_tag_structures_into_unknown_variant(
    cl: type,
    path: tuple[str | int, ...],
    value: dict[str, Any],
    variant: type,
    run_payload: dict[str, Any],
    step_payload: dict[str, Any],
) -> None:
    """A ``type`` this version does not know gives the ``Unknown…`` variant,
    with its tag on ``type``, its data in ``extra``, and an unchanged round trip."""
    payload = run_payload if cl is Run else step_payload
    *parent, last = path
    _get(payload, tuple(parent))[last] = copy.deepcopy(value)

    obj = converter.structure(payload, cl)

    unknown = _get(obj, path)
    assert type(unknown) is variant
    assert unknown.type == value["type"]
    assert {"type": unknown.type, **unknown.extra} | (
        {"id": unknown.id} if isinstance(unknown, UnknownStepToolCall) else {}
    ) == value
    assert converter.unstructure(obj) == payload


def test_unknown_required_action_type_parses(run_payload: dict[str, Any]) -> None:
    """A ``required_action`` of a type added later parses, its data in ``extra``,
    and the run has no tool calls to answer."""
    action = {"type": "submit_approval", "submit_approval": {"request_id": "r_1"}}
    run_payload.update(status="requires_action", required_action=action)

    run = converter.structure(run_payload, Run)

    assert run.required_action is not None
    assert run.required_action.type == "submit_approval"
    assert run.required_action.extra == {"submit_approval": {"request_id": "r_1"}}
    assert run.tool_calls == []
    written = converter.unstructure(run)["required_action"]
    assert written.items() >= action.items()


def test_unknown_required_tool_call_type_parses(run_payload: dict[str, Any]) -> None:
    """A required tool call of a type added later parses as UnknownToolCall;
    ``run.tool_calls`` keeps the function calls, and the JSON round-trips."""
    calls = [
        {"id": "call_1", "type": "mcp", "mcp": {"server": "s", "name": "n"}},
        {
            "id": "call_2",
            "type": "function",
            "function": {"name": "f", "arguments": "{}"},
        },
    ]
    action = {
        "type": "submit_tool_outputs",
        "submit_tool_outputs": {"tool_calls": calls},
    }
    run_payload.update(status="requires_action", required_action=action)

    run = converter.structure(run_payload, Run)

    assert run.required_action is not None
    assert run.required_action.submit_tool_outputs is not None
    unknown, known = run.required_action.submit_tool_outputs.tool_calls
    assert isinstance(unknown, UnknownToolCall)
    assert isinstance(known, ToolCall)
    assert (unknown.id, unknown.type) == ("call_1", "mcp")
    assert unknown.extra == {"mcp": {"server": "s", "name": "n"}}
    assert [call.id for call in run.tool_calls] == ["call_2"]
    assert converter.unstructure(run)["required_action"] == action


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("a_new_mode", "a_new_mode"),
        (None, None),
        ({"type": "file_search"}, NamedToolChoice(type="file_search")),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            NamedToolChoice(
                type="function",
                function=NamedToolChoiceFunction(name="get_weather"),
            ),
        ),
    ],
)
def test_tool_choice_string_or_object(
    value: Any, expected: Any, run_payload: dict[str, Any]
) -> None:
    """``tool_choice`` is a mode string (known or not), null, or a named tool."""
    run_payload["tool_choice"] = value

    run = converter.structure(run_payload, Run)

    assert run.tool_choice == expected
    assert round_trip(run_payload, Run) == run_payload


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("auto", str),
        (None, type(None)),
        ({"type": "text"}, ResponseFormatText),
        ({"type": "json_object"}, ResponseFormatJsonObject),
        (
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "description": None,
                    "schema": {"type": "object"},
                    "strict": True,
                },
            },
            ResponseFormatJsonSchema,
        ),
    ],
)
def test_response_format_string_or_object(
    value: Any, kind: type, run_payload: dict[str, Any]
) -> None:
    """``response_format`` is ``auto``, null, or an object tagged by ``type``."""
    run_payload["response_format"] = value

    run = converter.structure(run_payload, Run)

    assert type(run.response_format) is kind
    assert converter.unstructure(run) == run_payload


def test_step_details_message_creation(step_payload: dict[str, Any]) -> None:
    """A ``message_creation`` step gives the message id."""
    step_payload["type"] = "message_creation"
    step_payload["step_details"] = {
        "type": "message_creation",
        "message_creation": {"message_id": "msg_1"},
    }

    step = converter.structure(step_payload, RunStep)

    assert isinstance(step.step_details, MessageCreationDetails)
    assert step.step_details.message_creation.message_id == "msg_1"
    assert converter.unstructure(step) == step_payload


def test_tool_calls_only_while_requires_action(run_payload: dict[str, Any]) -> None:
    """``Run.tool_calls`` lists what the run waits on, and nothing otherwise."""
    waiting = converter.structure(run_payload, Run)
    run_payload.update(status="in_progress", required_action=None)
    running = converter.structure(run_payload, Run)

    assert [c.id for c in waiting.tool_calls] == ["call_1"]
    assert waiting.tool_calls[0].function.name == "get_weather"
    assert running.tool_calls == []


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (0, dt.datetime(1970, 1, 1, tzinfo=dt.UTC)),
        (1699076792, dt.datetime(2023, 11, 4, 5, 46, 32, tzinfo=dt.UTC)),
        (None, None),
    ],
)
def test_as_datetime(timestamp: int | None, expected: dt.datetime | None) -> None:
    """``as_datetime`` turns the API's Unix seconds into an aware UTC datetime."""
    moment = as_datetime(timestamp)

    assert moment == expected
    if moment is not None:
        assert moment.utcoffset() == dt.timedelta(0)
        assert moment.tzinfo is dt.UTC


def test_models_are_frozen(run_payload: dict[str, Any]) -> None:
    """A parsed run cannot be changed in place."""
    run = converter.structure(run_payload, Run)

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        run.status = "completed"  # type: ignore[misc]


# --- Payloads that are not what the API sends -----------------------------------


def _without(key: str) -> Any:
    return lambda p: {k: v for k, v in p.items() if k != key}


def _with(**changes: Any) -> Any:
    return lambda p: {**p, **changes}


@pytest.mark.parametrize(
    ("cl", "make", "what", "where"),
    [
        (Run, _without("id"), "required field missing", "$.id"),
        (Run, _without("status"), "required field missing", "$.status"),
        (Run, _with(id=None), "expected str", "$.id"),
        (Run, _with(id=123), "expected str", "$.id"),
        (Run, _with(created_at="1699076792"), "expected int", "$.created_at"),
        (Run, _with(created_at=1699076792.5), "expected int", "$.created_at"),
        (Run, _with(created_at=True), "expected int", "$.created_at"),
        (Run, _with(temperature="1"), "expected float", "$.temperature"),
        (Run, _with(temperature=False), "expected float", "$.temperature"),
        (
            Run,
            _with(parallel_tool_calls="no"),
            "expected bool",
            "$.parallel_tool_calls",
        ),
        (Run, _with(status=5), "expected openai_runs.models.RunStatus", "$.status"),
        (Run, _with(metadata={"k": 1}), "expected str", "$.metadata['k']"),
        (Run, _with(usage="lots"), "expected a JSON object, got str", "$.usage"),
        (
            Run,
            _with(required_action={}),
            "required field missing",
            "$.required_action.type",
        ),
        (
            Run,
            _with(tools=[{"type": "function"}]),
            "required field missing",
            "$.tools[0].function",
        ),
        (RunStep, _without("step_details"), "required field missing", "$.step_details"),
        (Page[Run], lambda p: {"object": "list"}, "required field missing", "$.data"),
        (Run, lambda p: None, "expected a JSON object, got NoneType", "$"),
        (Run, lambda p: [p], "expected a JSON object, got list", "$"),
        (Run, lambda p: "run", "expected a JSON object, got str", "$"),
    ],
)
def test_bad_payload_raises_class_validation_error(
    cl: Any,
    make: Any,
    what: str,
    where: str,
    run_payload: dict[str, Any],
    step_payload: dict[str, Any],
) -> None:
    """A payload that is not a valid model raises cattrs' ``ClassValidationError``
    naming the bad field, instead of parsing into wrong data (a null id is not
    the string ``"None"``). The client wraps it into ``APIDecodeError``."""
    payload = make(step_payload if cl is RunStep else run_payload)

    with pytest.raises(cattrs.ClassValidationError) as info:
        converter.structure(payload, cl)

    assert [m for m in cattrs.transform_error(info.value) if m.endswith(f" @ {where}")]
    assert what in str(cattrs.transform_error(info.value))
