"""The client against a real HTTP server on loopback: what it sends, what it returns."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
import textwrap
from typing import Any

import aiohttp
import pytest
from _recorder import (
    INCLUDE,
    KEY,
    api,
    error_json,
    ok,
    run_json,
    step_json,
)
from aiohttp.abc import AbstractResolver, ResolveResult

import openai_runs
from openai_runs import Run, RunsClient, RunStatus, RunStep
from openai_runs import exceptions as exc
from openai_runs._converter import request_converter
from openai_runs.auth import ApiKeyAuth, BearerAuth
from openai_runs.models import (
    Attachment,
    CodeInterpreterTool,
    FileSearchOptions,
    FileSearchRankingOptions,
    FileSearchTool,
    FunctionCall,
    FunctionDefinition,
    FunctionTool,
    ImageUrl,
    ImageUrlContent,
    JsonSchemaFormat,
    MessageRequest,
    NamedToolChoice,
    NamedToolChoiceFunction,
    ResponseFormatJsonSchema,
    TextContent,
    ThreadRequest,
    ToolCallsDetails,
    ToolOutput,
    TruncationStrategy,
)


def test_retrieve_sends_get_with_headers_and_parses_run() -> None:
    """retrieve GETs the run's path with the auth, beta and user-agent headers."""

    async def main() -> None:
        async with api(
            ok(run_json(status="completed", completed_at=1_700_000_009))
        ) as (server, client):
            run = await client.runs.retrieve("thread_1", "run_1")
        assert isinstance(run, Run)
        assert run.status is RunStatus.COMPLETED
        assert run.completed_at == 1_700_000_009
        (seen,) = server.seen
        assert (seen.method, seen.path, seen.query, seen.body) == (
            "GET",
            "/v1/threads/thread_1/runs/run_1",
            "",
            b"",
        )
        assert seen.headers["Authorization"] == f"Bearer {KEY}"
        assert seen.headers["OpenAI-Beta"] == "assistants=v2"
        assert seen.headers["User-Agent"] == f"openai-runs/{openai_runs.__version__}"
        assert "OpenAI-Organization" not in seen.headers

    asyncio.run(main())


def test_ids_are_accepted_as_keywords() -> None:
    """Every id may be passed by name as well as by position."""

    async def main() -> None:
        async with api(ok(run_json()), ok(step_json("step_1"))) as (server, client):
            await client.runs.retrieve(thread_id="thread_1", run_id="run_1")
            await client.runs.steps.retrieve(
                thread_id="thread_1", run_id="run_1", step_id="step_1"
            )
        assert [s.path for s in server.seen] == [
            "/v1/threads/thread_1/runs/run_1",
            "/v1/threads/thread_1/runs/run_1/steps/step_1",
        ]

    asyncio.run(main())


def test_update_posts_metadata_as_json() -> None:
    """update POSTs exactly {"metadata": ...} to the run's path."""

    async def main() -> None:
        async with api(ok(run_json(metadata={"k": "v"}))) as (server, client):
            run = await client.runs.update("thread_1", "run_1", metadata={"k": "v"})
        assert run.metadata == {"k": "v"}
        (seen,) = server.seen
        assert (seen.method, seen.path) == ("POST", "/v1/threads/thread_1/runs/run_1")
        assert seen.headers["Content-Type"] == "application/json"
        assert json.loads(seen.body) == {"metadata": {"k": "v"}}

    asyncio.run(main())


def test_cancel_posts_to_cancel_without_body() -> None:
    """cancel POSTs to .../cancel with no body and returns the cancelling run."""

    async def main() -> None:
        async with api(ok(run_json(status="cancelling"))) as (server, client):
            run = await client.runs.cancel("thread_1", "run_1")
        assert run.status is RunStatus.CANCELLING
        (seen,) = server.seen
        assert (seen.method, seen.path, seen.body) == (
            "POST",
            "/v1/threads/thread_1/runs/run_1/cancel",
            b"",
        )

    asyncio.run(main())


