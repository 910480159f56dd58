"""The emulator holds callers to the live API's rules (issue 19), over HTTP."""

from __future__ import annotations

import functools
import json
import re
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import pytest
from _spec import SPEC_PATH, json_schema, validator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from test_cli import serving
from test_emulator import emulated, run

import openai_runs.testing
from openai_runs import RunsClient
from openai_runs._cli import main
from openai_runs.exceptions import InsufficientQuotaError
from openai_runs.testing import (
    ApiError,
    Assistant,
    Emulator,
    Fault,
    ManualClock,
    Phase,
    RateLimit,
    RunScript,
)
from openai_runs.testing._app import run_fields
from openai_runs.testing._schema import check_body, unknown_keywords

RUN = validator("RunObject")
BASE = {"assistant_id": "asst_1"}
FUNCTION = {"type": "function", "function": {"name": "get_weather"}}
CLOCK = {"type": "function", "function": {"name": "get_time"}}
CODE_TOOL = {"type": "code_interpreter"}
# CreateRunRequest fields that CreateThreadAndRunRequest lacks.
RUN_ONLY = {"reasoning_effort", "additional_instructions", "additional_messages"}
REQUEST_SCHEMAS = [
    "CreateRunRequest",
    "CreateThreadAndRunRequest",
    "SubmitToolOutputsRunRequest",
    "ModifyRunRequest",
    "CreateThreadRequest",
]


# -- 1. request bodies against the contract's schemas -------------------------


@pytest.mark.parametrize(
    ("extra", "param", "code", "message"),
    [
        (
            {"tool_choice": "sometimes"},
            "tool_choice",
            "invalid_value",
            "Invalid value for 'tool_choice': 'sometimes'. Supported values are: "
            "'none', 'auto', and 'required'.",
        ),
        (
            {"parallel_tool_calls": "yes"},
            "parallel_tool_calls",
            "invalid_type",
            "Invalid type for 'parallel_tool_calls': expected a boolean, but got a "
            "string instead.",
        ),
        (
            {"max_prompt_tokens": 300.5},
            "max_prompt_tokens",
            "invalid_type",
            "Invalid type for 'max_prompt_tokens': expected an integer, but got a "
            "decimal instead.",
        ),
        (
            {"truncation_strategy": {"type": "bogus"}},
            "truncation_strategy.type",
            "invalid_value",
            "Invalid value for 'truncation_strategy.type': 'bogus'. Supported "
            "values are: 'auto' and 'last_messages'.",
        ),
        (
            {"response_format": {"type": "yaml"}},
            "response_format.type",
            "invalid_value",
            "Invalid value for 'response_format.type': 'yaml'. Supported values "
            "are: 'text', 'json_object', and 'json_schema'.",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "strict": "no"}}]},
            "tools[0].function.strict",
            "invalid_type",
            None,
        ),
        (
            {"truncation_strategy": {"type": "last_messages", "last_messages": 0}},
            "truncation_strategy.last_messages",
            "integer_below_min_value",
            "Invalid 'truncation_strategy.last_messages': integer below minimum "
            "value. Expected a value >= 1, but got 0 instead.",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "bad name!"}}]},
            "tools[0].function.name",
            "invalid_value",
            None,
        ),
        ({"tools": [{"type": "function", "function": {"name": "f" * 65}}]},
         "tools[0].function.name", "string_above_max_length", None),
        ({"tools": [FUNCTION] * 21}, "tools", "array_above_max_length", None),
        ({"temperature": 2.5}, "temperature", "decimal_above_max_value", None),
        ({"max_completion_tokens": 10}, "max_completion_tokens",
         "integer_below_min_value", None),
        ({"model": 4}, "model", "invalid_type", None),
        ({"reasoning_effort": "extreme"}, "reasoning_effort", "invalid_value", None),
        ({"tool_choice": {"type": "function"}}, "tool_choice.function",
         "missing_required_parameter", None),
        ({"tool_choice": {"type": "function", "function": {}}},
         "tool_choice.function.name", "missing_required_parameter", None),
        ({"response_format": {"type": "json_schema", "json_schema": {}}},
         "response_format.json_schema.name", "missing_required_parameter", None),
        ({"additional_messages": [{"role": "system", "content": "hi"}]},
         "additional_messages[0].role", "invalid_value", None),
        ({"additional_messages": [{"role": "user", "content": []}]},
         "additional_messages[0].content", "empty_array", None),
        ({"tools": [{"type": "file_search", "file_search": {"max_num_results": 99}}]},
         "tools[0].file_search.max_num_results", "integer_above_max_value", None),
        ({"truncation_strategy": {"type": "last_messages"}},
         "truncation_strategy.last_messages", "missing_required_parameter", None),
        ({"metadata": {"k": 1}}, "metadata.k", "invalid_type", None),
    ],
)  # fmt: skip
def test_create_bodies_are_checked_against_the_spec(
    extra: dict[str, Any], param: str, code: str, message: str | None
) -> None:
    """Each body the review found accepted is a 400 naming the parameter at fault."""

    async def main() -> None:
        async with emulated() as (emu, api):
            paths = [f"/threads/{emu.create_thread()}/runs"]
            if not extra.keys() & RUN_ONLY:
                paths.append("/threads/runs")
            for path in paths:
                body = {**BASE, **extra}
                error = (await api.call("POST", path, json=body, status=400))["error"]
                assert error["type"] == "invalid_request_error"
                assert (error["param"], error["code"]) == (param, code)
                assert f"'{param}'" in error["message"]
                if message is not None:
                    assert error["message"] == message

    run(main())


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("", {"metadata": {"k": "v"}, "colour": "red"}, None),
        ("", {"metadata": "text"}, "metadata"),
        ("/submit_tool_outputs", {}, "tool_outputs"),
        ("/submit_tool_outputs", {"tool_outputs": {}}, "tool_outputs"),
        ("/submit_tool_outputs", {"tool_outputs": [], "extra": 1}, None),
    ],
)
def test_modify_and_submit_bodies_are_checked(
    path: str, body: dict[str, Any], param: str | None
) -> None:
    """Modify and submit bodies are checked against their schemas too."""

    async def main() -> None:
        async with emulated() as (_, api):
            r = await api.create(tools=[FUNCTION])
            url = f"/threads/{r['thread_id']}/runs/{r['id']}{path}"
            error = (await api.call("POST", url, json=body, status=400))["error"]
            assert error["param"] == param

    run(main())


