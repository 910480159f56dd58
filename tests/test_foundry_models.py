"""Azure AI Foundry's response bodies: every response schema of its Runs spec parses.

Bodies come from ``tests/foundry-runs.swagger.json`` two ways: a small seeded
generator of our own (fast: hundreds of bodies per schema, every tagged
variant drawn), and ``hypothesis-jsonschema`` as ``test_models.py`` uses for
OpenAI's spec (slow here: about 7 s per run, 5 s per step, so one example per
schema by default; ``OPENAI_RUNS_HYPOTHESIS_EXAMPLES`` raises it).
"""

from __future__ import annotations

import copy
import json
import os
import random
import zlib
from typing import Any

import attrs
import pytest
from _foundry_spec import json_schema, operations, response_schema, subtypes, validator
from hypothesis import HealthCheck, given, settings
from hypothesis_jsonschema import from_schema

from openai_runs import converter
from openai_runs.exceptions import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    error_from_response,
)
from openai_runs.models import (
    AzureAISearchCall,
    AzureAISearchTool,
    AzureFunctionTool,
    BingGroundingCall,
    BingGroundingTool,
    ConnectedAgentTool,
    FunctionCall,
    NamedToolChoice,
    OpenApiCall,
    OpenApiConnectionAuth,
    OpenApiManagedAuth,
    OpenApiTool,
    Page,
    Run,
    RunStatus,
    RunStep,
    ToolCallsDetails,
    UnknownCodeOutput,
    UnknownOpenApiAuth,
    UnknownResponseFormat,
    UnknownStepDetails,
    UnknownStepToolCall,
    UnknownTool,
    UnknownToolCall,
)

MODEL_OF_OPERATION: dict[str, Any] = {
    "Runs_ListRuns": Page[Run],
    "Runs_CreateRun": Run,
    "Runs_GetRun": Run,
    "Runs_UpdateRun": Run,
    "Runs_CancelRun": Run,
    "RunSteps_ListRunSteps": Page[RunStep],
    "RunSteps_GetRunStep": RunStep,
    "Runs_SubmitToolOutputsToRun": Run,
    "CreateThreadAndRun": Run,
}

UNKNOWN_VARIANTS = (
    UnknownTool,
    UnknownToolCall,
    UnknownResponseFormat,
    UnknownStepDetails,
    UnknownStepToolCall,
    UnknownCodeOutput,
    UnknownOpenApiAuth,
)

HYPOTHESIS_EXAMPLES = max(
    1, int(os.environ.get("OPENAI_RUNS_HYPOTHESIS_EXAMPLES", "6")) // 6
)
GENERATED = 60
"""Bodies per schema from the seeded generator (about 20 ms each, checked
against the schema with jsonschema)."""


# --- A small generator of schema-valid bodies ---------------------------------


class Bodies:
    """Draws JSON valid under a JSON Schema (the subset the converted spec uses).

    Optional keys are drawn half the time; one object in ten gets an unknown
    key, which a model must keep in ``extra``; ``anyOf`` picks a branch at
    random, so every tagged subtype comes up.
    """

    def __init__(self, schema: dict[str, Any], seed: int) -> None:
        self.defs = schema["$defs"]
        self.schema = schema
        self.rnd = random.Random(seed)

    def draw(self) -> Any:
        return self._value(self.schema, 0)

    def _value(self, schema: dict[str, Any], depth: int) -> Any:
        rnd = self.rnd
        if "$ref" in schema:
            return self._value(
                self.defs[schema["$ref"].removeprefix("#/$defs/")], depth
            )
        if "anyOf" in schema:
            return self._value(rnd.choice(schema["anyOf"]), depth)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return rnd.choice(schema["enum"])
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            return self._object(schema, depth)
        if kind == "array":
            most = min(schema.get("maxItems", 3), 3 if depth < 7 else 0)
            return [
                self._value(schema["items"], depth + 1)
                for _ in range(rnd.randint(0, most))
            ]
        if kind == "string":
            return rnd.choice(["", "x", "call_1", "ünïcode", "a b/c?d"])
        if kind == "integer":
            return rnd.randint(schema.get("minimum", 0), schema.get("maximum", 2**31))
        if kind == "number":
            return rnd.uniform(schema.get("minimum", 0), schema.get("maximum", 1e6))
        if kind == "boolean":
            return rnd.random() < 0.5
        if kind == "null":
            return None
        # An empty schema: any JSON (an OpenAPI tool's `spec`).
        return rnd.choice([None, 1, "s", [1, "a"], {"k": {"n": [True]}}])

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        rnd = self.rnd
        required = set(schema.get("required", ()))
        out = {
            key: self._value(sub, depth + 1)
            for key, sub in schema.get("properties", {}).items()
            if key in required or (depth < 5 and rnd.random() < 0.5)
        }
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for i in range(rnd.randint(0, 2)):
                out[f"key{i}"] = self._value(extra, depth + 1)
        elif rnd.random() < 0.1 and "properties" in schema:
            out["added_later"] = {"by": "a newer service"}
        return out