def test_steps_retrieve_sends_include_once_encoded() -> None:
    """steps.retrieve sends include[] as the spec names it, decoded once by the server."""

    async def main() -> None:
        async with api(
            lambda r: ok({**step_json("step_1"), "got": r.query.getall("include[]")})
        ) as (server, client):
            step = await client.runs.steps.retrieve(
                "thread_1", "run_1", "step_1", include=[INCLUDE]
            )
        assert isinstance(step, RunStep)
        assert step.extra == {"got": [INCLUDE]}
        assert isinstance(step.step_details, ToolCallsDetails)
        assert isinstance(step.step_details.tool_calls[0], FunctionCall)
        assert server.seen[0].query.startswith(
            "include%5B%5D=step_details.tool_calls%5B"
        )

    asyncio.run(main())


def test_organization_project_headers_and_query_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Organization, project, default headers and default query go on every request."""
    monkeypatch.setenv("OPENAI_ORG_ID", "org_1")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_1")

    async def main() -> None:
        async with api(
            default_headers={"X-Extra": "1"},
            default_query={"api-version": "2025-01-01"},
        ) as (server, client):
            await client.runs.retrieve("thread_1", "run_1")
        (seen,) = server.seen
        assert seen.headers["OpenAI-Organization"] == "org_1"
        assert seen.headers["OpenAI-Project"] == "proj_1"
        assert seen.headers["X-Extra"] == "1"
        assert seen.query == "api-version=2025-01-01"

    asyncio.run(main())


def test_environment_supplies_key_and_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """OPENAI_API_KEY and OPENAI_BASE_URL are used when no argument is given."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")

    async def main() -> None:
        async with api() as (server, unused):
            monkeypatch.setenv("OPENAI_BASE_URL", unused.base_url)
            async with RunsClient() as client:
                await client.runs.retrieve("thread_1", "run_1")
        assert server.seen[0].headers["Authorization"] == "Bearer sk-env"

    asyncio.run(main())


def test_missing_key_is_a_clear_error_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a key or auth the constructor says how to provide one."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(exc.InvalidRequestError, match="OPENAI_API_KEY"):
        RunsClient()


@pytest.mark.parametrize(
    "options",
    [
        {"api_key": KEY + "\n"},
        {"api_key": KEY + "\r\nX-Injected: 1"},
        {"organization": "org_1\n"},
        {"default_headers": {"X-Trace": "a\x00b"}},
    ],
)
def test_unsendable_header_values_are_refused_at_construction(
    options: dict[str, Any],
) -> None:
    """A key or header with a control character is a typed error, the key unshown."""
    with pytest.raises(exc.InvalidRequestError, match="control character") as info:
        RunsClient(**{"api_key": KEY, **options})
    assert KEY not in str(info.value)


@pytest.mark.parametrize(
    "base_url",
    [
        "api.example.com/v1",
        "ftp://example.com/v1",
        "http://",
        "http://h/v1?x=1",
        "http://[::1",
        "http://127.0.0.1:99999/v1",
    ],
)
def test_unusable_base_url_is_refused_at_construction(base_url: str) -> None:
    """A base URL that is not absolute http(s), or has a query, fails at once."""
    with pytest.raises(exc.InvalidRequestError, match="base_url"):
        RunsClient(api_key=KEY, base_url=base_url)


def test_azure_preset_uses_prefix_api_version_and_api_key_header() -> None:
    """RunsClient.azure puts /openai before the path, api-version in the query, the key in api-key."""

    async def main() -> None:
        async with api() as (server, plain):
            endpoint = plain.base_url.removesuffix("/v1")
            async with RunsClient.azure(
                endpoint=endpoint, api_version="2024-05-01-preview", api_key=KEY
            ) as client:
                await client.runs.retrieve("thread_1", "run_1")
        (seen,) = server.seen
        assert seen.path == "/openai/threads/thread_1/runs/run_1"
        assert seen.query == "api-version=2024-05-01-preview"
        assert seen.headers["api-key"] == KEY
        assert "Authorization" not in seen.headers

    asyncio.run(main())