def test_a_full_valid_body_is_accepted_and_echoed_in_the_runs_schema() -> None:
    """Every optional field the spec allows is accepted; the run still validates."""
    body = {
        **BASE,
        "model": "gpt-4o-mini",
        "reasoning_effort": None,
        "instructions": "Be brief.",
        "additional_instructions": "Really.",
        "additional_messages": [
            {"role": "user", "content": "Hi"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look:"},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                    {"type": "image_file", "image_file": {"file_id": "file-1"}},
                ],
                "attachments": [
                    {"file_id": "file-2", "tools": [{"type": "code_interpreter"}]}
                ],
                "metadata": {"k": "v"},
            },
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather in a city.",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                    },
                    "strict": True,
                },
            },
            {"type": "code_interpreter"},
            {
                "type": "file_search",
                "file_search": {
                    "max_num_results": 5,
                    "ranking_options": {"ranker": "auto", "score_threshold": 0.5},
                },
            },
        ],
        "metadata": {"team": "a"},
        "temperature": 0.2,
        "top_p": 0.9,
        "stream": None,
        "max_prompt_tokens": 1000,
        "max_completion_tokens": 500,
        "truncation_strategy": {"type": "last_messages", "last_messages": 3},
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": {"type": "object"}},
        },
    }

    async def main() -> None:
        async with emulated() as (emu, api):
            created = await api.create(emu.create_thread(), **body)
            RUN.validate(created)
            assert created["truncation_strategy"] == body["truncation_strategy"]
            assert created["tool_choice"] == body["tool_choice"]
            assert created["parallel_tool_calls"] is False
            assert created["response_format"] == body["response_format"]
            assert created["instructions"] == "Be brief.\nReally."

    run(main())


def test_truncation_strategy_is_answered_in_full() -> None:
    """`{"type": "auto"}` comes back with `last_messages: null`, as the API sends it."""

    async def main() -> None:
        async with emulated() as (_, api):
            r = await api.create(truncation_strategy={"type": "auto"})
            assert r["truncation_strategy"] == {"type": "auto", "last_messages": None}
            RUN.validate(r)

    run(main())


def test_the_official_client_sees_the_400_and_its_param() -> None:
    """openai raises BadRequestError with the API's param and code."""
    openai = pytest.importorskip("openai")

    async def main() -> None:
        async with (
            emulated() as (emu, _),
            openai.AsyncOpenAI(
                base_url=emu.url, api_key=emu.api_key, max_retries=0
            ) as client,
        ):
            with pytest.raises(openai.BadRequestError) as caught:
                await client.beta.threads.create_and_run(
                    assistant_id="asst_1",
                    tool_choice="sometimes",  # type: ignore[arg-type]
                )
            assert caught.value.param == "tool_choice"
            assert caught.value.code == "invalid_value"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run(main())


def test_the_shipped_spec_is_the_contract() -> None:
    """The package's copy of the spec is byte for byte the suite's contract."""
    shipped = Path(openai_runs.testing.__file__).with_name("runs.openapi.json")
    assert shipped.read_bytes() == SPEC_PATH.read_bytes()


def test_the_checker_knows_every_keyword_the_request_schemas_use() -> None:
    """No keyword reachable from a request schema is silently skipped."""
    assert unknown_keywords(REQUEST_SCHEMAS) == set()