def without_added_nulls(out: Any, sent: Any) -> Any:
    """*out*, minus every null key that *sent* did not have, at any depth."""
    if isinstance(out, dict) and isinstance(sent, dict):
        return {
            key: without_added_nulls(value, sent[key]) if key in sent else value
            for key, value in out.items()
            if key in sent or value is not None
        }
    if isinstance(out, list) and isinstance(sent, list) and len(out) == len(sent):
        return [without_added_nulls(o, s) for o, s in zip(out, sent, strict=True)]
    return out


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


def assert_parses(payload: Any, cl: Any) -> Any:
    """*payload* structures into *cl* with known variants only, and back unchanged."""
    sent = copy.deepcopy(payload)
    obj = converter.structure(payload, cl)

    assert unknown_variants(obj) == []
    assert without_added_nulls(converter.unstructure(obj), sent) == sent
    assert payload == sent, "structuring changed its input"
    return obj


# --- Every response schema ----------------------------------------------------


def test_every_operation_is_covered() -> None:
    """The table of models names each of the spec's nine operations."""
    assert sorted(MODEL_OF_OPERATION) == sorted(
        op["operationId"] for _, _, op in operations()
    )


@pytest.mark.parametrize("operation_id", sorted(MODEL_OF_OPERATION))
def test_generated_bodies_parse(operation_id: str) -> None:
    """Bodies valid under each operation's 200 schema parse into typed models
    (every Foundry tool, step tool call and auth type included, no ``Unknown…``
    variant) and unstructure back to the same JSON."""
    schema = response_schema(operation_id)
    check = validator(schema)
    bodies = Bodies(schema, seed=zlib.crc32(operation_id.encode()))

    for _ in range(GENERATED):
        payload = bodies.draw()
        check.validate(payload)
        assert_parses(payload, MODEL_OF_OPERATION[operation_id])


def test_generator_draws_every_subtype() -> None:
    """The generated runs and steps carry every tool type and step tool call
    type of the spec, so the test above covers each."""
    seen: set[str] = set()
    for operation_id in ("Runs_GetRun", "RunSteps_GetRunStep"):
        bodies = Bodies(response_schema(operation_id), seed=1)
        for _ in range(GENERATED):
            seen |= set(_types(bodies.draw()))
    for tags in subtypes().values():
        assert set(tags) <= seen


def _types(node: Any) -> list[str]:
    if isinstance(node, list):
        return [t for item in node for t in _types(item)]
    if not isinstance(node, dict):
        return []
    own = [node["type"]] if isinstance(node.get("type"), str) else []
    return own + [t for value in node.values() for t in _types(value)]