def test_api_key_never_appears_in_reprs_errors_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The key is absent from client and auth reprs, error messages and debug logs."""
    caplog.set_level(logging.DEBUG, logger="openai_runs")

    async def main() -> str:
        async with api(
            (401, {}, error_json("Incorrect API key provided")),
            (500, {}, "x"),
            (500, {}, "x"),
            (500, {}, "x"),
        ) as (_server, client):
            texts = [repr(client), repr(BearerAuth(KEY)), repr(ApiKeyAuth(KEY))]
            for _ in range(2):
                try:
                    await client.runs.retrieve("thread_1", "run_1")
                except exc.OpenAIRunsError as error:
                    texts += [str(error), repr(error), repr(error.headers)]
        return "\n".join(texts)

    text = asyncio.run(main())
    assert KEY not in text
    assert KEY not in caplog.text
    assert "req_1" in caplog.text  # one debug line per request, with its id
    assert "retrying" in caplog.text


class _Loopback(AbstractResolver):
    """Resolves every host to 127.0.0.1, to stand in for api.openai.com."""

    async def resolve(
        self, host: str, port: int = 0, family: int = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=0,
            )
        ]

    async def close(self) -> None:
        pass


def test_404_on_hosted_openai_says_the_api_may_be_retired() -> None:
    """When nothing has succeeded against api.openai.com, a 404 names the base-URL setting."""

    async def main() -> None:
        async with api(
            (404, {}, error_json("Not found")), (404, {}, error_json("Not found"))
        ) as (_server, plain):
            port = plain.base_url.split(":")[2].split("/")[0]
            connector = aiohttp.TCPConnector(resolver=_Loopback())
            async with aiohttp.ClientSession(connector=connector) as session:
                base = f"http://api.openai.com:{port}/v1"
                async with RunsClient(
                    api_key=KEY, base_url=base, session=session
                ) as client:
                    with pytest.raises(exc.NotFoundError, match=r"retired.*base_url"):
                        await client.runs.retrieve("thread_1", "run_1")
                # Against any other server a 404 is just a 404.
                with pytest.raises(exc.NotFoundError) as info:
                    await plain.runs.retrieve("thread_1", "run_1")
                assert "retired" not in str(info.value)

    asyncio.run(main())


WEATHER = FunctionTool(
    function=FunctionDefinition(
        name="get_weather",
        description="Weather in a city.",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string", "default": None}},
        },
    )
)


def test_create_sends_every_field_typed_and_without_nulls() -> None:
    """create POSTs each set field as the API names it, nested models without nulls."""

    async def main() -> None:
        async with api(ok(run_json(status="queued"))) as (server, client):
            run = await client.runs.create(
                "thread_1",
                assistant_id="asst_1",
                model="gpt-4o",
                reasoning_effort="low",
                instructions="Be brief.",
                additional_instructions="Really.",
                additional_messages=[
                    MessageRequest(
                        role="user",
                        content=[
                            TextContent(text="hi"),
                            ImageUrlContent(image_url=ImageUrl(url="https://x/y.png")),
                        ],
                        attachments=[
                            Attachment(file_id="file_1", tools=[CodeInterpreterTool()])
                        ],
                        metadata={"m": "1"},
                    )
                ],
                tools=[
                    CodeInterpreterTool(),
                    FileSearchTool(
                        file_search=FileSearchOptions(
                            max_num_results=5,
                            ranking_options=FileSearchRankingOptions(
                                score_threshold=0.5
                            ),
                        )
                    ),
                    WEATHER,
                ],
                metadata={"k": "v"},
                idempotency_key="key_1",
                temperature=0.2,
                top_p=0.9,
                max_prompt_tokens=1000,
                max_completion_tokens=500,
                truncation_strategy=TruncationStrategy(
                    type="last_messages", last_messages=4
                ),
                tool_choice=NamedToolChoice(
                    type="function",
                    function=NamedToolChoiceFunction(name="get_weather"),
                ),
                parallel_tool_calls=False,
                response_format=ResponseFormatJsonSchema(
                    json_schema=JsonSchemaFormat(
                        name="answer", schema={"type": "object"}
                    )
                ),
                include=[INCLUDE],
            )
        assert run.status is RunStatus.QUEUED
        (seen,) = server.seen
        assert (seen.method, seen.path) == ("POST", "/v1/threads/thread_1/runs")
        assert seen.query.startswith("include%5B%5D=")
        assert json.loads(seen.body) == {
            "assistant_id": "asst_1",
            "model": "gpt-4o",
            "reasoning_effort": "low",
            "instructions": "Be brief.",
            "additional_instructions": "Really.",
            "additional_messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "hi"},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                    ],
                    "attachments": [
                        {"file_id": "file_1", "tools": [{"type": "code_interpreter"}]}
                    ],
                    "metadata": {"m": "1"},
                }
            ],
            "tools": [
                {"type": "code_interpreter"},
                {
                    "type": "file_search",
                    "file_search": {
                        "max_num_results": 5,
                        "ranking_options": {"score_threshold": 0.5},
                    },
                },
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "Weather in a city.",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string", "default": None}},
                        },
                    },
                },
            ],
            "metadata": {"k": "v", "openai_runs_idempotency_key": "key_1"},
            "temperature": 0.2,
            "top_p": 0.9,
            "max_prompt_tokens": 1000,
            "max_completion_tokens": 500,
            "truncation_strategy": {"type": "last_messages", "last_messages": 4},
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": False,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": {"type": "object"}},
            },
        }

    asyncio.run(main())


def test_create_with_only_the_assistant_sends_only_it() -> None:
    """Unset options are not sent, so the assistant's own settings apply."""

    async def main() -> None:
        async with api(ok(run_json(status="queued"))) as (server, client):
            await client.runs.create(
                "thread_1",
                assistant_id="asst_1",
                tool_choice="required",
                response_format="auto",
                idempotency_key=False,
            )
        assert json.loads(server.seen[0].body) == {
            "assistant_id": "asst_1",
            "tool_choice": "required",
            "response_format": "auto",
        }
        assert server.seen[0].query == ""

    asyncio.run(main())