# -- 4. malformed ids ---------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "/threads/undefined/runs/run_1",
            "Invalid 'thread_id': 'undefined'. Expected an ID that begins with "
            "'thread'.",
        ),
        (
            "/threads/thread_1/runs/thread_1",
            "Invalid 'run_id': 'thread_1'. Expected an ID that begins with 'run'.",
        ),
        (
            "/threads/thread_1/runs/run_1/steps/x",
            "Invalid 'step_id': 'x'. Expected an ID that begins with 'step'.",
        ),
    ],
)
def test_malformed_ids_are_400(path: str, message: str) -> None:
    """An id without its type's prefix is a 400 naming it, not a 404."""

    async def main() -> None:
        async with emulated() as (_, api):
            error = (await api.call("GET", path, status=400))["error"]
            assert error["message"] == message
            assert error["param"] == message.split("'")[1]

    run(main())


def test_swapped_arguments_in_the_official_client_are_a_400() -> None:
    """retrieve(thread_id, run_id) swapped by mistake raises BadRequestError."""
    openai = pytest.importorskip("openai")

    async def main() -> None:
        async with (
            emulated() as (emu, _),
            openai.AsyncOpenAI(
                base_url=emu.url, api_key=emu.api_key, max_retries=0
            ) as client,
        ):
            r = emu.create_run()
            with pytest.raises(openai.BadRequestError, match="begins with 'thread'"):
                await client.beta.threads.runs.retrieve(
                    r["thread_id"], thread_id=r["id"]
                )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run(main())


# -- 9. smaller ones ----------------------------------------------------------


def test_wrong_method_is_404_invalid_url() -> None:
    """A known path with the wrong method is the API's 404 Invalid URL."""

    async def main() -> None:
        async with emulated() as (emu, api):
            r = emu.create_run()
            path = f"/threads/{r['thread_id']}/runs/{r['id']}"
            error = (await api.call("DELETE", path, status=404))["error"]
            assert error["message"] == f"Invalid URL (DELETE /v1{path})"

    run(main())


