"""The emulator's Azure AI Foundry dialect, and the client against the emulator in
both dialects: the same calls, each server's shape on the wire."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from _foundry_spec import json_schema, response_schema, validator

from openai_runs import RunsClient, RunStatus
from openai_runs import exceptions as exc
from openai_runs.models import (
    BingGroundingCall,
    BingGroundingConfiguration,
    BingGroundingSearch,
    BingGroundingTool,
    ConnectedAgent,
    ConnectedAgentTool,
    FunctionDefinition,
    FunctionTool,
    ToolCallsDetails,
)
from openai_runs.testing import Emulator, ManualClock, RunScript, ScriptedCall

RUN = validator(response_schema("Runs_GetRun"))
STEP = validator(response_schema("RunSteps_GetRunStep"))
RUNS = validator(response_schema("Runs_ListRuns"))
STEPS = validator(response_schema("RunSteps_ListRunSteps"))
ERROR = validator(json_schema("ServicePatterns.AgentV1Error"))
TOKEN = {"Authorization": "Bearer eyJ0eXAiOiJKV1Qi.any.token"}
BING = {
    "type": "bing_grounding",
    "bing_grounding": {"search_configurations": [{"connection_id": "conn"}]},
}
WEATHER = FunctionTool(
    function=FunctionDefinition(name="get_weather", parameters={"type": "object"})
)


@contextlib.asynccontextmanager
async def client_for(dialect: str, **options: Any) -> AsyncIterator[RunsClient]:
    """A client for an emulator of *dialect*, configured as a user would."""
    async with Emulator(dialect=dialect, **options) as emu:  # type: ignore[arg-type]
        if dialect == "foundry":
            client = RunsClient.foundry(emu.url, api_key="any-entra-token")
        else:
            client = RunsClient(base_url=emu.url, api_key=emu.api_key)
        async with client:
            yield client


@pytest.mark.parametrize("dialect", ["openai", "foundry"])
def test_client_runs_a_tool_call_against_either_dialect(dialect: str) -> None:
    """The same client code (create with a tool handler, list runs, list and
    retrieve steps, cancel) works against the emulator in both dialects."""
    script = RunScript.requires_action(
        ScriptedCall("get_weather"), after=0.05, then=0.05
    )

    async def main() -> None:
        async with client_for(dialect, default_script=script) as client:
            run = await client.runs.create_thread_and_run(
                agent_id="asst_1", tools=[WEATHER]
            )
            # The thread takes its next run once this one has ended.
            await client.runs.poll(
                run.thread_id, run.id, timeout=10, tool_handler=lambda call: "{}"
            )
            done = await client.runs.create_and_poll(
                run.thread_id,
                agent_id="asst_1",
                tools=[WEATHER],
                timeout=10,
                tool_handler=lambda call: '{"temp": 21}',
            )
            assert done.status is RunStatus.COMPLETED
            page = await client.runs.list(run.thread_id)
            assert {r.id for r in page.data} == {run.id, done.id}
            steps = [s async for s in client.runs.steps.list(done.thread_id, done.id)]
            assert steps
            step = await client.runs.steps.retrieve(
                done.thread_id, done.id, steps[0].id
            )
            assert step.id == steps[0].id
            second = await client.runs.create(run.thread_id, agent_id="asst_1")
            cancelling = await client.runs.cancel(second.thread_id, second.id)
            assert cancelling.status is RunStatus.CANCELLING

    asyncio.run(main())


@pytest.mark.parametrize("dialect", ["openai", "foundry"])
def test_client_pages_through_either_dialect(dialect: str) -> None:
    """Paging over many runs with `limit` works whether or not pages carry
    `object` and `first_id`."""

    async def main() -> None:
        quick = RunScript.completed(0.01)
        async with client_for(dialect, default_script=quick) as client:
            first = await client.runs.create_thread_and_run(agent_id="asst_1")
            ids = {first.id}
            for _ in range(4):
                # One active run per thread: wait for the last to end.
                await client.runs.wait_idle(first.thread_id, timeout=10)
                ids.add((await client.runs.create(first.thread_id, agent_id="a")).id)
            seen = [r.id async for r in client.runs.list(first.thread_id, limit=2)]
        assert sorted(seen) == sorted(ids)

    asyncio.run(main())


# --- The Foundry dialect on the wire ------------------------------------------


class Foundry:
    """Raw HTTP to a Foundry-dialect emulator, checking each body against
    Foundry's spec as it goes."""

    def __init__(self, emu: Emulator, session: aiohttp.ClientSession) -> None:
        self.emu = emu
        self.session = session

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        status: int = 200,
    ) -> Any:
        query = {"api-version": "v1"} if params is None else params
        async with self.session.request(
            method,
            self.emu.url + path,
            json=json,
            params=query,
            headers=TOKEN if headers is None else headers,
        ) as response:
            body = await response.json()
            assert response.status == status, body
            if status >= 400:
                ERROR.validate(body)
            return body