# Policy that drifts between OpenAI, Azure and compatible servers: sent as
# given, for the server to judge.
SERVER_JUDGES: list[tuple[str, dict[str, Any]]] = [
    ("temperature above 2", {"temperature": 2.5}),
    ("negative top_p", {"top_p": -0.1}),
    ("prompt tokens below 256", {"max_prompt_tokens": 100}),
    ("21 tools", {"tools": [{"type": "code_interpreter"}] * 21}),
    (
        "max_num_results 51",
        {"tools": [{"type": "file_search", "file_search": {"max_num_results": 51}}]},
    ),
    (
        "score over 1",
        {
            "tools": [
                FileSearchTool(
                    file_search=FileSearchOptions(
                        ranking_options=FileSearchRankingOptions(score_threshold=2)
                    )
                )
            ]
        },
    ),
    (
        "last_messages 0",
        {"truncation_strategy": {"type": "last_messages", "last_messages": 0}},
    ),
    ("a new tool_choice string", {"tool_choice": "always"}),
    ("a new response_format string", {"response_format": "json"}),
    ("a new tool type", {"tools": [{"type": "web_search", "web_search": {}}]}),
]


@pytest.mark.parametrize(
    "options", [o for _, o in SERVER_JUDGES], ids=[n for n, _ in SERVER_JUDGES]
)
def test_drifting_policy_is_left_to_the_server(options: dict[str, Any]) -> None:
    """Ranges, tool counts and allowed strings are not checked: sent as the API's JSON."""

    async def main() -> None:
        async with api(ok(run_json(status="queued"))) as (server, client):
            await client.runs.create(
                "thread_1", assistant_id="asst_1", idempotency_key=False, **options
            )
        sent = json.loads(server.seen[0].body)
        expected = json.loads(json.dumps(request_converter.unstructure(options)))
        assert sent == {"assistant_id": "asst_1", **expected}

    asyncio.run(main())