FEW = settings(
    max_examples=HYPOTHESIS_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


@FEW
@given(payload=from_schema(response_schema("Runs_GetRun")))
def test_hypothesis_run_parses(payload: dict[str, Any]) -> None:
    """A ThreadRun from hypothesis-jsonschema parses and round-trips."""
    assert_parses(payload, Run)


@FEW
@given(payload=from_schema(response_schema("RunSteps_GetRunStep")))
def test_hypothesis_step_parses(payload: dict[str, Any]) -> None:
    """A RunStep from hypothesis-jsonschema parses and round-trips."""
    assert_parses(payload, RunStep)


@FEW
@given(payload=from_schema(response_schema("RunSteps_ListRunSteps")))
def test_hypothesis_step_page_parses(payload: dict[str, Any]) -> None:
    """A page of steps (no ``object``, no ``first_id``) from
    hypothesis-jsonschema parses and round-trips."""
    assert_parses(payload, Page[RunStep])


# --- Differences that matter --------------------------------------------------


RUN: dict[str, Any] = {
    "id": "run_1",
    "object": "thread.run",
    "thread_id": "thread_1",
    "assistant_id": "asst_1",
    "status": "completed",
    "last_error": None,
    "model": "gpt-4o-deployment",
    "instructions": "",
    "tools": [
        {"type": "azure_ai_search"},
        {
            "type": "bing_grounding",
            "bing_grounding": {"search_configurations": [{"connection_id": "conn"}]},
        },
        {
            "type": "connected_agent",
            "connected_agent": {"id": "asst_2", "name": "helper", "description": "d"},
        },
        {
            "type": "openapi",
            "openapi": {
                "name": "weather",
                "spec": {"openapi": "3.0.0"},
                "auth": {
                    "type": "managed_identity",
                    "security_scheme": {"audience": "a"},
                },
            },
        },
        {
            "type": "azure_function",
            "azure_function": {
                "function": {"name": "f", "parameters": {}},
                "input_binding": {
                    "type": "storage_queue",
                    "storage_queue": {
                        "queue_service_endpoint": "u",
                        "queue_name": "in",
                    },
                },
                "output_binding": {
                    "type": "storage_queue",
                    "storage_queue": {
                        "queue_service_endpoint": "u",
                        "queue_name": "out",
                    },
                },
            },
        },
    ],
    "created_at": 1,
    "expires_at": None,
    "started_at": 1,
    "completed_at": 2,
    "cancelled_at": None,
    "failed_at": None,
    "incomplete_details": None,
    "usage": None,
    "max_prompt_tokens": None,
    "max_completion_tokens": None,
    "truncation_strategy": None,
    "tool_choice": None,
    "response_format": None,
    "metadata": {},
    "tool_resources": {"azure_ai_search": {"indexes": []}},
    "parallel_tool_calls": True,
}


def test_foundry_run_tools_are_typed() -> None:
    """Foundry's five tool types structure into their own models, with their
    fields typed, not into ``UnknownTool``."""
    run = assert_parses(copy.deepcopy(RUN), Run)

    assert [type(t) for t in run.tools] == [
        AzureAISearchTool,
        BingGroundingTool,
        ConnectedAgentTool,
        OpenApiTool,
        AzureFunctionTool,
    ]
    assert run.tools[1].bing_grounding.search_configurations[0].connection_id == "conn"
    assert run.tools[2].connected_agent.name == "helper"
    assert isinstance(run.tools[3].openapi.auth, OpenApiManagedAuth)
    assert run.tools[4].azure_function.output_binding.storage_queue.queue_name == "out"
    assert run.extra["tool_resources"] == {"azure_ai_search": {"indexes": []}}


def test_run_without_required_action_parses() -> None:
    """Foundry does not require ``required_action``: a run without the key
    parses, with no tool calls."""
    run = converter.structure({**RUN, "status": "in_progress"}, Run)

    assert "required_action" not in RUN
    assert run.required_action is None
    assert run.tool_calls == []
    assert not run.is_terminal


def test_foundry_status_enum_has_no_incomplete() -> None:
    """Foundry's status enum lacks ``incomplete``; every one of its values is
    a known status, and an ``incomplete`` sent anyway (the enum is open) is
    still the terminal ``RunStatus.INCOMPLETE``."""
    enum = json_schema("RunStatus")["enum"]

    assert "incomplete" not in enum
    assert {RunStatus(value) for value in enum} <= set(RunStatus)
    run = converter.structure(
        {
            **RUN,
            "status": "incomplete",
            "incomplete_details": {"reason": "max_prompt_tokens"},
        },
        Run,
    )
    assert run.status is RunStatus.INCOMPLETE
    assert run.is_terminal


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("none", "none"),
        ("auto", "auto"),
        ({"type": "bing_custom_search"}, NamedToolChoice(type="bing_custom_search")),
        ({"type": "connected_agent"}, NamedToolChoice(type="connected_agent")),
        (None, None),
    ],
)
def test_foundry_tool_choice_modes(wire: Any, expected: Any) -> None:
    """Foundry's tool_choice (a mode, or a named tool of one of its types)
    parses as a string or a ``NamedToolChoice``."""
    assert (
        converter.structure({**RUN, "tool_choice": wire}, Run).tool_choice == expected
    )