def test_wrong_key_message_is_the_apis_and_masks_the_key() -> None:
    """The 401 says where to find a key and never shows the key in full."""
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz"

    async def main() -> None:
        async with emulated() as (_, api):
            headers = {"Authorization": f"Bearer {key}", "OpenAI-Beta": "assistants=v2"}
            body = await api.call("GET", "/threads/thread_1/runs", headers=headers,
                                  status=401)  # fmt: skip
            message = body["error"]["message"]
            assert key not in message
            assert message.startswith("Incorrect API key provided: sk-p****")
            assert message.endswith(
                "wxyz. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )

    run(main())


def test_file_ids_look_like_the_apis() -> None:
    """File ids in file search results are `file-…`, as the API makes them."""

    async def main() -> None:
        async with emulated() as (emu, api):
            r = emu.create_run(tools=[{"type": "file_search"}])
            emu.clock.advance(5)  # type: ignore[attr-defined]
            steps = await api.steps(r)
            ids = [
                result["file_id"]
                for step in steps["data"]
                if step["step_details"]["type"] == "tool_calls"
                for call in step["step_details"]["tool_calls"]
                for result in call["file_search"]["results"]
            ]
            assert ids
            assert all(i.startswith("file-") for i in ids)

    run(main())


# -- 2. tool outputs ----------------------------------------------------------


async def _waiting_run(api: Any, emu: Any, **body: Any) -> tuple[Any, list[str]]:
    """Create a run with two function tools and wait until it asks for outputs."""
    body.setdefault("tools", [FUNCTION, CLOCK])
    r = await api.create(**body)
    emu.clock.advance(1)
    r = await api.get(r)
    assert r["status"] == "requires_action"
    calls = r["required_action"]["submit_tool_outputs"]["tool_calls"]
    return r, [call["id"] for call in calls]


@pytest.mark.parametrize(
    ("outputs", "param", "code"),
    [
        ([{"tool_call_id": "A", "output": {"temp": 20}}, {"tool_call_id": "B",
          "output": "x"}], "tool_outputs[0].output", "invalid_type"),
        ([{"tool_call_id": "A"}, {"tool_call_id": "B", "output": "x"}],
         "tool_outputs[0].output", "missing_required_parameter"),
        ([{"output": "x"}], "tool_outputs[0].tool_call_id",
         "missing_required_parameter"),
        ([{"tool_call_id": "A", "output": "x"}, {"tool_call_id": "A", "output": "y"}],
         "tool_outputs[1].tool_call_id", "invalid_value"),
        ([{"tool_call_id": "A", "output": "x" * 512_001}, {"tool_call_id": "B",
          "output": "x"}], "tool_outputs[0].output", "string_above_max_length"),
    ],
)  # fmt: skip
def test_bad_tool_outputs_are_refused(
    outputs: list[dict[str, Any]], param: str, code: str
) -> None:
    """Non-string, missing, duplicate or oversized outputs are 400s; the run still waits."""

    async def main() -> None:
        async with emulated() as (emu, api):
            r, (a, b) = await _waiting_run(api, emu)
            for output in outputs:
                output["tool_call_id"] = {"A": a, "B": b}.get(
                    output.get("tool_call_id", ""), output.get("tool_call_id")
                )
                if output["tool_call_id"] is None:
                    del output["tool_call_id"]
            path = f"/threads/{r['thread_id']}/runs/{r['id']}/submit_tool_outputs"
            body = {"tool_outputs": outputs}
            error = (await api.call("POST", path, json=body, status=400))["error"]
            assert (error["param"], error["code"]) == (param, code)
            assert (await api.get(r))["status"] == "requires_action"

    run(main())


def test_official_client_submitting_a_dict_output_gets_a_400() -> None:
    """openai's submit_tool_outputs with a dict output raises BadRequestError."""
    openai = pytest.importorskip("openai")

    async def main() -> None:
        async with (
            emulated() as (emu, api),
            openai.AsyncOpenAI(
                base_url=emu.url, api_key=emu.api_key, max_retries=0
            ) as client,
        ):
            r, ids = await _waiting_run(api, emu, tools=[FUNCTION])
            with pytest.raises(openai.BadRequestError) as caught:
                await client.beta.threads.runs.submit_tool_outputs(
                    r["id"],
                    thread_id=r["thread_id"],
                    tool_outputs=[{"tool_call_id": ids[0], "output": {"temp": 20}}],  # type: ignore[typeddict-item]
                )
            assert caught.value.param == "tool_outputs[0].output"
            done = await client.beta.threads.runs.submit_tool_outputs(
                r["id"],
                thread_id=r["thread_id"],
                tool_outputs=[{"tool_call_id": ids[0], "output": '{"temp": 20}'}],
            )
            assert done.status == "queued"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run(main())


# -- 3. tool_choice and parallel_tool_calls -----------------------------------


def _names(r: Any) -> list[str]:
    calls = r["required_action"]["submit_tool_outputs"]["tool_calls"]
    return [call["function"]["name"] for call in calls]


async def _submit(api: Any, r: Any) -> Any:
    calls = r["required_action"]["submit_tool_outputs"]["tool_calls"]
    path = f"/threads/{r['thread_id']}/runs/{r['id']}/submit_tool_outputs"
    outputs = [{"tool_call_id": call["id"], "output": "ok"} for call in calls]
    return await api.call("POST", path, json={"tool_outputs": outputs})


def test_tool_choice_none_calls_no_function() -> None:
    """With tool_choice "none" a run with function tools completes without asking."""

    async def main() -> None:
        async with emulated() as (emu, api):
            r = await api.create(tools=[FUNCTION, CLOCK], tool_choice="none")
            seen = set()
            for _ in range(6):
                emu.clock.advance(0.5)
                seen.add((await api.get(r))["status"])
            assert "requires_action" not in seen
            assert (await api.get(r))["status"] == "completed"

    run(main())


def test_parallel_tool_calls_false_asks_one_call_at_a_time() -> None:
    """Without parallel tool calls each requires_action asks for one call."""

    async def main() -> None:
        async with emulated() as (emu, api):
            r = await api.create(tools=[FUNCTION, CLOCK], parallel_tool_calls=False)
            emu.clock.advance(1)
            first = await api.get(r)
            assert _names(first) == ["get_weather"]
            second = await _submit(api, first)
            assert second["status"] == "requires_action"
            assert _names(second) == ["get_time"]
            assert (await _submit(api, second))["status"] == "queued"
            emu.clock.advance(1)
            assert (await api.get(r))["status"] == "completed"
            steps = await api.steps(r, order="asc")
            calls = [
                [c["function"]["name"] for c in s["step_details"]["tool_calls"]]
                for s in steps["data"]
                if s["step_details"]["type"] == "tool_calls"
            ]
            assert calls == [["get_weather"], ["get_time"]]

    run(main())


def test_parallel_tool_calls_by_default_asks_for_all_at_once() -> None:
    """By default every function tool is asked for in one requires_action."""

    async def main() -> None:
        async with emulated() as (emu, api):
            r = await api.create(tools=[FUNCTION, CLOCK])
            emu.clock.advance(1)
            assert _names(await api.get(r)) == ["get_weather", "get_time"]

    run(main())


def test_a_forced_function_is_the_only_one_called() -> None:
    """A tool_choice naming a function asks for that function alone."""

    async def main() -> None:
        async with emulated() as (emu, api):
            choice = {"type": "function", "function": {"name": "get_time"}}
            r = await api.create(tools=[FUNCTION, CLOCK], tool_choice=choice)
            emu.clock.advance(1)
            assert _names(await api.get(r)) == ["get_time"]

    run(main())


@pytest.mark.parametrize(
    "choice",
    [
        {"type": "function", "function": {"name": "get_stock"}},
        {"type": "file_search"},
    ],
)
def test_forcing_a_tool_the_run_lacks_is_a_400(choice: dict[str, Any]) -> None:
    """tool_choice must name a tool the run has."""

    async def main() -> None:
        async with emulated() as (_, api):
            body = {**BASE, "tools": [FUNCTION], "tool_choice": choice}
            error = await api.call("POST", "/threads/runs", json=body, status=400)
            assert error["error"]["param"] == "tool_choice"

    run(main())


# -- 6. faults that imitate real failures -------------------------------------


@pytest.mark.parametrize(
    ("preset", "status", "kind", "code"),
    [
        ("rate_limit_exceeded", 429, "requests", "rate_limit_exceeded"),
        ("tokens_rate_limit_exceeded", 429, "tokens", "rate_limit_exceeded"),
        ("insufficient_quota", 429, "insufficient_quota", "insufficient_quota"),
        ("invalid_api_key", 401, "invalid_request_error", "invalid_api_key"),
        ("permission_denied", 403, "invalid_request_error", None),
        ("server_error", 500, "server_error", None),
        ("overloaded", 503, "server_error", None),
    ],
)
def test_fault_presets_answer_like_the_api(
    preset: str, status: int, kind: str, code: str | None
) -> None:
    """Each preset answers the live API's status, type and code."""

    async def main() -> None:
        async with emulated() as (emu, api):
            emu.inject(Fault.preset(preset, times=1))  # type: ignore[arg-type]
            error = await api.call("GET", "/threads/thread_1/runs", status=status)
            assert (error["error"]["type"], error["error"]["code"]) == (kind, code)

    run(main())


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "invalid_request_error"), (401, "invalid_request_error"),
     (404, "invalid_request_error"), (409, "invalid_request_error"),
     (500, "server_error"), (504, "server_error")],
)  # fmt: skip
def test_injected_client_errors_are_not_server_errors(status: int, kind: str) -> None:
    """A bare 4xx fault carries invalid_request_error, a 5xx server_error."""

    async def main() -> None:
        async with emulated() as (emu, api):
            emu.inject(Fault(status=status, times=1))
            error = await api.call("GET", "/threads/thread_1/runs", status=status)
            assert error["error"]["type"] == kind

    run(main())