@contextlib.asynccontextmanager
async def foundry(**options: Any) -> AsyncIterator[Foundry]:
    async with (
        Emulator(dialect="foundry", project="proj1", **options) as emu,
        aiohttp.ClientSession() as session,
    ):
        yield Foundry(emu, session)


def test_url_is_the_project_endpoint() -> None:
    """The Foundry dialect's url is `/api/projects/{project}`, and OpenAI's
    `/v1` is not served."""

    async def main() -> None:
        async with foundry() as api:
            assert api.emu.url.endswith("/api/projects/proj1")
            root = api.emu.url.removesuffix("/api/projects/proj1")
            async with api.session.post(
                root + "/v1/threads/runs", json={"assistant_id": "a"}, headers=TOKEN
            ) as response:
                assert response.status == 404

    asyncio.run(main())


def test_responses_validate_against_foundry_spec() -> None:
    """Runs (queued, requiring action, completed), steps and both list pages
    validate against Foundry's schemas; pages have no `object` or `first_id`."""
    clock = ManualClock()
    script = RunScript.requires_action(ScriptedCall("get_weather"), after=1, then=1)

    async def main() -> None:
        async with foundry(clock=clock, default_script=script) as api:
            weather = {"name": "get_weather", "parameters": {"type": "object"}}
            tools = [BING, {"type": "function", "function": weather}]
            run = await api.call(
                "POST", "/threads/runs", json={"assistant_id": "a", "tools": tools}
            )
            RUN.validate(run)
            assert "required_action" not in run
            path = f"/threads/{run['thread_id']}/runs/{run['id']}"
            clock.advance(1.5)
            waiting = await api.call("GET", path)
            RUN.validate(waiting)
            assert waiting["status"] == "requires_action"
            (call,) = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
            await api.call(
                "POST",
                path + "/submit_tool_outputs",
                json={"tool_outputs": [{"tool_call_id": call["id"], "output": "21"}]},
            )
            clock.advance(5)
            done = await api.call("GET", path)
            RUN.validate(done)
            assert done["status"] == "completed"
            runs = await api.call("GET", f"/threads/{run['thread_id']}/runs")
            RUNS.validate(runs)
            steps = await api.call("GET", path + "/steps")
            STEPS.validate(steps)
            for page in (runs, steps):
                assert "object" not in page
                assert "first_id" not in page
                assert page["last_id"] == page["data"][-1]["id"]
            for step in steps["data"]:
                STEP.validate(step)
            kinds = {
                c["type"]
                for s in steps["data"]
                if s["type"] == "tool_calls"
                for c in s["step_details"]["tool_calls"]
            }
            assert "bing_grounding" in kinds
            empty = await api.call(
                "GET",
                f"/threads/{run['thread_id']}/runs",
                params={"api-version": "v1", "after": runs["last_id"]},
            )
            assert empty == {"data": [], "has_more": False}

    asyncio.run(main())


def test_api_version_is_required() -> None:
    """Without `api-version`, or with one Foundry does not have, a 400."""

    async def main() -> None:
        async with foundry() as api:
            missing = await api.call(
                "POST",
                "/threads/runs",
                json={"assistant_id": "a"},
                params={},
                status=400,
            )
            wrong = await api.call(
                "POST",
                "/threads/runs",
                json={"assistant_id": "a"},
                params={"api-version": "2024-05-01"},
                status=200,
            )
            bad = await api.call(
                "POST",
                "/threads/runs",
                json={"assistant_id": "a"},
                params={"api-version": "latest"},
                status=400,
            )
        assert missing["error"]["param"] == "api-version"
        assert wrong["object"] == "thread.run"
        assert bad["error"]["code"] == "unsupported_api_version"

    asyncio.run(main())


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer "}, 401),
        ({"api-key": "sk-emulator"}, 401),
        ({"Authorization": "Bearer whatever"}, 200),
        ({"Authorization": "bearer another.token"}, 200),
    ],
)
def test_any_bearer_token_is_accepted(headers: dict[str, str], status: int) -> None:
    """Any bearer token is accepted, without the OpenAI-Beta header; no token
    (or an `api-key` header) is a 401."""

    async def main() -> None:
        async with foundry() as api:
            await api.call(
                "POST",
                "/threads/runs",
                json={"assistant_id": "a"},
                headers=headers,
                status=status,
            )

    asyncio.run(main())