def test_create_thread_and_run_posts_the_thread() -> None:
    """create_thread_and_run POSTs /threads/runs with the thread and tool resources."""

    async def main() -> None:
        async with api(ok(run_json(status="queued"))) as (server, client):
            await client.runs.create_thread_and_run(
                assistant_id="asst_1",
                thread=ThreadRequest(
                    messages=[MessageRequest(role="user", content="hello")],
                    metadata={"t": "1"},
                ),
                tools=[WEATHER],
                tool_resources={"code_interpreter": {"file_ids": ["file_1"]}},
            )
        (seen,) = server.seen
        assert (seen.method, seen.path) == ("POST", "/v1/threads/runs")
        body = json.loads(seen.body)
        assert body["thread"] == {
            "messages": [{"role": "user", "content": "hello"}],
            "metadata": {"t": "1"},
        }
        assert body["tool_resources"] == {"code_interpreter": {"file_ids": ["file_1"]}}
        assert body["tools"][0]["function"]["name"] == "get_weather"

    asyncio.run(main())


def test_submit_tool_outputs_posts_them_in_order() -> None:
    """submit_tool_outputs POSTs every output in one request, in the order given."""

    async def main() -> None:
        async with api(ok(run_json(status="queued"))) as (server, client):
            run = await client.runs.submit_tool_outputs(
                "thread_1",
                "run_1",
                tool_outputs=[
                    ToolOutput(tool_call_id="call_2", output="b"),
                    ToolOutput(tool_call_id="call_1", output="a"),
                ],
            )
        assert run.status is RunStatus.QUEUED
        (seen,) = server.seen
        assert seen.path == "/v1/threads/thread_1/runs/run_1/submit_tool_outputs"
        assert json.loads(seen.body) == {
            "tool_outputs": [
                {"tool_call_id": "call_2", "output": "b"},
                {"tool_call_id": "call_1", "output": "a"},
            ]
        }

    asyncio.run(main())


def test_a_closed_client_refuses_calls_and_opens_no_session() -> None:
    """After aclose, a call is a typed error, not a new session that leaks."""

    async def main() -> None:
        async with api() as (server, client):
            await client.runs.retrieve("thread_1", "run_1")
            await client.aclose()
            with pytest.raises(openai_runs.OpenAIRunsError, match="closed"):
                await client.runs.retrieve("thread_1", "run_1")
        assert len(server.seen) == 1

    asyncio.run(main())


# A hook on the public converter is global state: it is registered in a
# process of its own, so no other test sees it.
_USER_HOOK = textwrap.dedent(
    """
    import asyncio

    from openai_runs import Run, RunsClient, RunStatus, converter
    from openai_runs.testing import Emulator, RunScript

    converter.register_structure_hook(RunStatus | str, lambda value, _: "mine")
    converter.register_structure_hook(Run, lambda value, _: "not a run")


    async def main() -> None:
        async with Emulator() as emu:
            created = emu.create_run(script=RunScript.endless())
            assert converter.structure(created, Run) == "not a run"
            async with RunsClient(base_url=emu.url, api_key=emu.api_key) as client:
                run = await client.runs.retrieve(created["thread_id"], created["id"])
                assert isinstance(run, Run), run
                assert run.status is RunStatus.IN_PROGRESS, run.status
                page = await client.runs.list(created["thread_id"])
                assert page.data[0].status is RunStatus.IN_PROGRESS
        print("isolated")


    asyncio.run(main())
    """
)


def test_a_hook_on_the_public_converter_does_not_change_client_parsing() -> None:
    """A user's hook on openai_runs.converter applies to their structure calls only."""
    result = subprocess.run(
        [sys.executable, "-c", _USER_HOOK],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "isolated"