def test_a_fault_sets_type_code_message_and_headers() -> None:
    """Every part of the error can be chosen, and headers ride on any answer."""

    async def main() -> None:
        async with emulated() as (emu, api):
            emu.inject(
                Fault(
                    status=400,
                    type="invalid_request_error",
                    code="",
                    message="Thread is locked.",
                    headers={"x-should-retry": "false"},
                    times=1,
                )
            )
            error = await api.call("POST", "/threads", json={}, status=400)
            assert error["error"] == {
                "message": "Thread is locked.",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
            assert api.last.headers["x-should-retry"] == "false"
            emu.inject(Fault(headers={"openai-processing-ms": "7"}, times=1))
            await api.call("POST", "/threads", json={})
            assert api.last.headers["openai-processing-ms"] == "7"

    run(main())


def test_insufficient_quota_is_not_retried_by_the_official_client() -> None:
    """openai raises RateLimitError with the type and code insufficient_quota."""
    openai = pytest.importorskip("openai")

    async def main() -> None:
        async with (
            emulated() as (emu, _),
            openai.AsyncOpenAI(
                base_url=emu.url, api_key=emu.api_key, max_retries=0
            ) as client,
        ):
            r = emu.create_run()
            emu.inject(Fault.preset("insufficient_quota", times=1))
            with pytest.raises(openai.RateLimitError) as caught:
                await client.beta.threads.runs.retrieve(
                    r["id"], thread_id=r["thread_id"]
                )
            assert caught.value.code == "insufficient_quota"
            assert caught.value.type == "insufficient_quota"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run(main())


def test_sdk_does_not_retry_an_injected_insufficient_quota() -> None:
    """openai_runs raises InsufficientQuotaError at once: one request, no retry."""

    async def main() -> None:
        async with emulated() as (emu, _):
            r = emu.create_run()
            emu.inject(Fault.preset("insufficient_quota"))
            before = emu.counts.total
            async with RunsClient(api_key=emu.api_key, base_url=emu.url) as client:
                with pytest.raises(InsufficientQuotaError):
                    await client.runs.retrieve(r["thread_id"], r["id"])
            assert emu.counts.total - before == 1

    run(main())


def test_control_channel_takes_a_preset() -> None:
    """POST /_emulator/faults {"preset": ...} adds the preset with the given changes."""

    async def main() -> None:
        async with emulated() as (emu, api):
            root = emu.url.removesuffix("/v1")
            async with api.session.post(
                root + "/_emulator/faults",
                json={"preset": "insufficient_quota", "times": 2},
            ) as response:
                faults = (await response.json())["faults"]
            assert faults[0]["type"] == "insufficient_quota"
            assert faults[0]["times"] == 2
            async with api.session.post(
                root + "/_emulator/faults", json={"preset": "nope"}
            ) as response:
                assert response.status == 400
            for _ in range(2):
                await api.call("GET", "/threads/thread_1/runs", status=429)

    run(main())


# -- 7. x-ratelimit-* headers -------------------------------------------------


def test_every_answer_reports_the_rate_limit() -> None:
    """x-ratelimit-limit/remaining/reset-requests come with answers and errors."""

    async def main() -> None:
        async with emulated() as (emu, api):
            r = await api.create()
            first = api.last.headers
            assert first["x-ratelimit-limit-requests"] == "10000"
            assert first["x-ratelimit-remaining-requests"] == "9999"
            assert first["x-ratelimit-reset-requests"] == "6ms"
            await api.get(r)
            assert api.last.headers["x-ratelimit-remaining-requests"] == "9998"
            await api.call("GET", "/threads/thread_x/runs", status=404)
            assert api.last.headers["x-ratelimit-remaining-requests"] == "9997"
            emu.clock.advance(60)  # type: ignore[attr-defined]
            await api.get(r)
            assert api.last.headers["x-ratelimit-remaining-requests"] == "9999"

    run(main())


def test_an_enforced_rate_limit_answers_429_and_refills_with_the_clock() -> None:
    """Past the limit a key gets 429 rate_limit_exceeded with Retry-After, until it refills."""

    async def main() -> None:
        async with emulated(rate_limit=RateLimit(requests=3, per=1.0)) as (emu, api):
            for left in ("2", "1", "0"):
                await api.call("GET", "/threads/thread_1/runs", status=404)
                assert api.last.headers["x-ratelimit-remaining-requests"] == left
            error = await api.call("GET", "/threads/thread_1/runs", status=429)
            assert error["error"]["code"] == "rate_limit_exceeded"
            assert api.last.headers["Retry-After"] == "1"
            assert api.last.headers["retry-after-ms"] == "334"
            assert api.last.headers["x-ratelimit-reset-requests"] == "1s"
            emu.clock.advance(0.34)  # type: ignore[attr-defined]
            await api.call("GET", "/threads/thread_1/runs", status=404)

    run(main())


def test_official_client_reads_the_rate_limit_headers() -> None:
    """The headers reach openai's raw response."""
    openai = pytest.importorskip("openai")

    async def main() -> None:
        async with (
            emulated() as (emu, _),
            openai.AsyncOpenAI(base_url=emu.url, api_key=emu.api_key) as client,
        ):
            r = emu.create_run()
            raw = await client.beta.threads.runs.with_raw_response.retrieve(
                r["id"], thread_id=r["thread_id"]
            )
            assert int(raw.headers["x-ratelimit-remaining-requests"]) < 10_000

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run(main())


# -- 5. assistants ------------------------------------------------------------

HELPER = Assistant(
    id="asst_helper",
    model="gpt-4.1-mini",
    instructions="Answer in French.",
    tools=[FUNCTION],
    temperature=0.3,
)


def test_a_run_inherits_its_registered_assistant() -> None:
    """Model, instructions, tools and temperature come from the assistant."""

    async def main() -> None:
        async with emulated(assistants=[HELPER]) as (emu, api):
            r = await api.create(assistant_id="asst_helper")
            assert r["model"] == "gpt-4.1-mini"
            assert r["instructions"] == "Answer in French."
            assert r["tools"] == [FUNCTION]
            assert r["temperature"] == 0.3
            RUN.validate(r)
            emu.clock.advance(1)  # type: ignore[attr-defined]
            assert _names(await api.get(r)) == ["get_weather"]
            python = emu.create_run(assistant_id="asst_helper")
            assert python["tools"] == [FUNCTION]

    run(main())


def test_a_run_overrides_what_it_sets() -> None:
    """A run's own model, instructions and tools (even none) win; extra instructions append."""

    async def main() -> None:
        async with emulated(assistants=[HELPER]) as (emu, api):
            r = await api.create(
                emu.create_thread(),
                assistant_id="asst_helper",
                model="gpt-4o",
                tools=[],
                additional_instructions="Be brief.",
            )
            assert (r["model"], r["tools"]) == ("gpt-4o", [])
            assert r["instructions"] == "Answer in French.\nBe brief."

    run(main())


def test_unknown_assistants_are_accepted_unless_strict() -> None:
    """By default any assistant_id works; strict mode answers the API's 404."""
    openai = pytest.importorskip("openai")

    async def main() -> None:
        async with emulated() as (_, api):
            r = await api.create(assistant_id="asst_anything")
            assert (r["model"], r["instructions"], r["tools"]) == ("gpt-4o", "", [])
        async with (
            emulated(assistants=[HELPER], strict_assistants=True) as (emu, api),
            openai.AsyncOpenAI(
                base_url=emu.url, api_key=emu.api_key, max_retries=0
            ) as client,
        ):
            with pytest.raises(openai.NotFoundError, match="No assistant found"):
                await client.beta.threads.create_and_run(assistant_id="asst_other")
            run_ = await client.beta.threads.create_and_run(assistant_id="asst_helper")
            assert run_.model == "gpt-4.1-mini"
            thread_id = emu.create_thread()
            error = await api.call(
                "POST", f"/threads/{thread_id}/runs",
                json={"assistant_id": "asst_other"}, status=404,
            )  # fmt: skip
            assert (
                error["error"]["message"] == "No assistant found with id 'asst_other'."
            )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run(main())


def test_control_channel_registers_assistants_and_changes_settings() -> None:
    """PUT /_emulator/assistants/{id} and PATCH /_emulator/config work over HTTP."""

    async def main() -> None:
        async with emulated() as (emu, api):
            root = emu.url.removesuffix("/v1")
            async with api.session.put(
                root + "/_emulator/assistants/asst_cc",
                json={"model": "gpt-4.1", "tools": [{"type": "code_interpreter"}]},
            ) as response:
                listed = await response.json()
            assert listed["assistants"][0]["id"] == "asst_cc"
            async with api.session.patch(
                root + "/_emulator/config",
                json={"strict_assistants": True, "poll_after_ms": 250,
                      "expires_after": None},
            ) as response:  # fmt: skip
                config = await response.json()
            assert config["clock"] == "manual"
            assert config["strict_assistants"] is True
            r = await api.create(assistant_id="asst_cc")
            assert r["model"] == "gpt-4.1"
            assert r["expires_at"] is None
            assert api.last.headers["openai-poll-after-ms"] == "250"
            await api.call("POST", "/threads/runs", json=BASE, status=404)
            for bad in ({"poll_after_ms": "soon"}, {"cancel_delay": -1},
                        {"strict_assistants": 1}, {"colour": 1}):  # fmt: skip
                async with api.session.patch(
                    root + "/_emulator/config", json=bad
                ) as response:
                    assert response.status == 400, bad

    run(main())


# -- 8. serve from outside Python ---------------------------------------------


def _http(method: str, url: str, body: Any = None, key: str | None = None) -> Any:
    """One raw HTTP call, as a test suite in another language would make it."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_serve_options_control_time_and_settings(tmp_path: Path) -> None:
    """serve's clock, expiry, hint, beta, assistants options work over raw HTTP."""
    assistants = tmp_path / "assistants.json"
    assistants.write_text(json.dumps([{"id": "asst_1", "tools": [FUNCTION]}]))
    args = [
        "--manual-clock", "--expires-after", "60", "--poll-after-ms", "40",
        "--no-require-beta", "--assistants", str(assistants),
        "--strict-assistants", "--key", "sk-test",
    ]  # fmt: skip
    with serving(*args) as url:
        root = url.removesuffix("/v1")
        status, headers, r = _http("POST", url + "/threads/runs", BASE, "sk-test")
        assert status == 200, r
        assert headers["openai-poll-after-ms"] == "40"
        assert r["expires_at"] == r["created_at"] + 60
        assert r["tools"] == [FUNCTION]
        run_url = f"{url}/threads/{r['thread_id']}/runs/{r['id']}"
        _http("POST", root + "/_emulator/clock/advance", {"seconds": 1})
        assert _http("GET", run_url, key="sk-test")[2]["status"] == "requires_action"
        _, _, advanced = _http(
            "POST", root + "/_emulator/clock/advance", {"seconds": 60}
        )
        assert _http("GET", run_url, key="sk-test")[2]["status"] == "expired"
        status, _, error = _http(
            "POST", url + "/threads/runs", {"assistant_id": "asst_2"}, "sk-test"
        )
        assert (status, error["error"]["message"]) == (
            404,
            "No assistant found with id 'asst_2'.",
        )
        _, _, config = _http("GET", root + "/_emulator/config")
        assert config["clock"] == "manual"
        assert config["now"] == advanced["now"]


def test_serve_with_a_bad_assistants_file_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken --assistants file exits 1 with one line, not a traceback."""
    bad = tmp_path / "a.json"
    bad.write_text('{"id": "asst_1"}')
    assert main(["serve", "--port", "0", "--assistants", str(bad)]) == 1
    assert "expected a JSON array" in capsys.readouterr().err


# -- 9. usage and tool resources ----------------------------------------------


def _total(usages: list[Any]) -> tuple[int, int, int]:
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    return tuple(sum(u[k] for u in usages if u) for k in keys)  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("tools", "cancel_after", "expected"),
    [
        ([CODE_TOOL, {"type": "file_search"}], None, (120, 40, 160)),
        ([FUNCTION, CLOCK], None, (120, 40, 160)),
        ([CODE_TOOL], 0.0, (0, 0, 0)),
        ([CODE_TOOL, {"type": "file_search"}], 1.0, None),
    ],
)
def test_run_usage_is_the_sum_of_its_steps(
    tools: list[Any], cancel_after: float | None, expected: tuple[int, int, int] | None
) -> None:
    """Usage adds up over steps; a run cancelled while queued used nothing."""

    async def main() -> None:
        script = RunScript((Phase("queued", 0.5), Phase("in_progress", 1.0),
                            Phase("completed")))  # fmt: skip
        if tools[0] is FUNCTION:
            script = RunScript.requires_action(after=0.5, then=0.5)
        async with emulated(default_script=script) as (emu, api):
            r = await api.create(tools=tools)
            if cancel_after is not None:
                emu.clock.advance(cancel_after)  # type: ignore[attr-defined]
                await api.call(
                    "POST", f"/threads/{r['thread_id']}/runs/{r['id']}/cancel"
                )
            emu.clock.advance(1)  # type: ignore[attr-defined]
            got = await api.get(r)
            if got["status"] == "requires_action":
                await _submit(api, got)
                emu.clock.advance(2)  # type: ignore[attr-defined]
                got = await api.get(r)
            emu.clock.advance(2)  # type: ignore[attr-defined]
            got = await api.get(r)
            assert got["status"] in ("completed", "cancelled")
            steps = (await api.steps(r, limit=100))["data"]
            run_usage = got["usage"]
            total = (run_usage["prompt_tokens"], run_usage["completion_tokens"],
                     run_usage["total_tokens"])  # fmt: skip
            assert total == _total([s["usage"] for s in steps])
            if expected is not None:
                assert total == expected
            if cancel_after == 0.0:
                assert steps == []
            elif cancel_after is not None:
                assert 0 < total[2] < 160

    run(main())


def test_a_new_threads_tool_resources_are_kept() -> None:
    """thread.tool_resources of create_and_run reach the thread (vector_stores made into ids)."""
    openai = pytest.importorskip("openai")

    async def main() -> None:
        async with (
            emulated() as (emu, _),
            openai.AsyncOpenAI(
                base_url=emu.url, api_key=emu.api_key, max_retries=0
            ) as client,
        ):
            r = await client.beta.threads.create_and_run(
                assistant_id="asst_1",
                thread={
                    "tool_resources": {
                        "code_interpreter": {"file_ids": ["file-abc"]},
                        "file_search": {"vector_stores": [{"file_ids": ["file-x"]}]},
                    }
                },
            )
            thread = await client.beta.threads.retrieve(r.thread_id)
            resources = thread.tool_resources
            assert resources is not None
            assert resources.code_interpreter is not None
            assert resources.code_interpreter.file_ids == ["file-abc"]
            assert resources.file_search is not None
            (store,) = resources.file_search.vector_store_ids or []
            assert store.startswith("vs_")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run(main())


# -- where the live behaviour is unknown: the emulator's choice, configurable --


def test_metadata_update_replaces_by_default_and_can_merge() -> None:
    """Modifying metadata replaces it; metadata_update="merge" merges (and "" removes)."""

    async def main() -> None:
        for mode, expected in (
            ("replace", {"b": "2"}),
            ("merge", {"a": "1", "b": "2"}),
        ):
            async with emulated(metadata_update=mode) as (_, api):
                r = await api.create(metadata={"a": "1", "c": "3"})
                path = f"/threads/{r['thread_id']}/runs/{r['id']}"
                body = {"metadata": {"b": "2", "c": ""}}
                got = await api.call("POST", path, json=body)
                want = expected if mode == "merge" else {"b": "2", "c": ""}
                assert got["metadata"] == want

    run(main())


def test_an_unknown_cursor_is_a_400_by_default_or_an_empty_page() -> None:
    """after=<unknown id> is a 400, or with unknown_cursor="empty" an empty page."""

    async def main() -> None:
        async with emulated() as (_, api):
            r = await api.create()
            path = f"/threads/{r['thread_id']}/runs"
            await api.call("GET", path, params={"after": "run_gone"}, status=400)
        async with emulated(unknown_cursor="empty") as (_, api):
            r = await api.create()
            path = f"/threads/{r['thread_id']}/runs"
            page = await api.call("GET", path, params={"after": "run_gone"})
            assert (page["data"], page["has_more"]) == ([], False)

    run(main())


# -- the checker against the schemas it reads ---------------------------------

_PROSE_PARAMS = re.compile(
    r"(metadata|.*\.metadata(\..+)?|tools\[\d+\]\.function\.name|"
    r"response_format\.json_schema\.name|tool_choice(\.function)?|"
    r"truncation_strategy\.last_messages|tool_outputs\[\d+\]\.\w+)"
)


@functools.cache
def _requests(schema_name: str) -> st.SearchStrategy[Any]:
    return from_schema(json_schema(schema_name))


@pytest.mark.parametrize(
    "schema_name",
    ["CreateRunRequest", "ModifyRunRequest", "SubmitToolOutputsRunRequest"],
)
def test_every_schema_valid_body_passes_but_for_the_prose_limits(
    schema_name: str,
) -> None:
    """Schema-valid bodies pass (or fail on a prose limit); their runs are RunObjects."""
    emu = Emulator(clock=ManualClock())
    thread_id = emu.create_thread()

    @settings(
        max_examples=15,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )
    @given(_requests(schema_name))
    def check(body: Any) -> None:
        refused: dict[str, Any] | None = None
        try:
            check_body(schema_name, body)
            fields = run_fields(body) if schema_name == "CreateRunRequest" else None
        except ApiError as error:
            refused, fields = error.body["error"], None
        if refused is not None:
            assert _PROSE_PARAMS.fullmatch(refused["param"] or ""), refused
        elif fields is not None:
            RUN.validate(emu._state.create_run(thread_id, fields).to_json())

    check()
