"""Uses the public API as a user would; mypy checks it, pytest never runs it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, assert_type

from opentelemetry import metrics, trace

import openai_runs
from openai_runs import (
    AsyncPager,
    Response,
    Run,
    RunsClient,
    RunStatus,
    RunStep,
    RunWatcher,
    ToolHandler,
    WatchPolicy,
    WatchResult,
    WatchState,
    telemetry,
    tool_registry,
)
from openai_runs.auth import ApiKeyAuth, CredentialAuth, TokenAuth
from openai_runs.exceptions import (
    APIConnectionError,
    APIStatusError,
    InvalidRequestError,
    OutcomeUnknownError,
    ThreadLockedError,
    ToolCallError,
)
from openai_runs.models import (
    BingGroundingConfiguration,
    BingGroundingSearch,
    BingGroundingTool,
    ConnectedAgentTool,
    DeletedThread,
    Message,
    MessageDelta,
    MessagePartDelta,
    MessageStatus,
    Page,
    TextContent,
    Thread,
    ToolCall,
    ToolOutput,
    as_datetime,
)
from openai_runs.redis import RedisRunStore
from openai_runs.store import RunStore, SQLiteRunStore, StoredRun
from openai_runs.testing import Assistant, Emulator, Fault, RateLimit


async def token() -> tuple[str, float]:
    return "token", 0.0


async def use() -> None:
    async with RunsClient(api_key="sk", base_url="http://127.0.0.1:8080/v1") as client:
        run = await client.runs.retrieve("thread", "run")
        assert_type(run, Run)
        assert_type(await client.runs.update("t", "r", metadata={"k": "v"}), Run)
        assert_type(await client.runs.cancel(thread_id="t", run_id="r"), Run)
        pager = client.runs.steps.list("t", "r", limit=10, order="asc")
        assert_type(pager, AsyncPager[RunStep])
        assert_type(await pager, Page[RunStep])
        async for step in pager:
            assert_type(step, RunStep)
        assert_type(await client.runs.steps.retrieve("t", "r", "s"), RunStep)
        response = await client.runs.retrieve_response("t", "r")
        assert_type(response, Response[Run])
        assert_type(response.poll_after_ms, int | None)
        if run.status == RunStatus.COMPLETED and run.is_terminal:
            assert_type(as_datetime(run.completed_at), datetime | None)
        watcher = RunWatcher(client, "t", "r", timeout=60, cancel_on_timeout=True)
        assert_type(await watcher.wait(), Run)
        async for seen in RunWatcher(client, "t", "r", policy=WatchPolicy(initial=0.5)):
            assert_type(seen, Run)
        assert_type(watcher.state(), WatchState)
        assert_type(await client.runs.poll("t", "r", timeout=600), Run)
        handler = tool_registry({"get_weather": lambda city: {"city": city}})
        assert_type(handler, ToolHandler)

        async def serve(call: ToolCall) -> str:
            return call.function.arguments

        final = await client.runs.create_and_poll(
            "t", assistant_id="a", tool_handler=serve, timeout=60
        )
        assert_type(final, Run)
        outputs = [ToolOutput(tool_call_id="c", output="{}")]
        assert_type(
            await client.runs.submit_tool_outputs_and_poll(
                "t", "r", tool_outputs=outputs, tool_handler=handler
            ),
            Run,
        )
        try:
            await client.runs.poll("t", "r", tool_handler=lambda call: "sync")
        except ToolCallError as error:
            assert_type(error.tool_call, ToolCall)
            assert_type(error.run, Run)
        async for result in client.runs.watch_many(
            [("t", "r"), ("t", "r2", "key")], on_status=print, tool_handler=handler
        ):
            assert_type(result, WatchResult)
            assert_type(result.run, Run | None)
    RunsClient(auth=ApiKeyAuth("k"))
    RunsClient(auth=TokenAuth(token))
    try:
        RunsClient.azure(endpoint="https://x", api_version="v", api_key="k")
    except InvalidRequestError as error:
        assert_type(error.param, str)
    except APIStatusError as error:
        assert_type(error.request_id, str | None)
    payload = openai_runs.converter.unstructure(run)
    assert_type(openai_runs.converter.structure(payload, Run), Run)


async def converse(client: RunsClient) -> None:
    thread = await client.threads.create(metadata={"user": "u1"})
    assert_type(thread, Thread)
    message = await client.messages.create(thread.id, content="Hi")
    assert_type(message, Message)
    await client.messages.create(
        thread.id,
        role="assistant",
        content=[TextContent(text="Hello")],
    )
    messages = client.messages.list(thread.id, run_id="r", order="asc", limit=5)
    assert_type(messages, AsyncPager[Message])
    async for each in messages:
        assert_type(each.text, str)
        assert_type(each.status, MessageStatus | str)
    assert_type(await client.messages.retrieve(thread.id, message.id), Message)
    assert_type(await client.threads.update(thread.id, metadata={}), Thread)
    assert_type(await client.threads.delete(thread.id), DeletedThread)
    try:
        await client.messages.create(thread.id, content="more")
    except ThreadLockedError as error:
        assert_type(error.run_id, str)


async def streaming(client: RunsClient) -> None:
    """Streaming, as a web app uses it."""
    stream = client.runs.stream("t", assistant_id="a", tool_handler=serve_weather)
    assert_type(stream, openai_runs.RunStream)
    async with stream:
        async for event in stream:
            assert_type(event, openai_runs.StreamEvent)
            assert_type(event.event, str)
            if isinstance(event.data, MessageDelta):
                assert_type(event.data.delta.content, list[MessagePartDelta] | None)
        async for text in stream.text_deltas():
            assert_type(text, str)
        assert_type(await stream.final_run(), Run)
        assert_type(await stream.final_messages(), list[Message])
        assert_type(await stream.final_steps(), list[openai_runs.RunStep])
        assert_type(stream.current_run, Run | None)
    thread_stream = client.runs.create_thread_and_run_stream(assistant_id="a")
    assert_type(thread_stream, openai_runs.RunStream)
    outputs = [ToolOutput(tool_call_id="c", output="{}")]
    rest = client.runs.submit_tool_outputs_stream("t", "r", tool_outputs=outputs)
    async with rest:
        assert_type((await rest.final_run()).status, RunStatus | str)


def serve_weather(call: ToolCall) -> str:
    return call.function.arguments


async def safe_writes(client: RunsClient) -> None:
    run = await client.runs.create("t", assistant_id="a", idempotency_key="k-1")
    assert_type(run, Run)
    await client.runs.create("t", assistant_id="a", idempotency_key=False)
    assert_type(await client.runs.active("t"), Run | None)
    assert_type(await client.runs.wait_idle("t", cancel=True, timeout=30), Run | None)
    try:
        await client.runs.create_thread_and_run(assistant_id="a")
    except OutcomeUnknownError as error:
        assert_type(error.idempotency_key, str | None)
    except APIConnectionError as error:
        assert_type(error.request_sent, bool)
    final = await client.runs.create_and_poll(
        "t", assistant_id="a", rate_limit_restarts=3, rate_limit_backoff=5.0
    )
    assert_type(final, Run)


class AccessToken(NamedTuple):
    """azure-core's `AccessToken`, as azure-identity returns it."""

    token: str
    expires_on: int