def test_foundry_step_tool_calls_are_typed() -> None:
    """A tool_calls step with Foundry's call types parses each into its model;
    a function call without ``output`` (Foundry has none) parses too."""
    step = {
        "id": "step_1",
        "object": "thread.run.step",
        "type": "tool_calls",
        "assistant_id": "asst_1",
        "thread_id": "thread_1",
        "run_id": "run_1",
        "status": "completed",
        "step_details": {
            "type": "tool_calls",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "bing_grounding",
                    "bing_grounding": {"requesturl": "u"},
                },
                {"id": "c2", "type": "azure_ai_search", "azure_ai_search": {}},
                {"id": "c3", "type": "openapi", "openapi": {"k": "v"}},
                {
                    "id": "c4",
                    "type": "function",
                    "function": {"name": "f", "arguments": "{}"},
                },
            ],
        },
        "last_error": None,
        "created_at": 1,
        "expired_at": None,
        "completed_at": 2,
        "cancelled_at": None,
        "failed_at": None,
        "metadata": None,
    }

    parsed = assert_parses(step, RunStep)

    assert isinstance(parsed.step_details, ToolCallsDetails)
    calls = parsed.step_details.tool_calls
    assert [type(c) for c in calls] == [
        BingGroundingCall,
        AzureAISearchCall,
        OpenApiCall,
        FunctionCall,
    ]
    assert calls[0].bing_grounding == {"requesturl": "u"}
    assert calls[3].function.output is None


def test_openapi_connection_auth() -> None:
    """An OpenAPI tool's connection auth carries its connection id."""
    tool = converter.structure(
        {
            "type": "openapi",
            "openapi": {
                "name": "n",
                "spec": None,
                "auth": {
                    "type": "connection",
                    "security_scheme": {"connection_id": "c"},
                },
            },
        },
        OpenApiTool,
    )

    assert isinstance(tool.openapi.auth, OpenApiConnectionAuth)
    assert tool.openapi.auth.security_scheme.connection_id == "c"


def test_list_page_without_object_and_first_id() -> None:
    """A Foundry list page (no ``object``, no ``first_id``, no ``last_id``
    when empty) parses into a ``Page``."""
    full = converter.structure(
        {"data": [RUN], "last_id": "run_1", "has_more": False}, Page[Run]
    )
    empty = converter.structure({"data": [], "has_more": False}, Page[Run])

    assert full.data[0].id == "run_1"
    assert full.first_id is None
    assert full.last_id == "run_1"
    assert empty.data == []
    assert empty.last_id is None


# --- Errors -------------------------------------------------------------------

ERROR_CASES = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (404, NotFoundError),
    (429, RateLimitError),
    (500, InternalServerError),
    (418, APIStatusError),
]


@pytest.mark.parametrize(("status", "cls"), ERROR_CASES)
def test_generated_error_bodies_map_to_typed_errors(
    status: int, cls: type[APIStatusError]
) -> None:
    """Any AgentV1Error body (every inner field optional or null) maps, by
    status, to the same typed error as OpenAI's, with its fields carried."""
    schema = json_schema("ServicePatterns.AgentV1Error")
    check = validator(schema)
    bodies = Bodies(schema, seed=status)

    for _ in range(40):
        body = bodies.draw()
        check.validate(body)
        error = error_from_response(status, {}, json.dumps(body).encode())

        assert type(error) is cls
        inner = body["error"]
        assert error.code == inner.get("code")
        assert error.type == inner.get("type")
        assert error.param == inner.get("param")
        assert error.message == inner.get("message") or error.message.startswith(
            f"HTTP {status}"
        )
        assert error.body == body


def test_empty_error_body_maps_to_typed_error() -> None:
    """``{"error": {}}``, which Foundry's schema allows, is a typed error with a
    message that names the status."""
    error = error_from_response(403, {}, b'{"error": {}}')

    assert error.status_code == 403
    assert error.code is None
    assert "HTTP 403" in error.message