def test_incomplete_is_reported_as_completed_with_details() -> None:
    """Foundry's statuses have no `incomplete`: a run the script ends
    incomplete is `completed` with `incomplete_details`."""
    clock = ManualClock()

    async def main() -> None:
        async with foundry(
            clock=clock, default_script=RunScript.incomplete(after=1)
        ) as api:
            run = await api.call("POST", "/threads/runs", json={"assistant_id": "a"})
            clock.advance(2)
            done = await api.call(
                "GET", f"/threads/{run['thread_id']}/runs/{run['id']}"
            )
        RUN.validate(done)
        assert done["status"] == "completed"
        assert done["incomplete_details"]["reason"] in {
            "max_completion_tokens",
            "max_prompt_tokens",
        }

    asyncio.run(main())


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tool_choice": "required"}, "tool_choice"),
        ({"reasoning_effort": "low"}, "reasoning_effort"),
        ({"tools": [{"type": "bing_grounding"}]}, "tools[0].bing_grounding"),
        ({"tools": [{"type": "connected_agent"}]}, "tools[0].connected_agent"),
        ({"tools": [{"type": "mystery"}]}, None),
        (
            {"tools": [{"type": "function", "function": {"name": "f"}}]},
            "tools[0].function.parameters",
        ),
    ],
)
def test_foundry_request_rules(body: dict[str, Any], param: str | None) -> None:
    """Foundry refuses `tool_choice: required`, `reasoning_effort`, a Foundry
    tool without its settings, an unknown tool type and a function without
    `parameters`, with a 400."""

    async def main() -> None:
        async with foundry() as api:
            error = await api.call(
                "POST", "/threads/runs", json={"assistant_id": "a", **body}, status=400
            )
        if param is not None:
            assert error["error"]["param"] == param

    asyncio.run(main())


def test_foundry_tools_and_modes_are_accepted() -> None:
    """Foundry's five tool types, `tool_choice: none`, a named Foundry tool
    choice and `response_format: none` are accepted and echoed."""
    tools = [
        {"type": "azure_ai_search"},
        BING,
        {
            "type": "connected_agent",
            "connected_agent": {"id": "asst_2", "name": "n", "description": "d"},
        },
        {
            "type": "openapi",
            "openapi": {"name": "w", "spec": {}, "auth": {"type": "anonymous"}},
        },
        {
            "type": "azure_function",
            "azure_function": {
                "function": {"name": "f", "parameters": {}},
                "input_binding": {
                    "type": "storage_queue",
                    "storage_queue": {"queue_service_endpoint": "u", "queue_name": "i"},
                },
                "output_binding": {
                    "type": "storage_queue",
                    "storage_queue": {"queue_service_endpoint": "u", "queue_name": "o"},
                },
            },
        },
    ]

    async def main() -> None:
        async with foundry() as api:
            run = await api.call(
                "POST",
                "/threads/runs",
                json={
                    "assistant_id": "a",
                    "tools": tools,
                    "tool_choice": "none",
                    "response_format": "none",
                },
            )
            other = await api.call("POST", "/threads", json={})
            named = await api.call(
                "POST",
                f"/threads/{other['id']}/runs",
                json={
                    "assistant_id": "a",
                    "tool_choice": {"type": "bing_custom_search"},
                },
            )
        RUN.validate(run)
        assert run["tools"] == tools
        assert (run["tool_choice"], run["response_format"]) == ("none", "none")
        assert named["tool_choice"] == {"type": "bing_custom_search"}

    asyncio.run(main())


def test_openai_dialect_refuses_foundry_tools() -> None:
    """The OpenAI dialect still refuses a Foundry tool, as OpenAI does."""

    async def main() -> None:
        async with (
            Emulator() as emu,
            RunsClient(base_url=emu.url, api_key=emu.api_key) as client,
        ):
            with pytest.raises(exc.BadRequestError):
                await client.runs.create_thread_and_run(
                    agent_id="a",
                    tools=[
                        BingGroundingTool(
                            bing_grounding=BingGroundingSearch(
                                search_configurations=[
                                    BingGroundingConfiguration(connection_id="c")
                                ]
                            )
                        )
                    ],
                )

    asyncio.run(main())


def test_client_reads_foundry_tool_steps() -> None:
    """Against the Foundry dialect, a run with Bing grounding and a connected
    agent completes, and its steps parse into typed Foundry calls."""

    async def main() -> None:
        async with client_for(
            "foundry", default_script=RunScript.completed(after=0.05)
        ) as client:
            run = await client.runs.create_thread_and_run(
                agent_id="asst_1",
                tools=[
                    BingGroundingTool(
                        bing_grounding=BingGroundingSearch(
                            search_configurations=[
                                BingGroundingConfiguration(connection_id="c")
                            ]
                        )
                    ),
                    ConnectedAgentTool(
                        connected_agent=ConnectedAgent(
                            id="asst_2", name="n", description="d"
                        )
                    ),
                ],
            )
            done = await client.runs.poll(run.thread_id, run.id, timeout=10)
            steps = [s async for s in client.runs.steps.list(done.thread_id, done.id)]
        assert done.status is RunStatus.COMPLETED
        assert [type(t) for t in done.tools] == [BingGroundingTool, ConnectedAgentTool]
        calls = [
            c
            for s in steps
            if isinstance(s.step_details, ToolCallsDetails)
            for c in s.step_details.tool_calls
        ]
        assert [type(c) for c in calls] == [BingGroundingCall]

    asyncio.run(main())


def test_unknown_dialect_is_refused() -> None:
    """`Emulator(dialect=...)` takes only `openai` or `foundry`."""
    with pytest.raises(ValueError, match="dialect"):
        Emulator(dialect="azure")  # type: ignore[arg-type]