class AzureLikeCredential:
    """The signature of azure-identity's `AsyncTokenCredential.get_token`."""

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        return AccessToken("t", 0)

    async def close(self) -> None:
        pass


async def foundry() -> None:
    credential = AzureLikeCredential()
    async with RunsClient.foundry(
        "https://x.services.ai.azure.com/api/projects/p", credential=credential
    ) as client:
        run = await client.runs.create("thread_1", agent_id="asst_1")
        assert_type(run, Run)
        assert_type(
            await client.runs.create_thread_and_run(
                agent_id="asst_1",
                tools=[
                    BingGroundingTool(
                        bing_grounding=BingGroundingSearch(
                            search_configurations=[
                                BingGroundingConfiguration(connection_id="c")
                            ]
                        )
                    )
                ],
            ),
            Run,
        )
        for tool in run.tools:
            if isinstance(tool, ConnectedAgentTool):
                assert_type(tool.connected_agent.id, str)
    RunsClient(auth=CredentialAuth(credential))
    RunsClient.foundry(api_key="token", api_version="v1", timeout=5)


def emulator_settings() -> None:
    """The emulator's fidelity settings, as a test suite would use them."""
    emu = Emulator(
        assistants=[Assistant(id="asst_1", tools=[{"type": "code_interpreter"}])],
        strict_assistants=True,
        rate_limit=RateLimit(requests=200, per=1.0),
        metadata_update="merge",
        unknown_cursor="empty",
    )
    emu.add_assistant(Assistant(id="asst_2", model="gpt-4.1"))
    emu.inject(Fault.preset("insufficient_quota", times=1))
    emu.inject(Fault(status=400, code="", message="Nope.", headers={"a": "b"}))


def observability() -> None:
    telemetry.instrument()
    telemetry.instrument(
        trace.get_tracer_provider(), metrics.get_meter_provider(), capture_content=True
    )
    telemetry.uninstrument()


async def stores(client: RunsClient) -> None:
    """Watches recorded in a run store, and resumed."""
    pairs = [("thread_1", "run_1", {"order": 17})]
    async with SQLiteRunStore("runs.db", lease=10) as store:
        async for item in client.runs.watch_many(pairs, store=store, timeout=60):
            assert_type(item, WatchResult)
        async for item in client.runs.resume_many(store, timeout=60):
            assert_type(item.ok, bool)
        runs = await store.runs()
        assert_type(runs, list[StoredRun])
        assert_type(await store.counts(), dict[str, int])
    shared: RunStore = RedisRunStore("redis://localhost:6379/0", name="batch-42")
    async for item in client.runs.resume_many(shared):
        assert_type(item.final_run, Run | None)
