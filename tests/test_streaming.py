"""RunStream against the emulator (and hostile servers) over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _faultproxy import fault_proxy
from _timing import loop_lag
from aiohttp import web
from aiohttp.test_utils import TestServer

from openai_runs import Run, RunsClient, RunStep, RunStream, StreamEvent, WatchPolicy
from openai_runs import exceptions as exc
from openai_runs._sse import DEFAULT_MAX_LINE
from openai_runs.models import (
    ErrorObject,
    FunctionCall,
    FunctionDefinition,
    FunctionTool,
    Message,
    MessageCreationDetails,
    MessageDelta,
    RunStepDelta,
    TextPartDelta,
    ThreadRequest,
    ToolCall,
    ToolCallsDetails,
    ToolOutput,
)
from openai_runs.testing import Emulator, RunScript
from openai_runs.testing._script import DEFAULT_REPLY

WEATHER = FunctionTool(function=FunctionDefinition(name="get_weather"))
FAST = WatchPolicy(initial=0.02, maximum=0.05, jitter=0.0, cancel_grace=2.0)


def weather(call: ToolCall) -> str:
    return f"sunny ({call.function.name})"


def serve(
    body: Callable[[Emulator, RunsClient], Awaitable[Any]], **options: Any
) -> Any:
    """Run *body* with an emulator and a client of it; bounded in time."""

    async def main() -> Any:
        options.setdefault("default_script", RunScript.completed(0.2))
        async with (
            Emulator(**options) as emu,
            RunsClient(api_key=emu.api_key, base_url=emu.url) as client,
        ):
            return await asyncio.wait_for(body(emu, client), 15)

    return asyncio.run(main())


async def new_thread(client: RunsClient) -> str:
    response = await client.request("POST", ("threads",), dict, body={})
    thread_id: str = response.parsed["id"]
    return thread_id


def names(events: list[StreamEvent]) -> list[str]:
    return [event.event for event in events]


def test_events_in_order_typed() -> None:
    """A stream yields the documented events in order, each with its model."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        thread_id = await new_thread(client)
        async with client.runs.stream(thread_id, assistant_id="asst_1") as stream:
            events = [event async for event in stream]
            return events, await stream.final_run(), await stream.final_messages()

    events, run, messages = serve(body)
    message_events = [n for n in names(events) if n.startswith("thread.message")]
    assert names(events)[:3] == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
    ]
    assert names(events)[-3:] == [
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    assert message_events[:2] == [
        "thread.message.created",
        "thread.message.in_progress",
    ]
    for event in events:
        expected = {
            "thread.run": Run,
            "thread.run.step": RunStep,
            "thread.message": Message,
        }[event.event.rsplit(".", 1)[0]]
        if event.event == "thread.message.delta":
            expected = MessageDelta
        assert isinstance(event.data, expected), event
    assert run.status == "completed"
    assert [m.text for m in messages] == [DEFAULT_REPLY]


def test_text_deltas_and_snapshots() -> None:
    """text_deltas() yields the reply piece by piece; snapshots hold the whole."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        thread_id = await new_thread(client)
        async with client.runs.stream(thread_id, assistant_id="asst_1") as stream:
            pieces = [piece async for piece in stream.text_deltas()]
            return pieces, await stream.final_steps(), await stream.final_run()

    pieces, steps, run = serve(body)
    assert len(pieces) == len(DEFAULT_REPLY.split())
    assert "".join(pieces) == DEFAULT_REPLY
    (step,) = steps
    assert isinstance(step.step_details, MessageCreationDetails)
    assert step.status == "completed"
    assert run.status == "completed"


def test_tool_loop_in_one_stream() -> None:
    """With a tool_handler the same iteration goes on across requires_action to the end."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        thread_id = await new_thread(client)
        stream = client.runs.stream(
            thread_id, assistant_id="asst_1", tools=[WEATHER], tool_handler=weather
        )
        async with stream:
            events = [event async for event in stream]
            return events, await stream.final_run(), await stream.final_steps()

    events, run, steps = serve(
        body, default_script=RunScript.requires_action(after=0.1, then=0.2)
    )
    order = names(events)
    assert order.index("thread.run.requires_action") < order.index(
        "thread.run.completed"
    )
    assert order.count("thread.run.created") == 1
    assert "thread.run.step.delta" in order
    assert run.status == "completed"
    tool_step = steps[0]
    assert isinstance(tool_step.step_details, ToolCallsDetails)
    (call,) = tool_step.step_details.tool_calls
    assert isinstance(call, FunctionCall)
    assert call.function.name == "get_weather"
    assert call.function.output == "sunny (get_weather)"
    assert tool_step.status == "completed"


def test_requires_action_without_handler_then_submit_stream() -> None:
    """Without a handler the stream ends at requires_action; submit_tool_outputs_stream goes on."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        thread_id = await new_thread(client)
        async with client.runs.stream(
            thread_id, assistant_id="asst_1", tools=[WEATHER]
        ) as stream:
            paused = await stream.final_run()
        outputs = [
            ToolOutput(tool_call_id=c.id, output="rain") for c in paused.tool_calls
        ]
        async with client.runs.submit_tool_outputs_stream(
            thread_id, paused.id, tool_outputs=outputs
        ) as rest:
            text = "".join([piece async for piece in rest.text_deltas()])
            return paused, text, await rest.final_run()

    paused, text, run = serve(
        body, default_script=RunScript.requires_action(after=0.1, then=0.2)
    )
    assert paused.status == "requires_action"
    assert text == DEFAULT_REPLY
    assert run.status == "completed"
    assert run.id == paused.id


def test_create_thread_and_run_stream() -> None:
    """create_thread_and_run_stream opens with thread.created and ends with the run."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        stream = client.runs.create_thread_and_run_stream(
            assistant_id="asst_1", thread=ThreadRequest(metadata={"k": "v"})
        )
        async with stream:
            events = [event async for event in stream]
            return events, await stream.final_run()

    events, run = serve(body)
    assert events[0].event == "thread.created"
    assert run.thread_id == events[0].data.id  # type: ignore[union-attr]
    assert run.status == "completed"


def test_stream_takes_the_create_parameters_and_the_watch_options() -> None:
    """stream() takes create's parameters (idempotency_key included) and the watch options (on_status)."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        thread_id = await new_thread(client)
        seen: list[str] = []
        stream = client.runs.stream(
            thread_id,
            assistant_id="asst_1",
            metadata={"team": "a"},
            idempotency_key="turn-1",
            on_status=lambda run: seen.append(run.status),
            timeout=10,
        )
        async with stream:
            run = await stream.final_run()
        return run, seen

    run, seen = serve(body)
    assert run.metadata == {"team": "a", "openai_runs_idempotency_key": "turn-1"}
    assert seen[-1] == "completed"


def test_stream_refuses_bad_parameters_before_sending() -> None:
    """A misspelled parameter is a TypeError and a bad include an InvalidRequestError, with no request sent."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        thread_id = await new_thread(client)
        before = emu.counts.total
        with pytest.raises(TypeError, match="temprature"):
            client.runs.stream(thread_id, assistant_id="a", temprature=1)  # type: ignore[call-arg]
        with pytest.raises(exc.InvalidRequestError, match="include"):
            client.runs.stream(thread_id, assistant_id="a", include=["bogus"])
        with pytest.raises(TypeError, match="temprature"):
            client.runs.create_thread_and_run_stream(assistant_id="a", temprature=1)  # type: ignore[call-arg]
        with pytest.raises(exc.InvalidRequestError, match="timeout"):
            client.runs.submit_tool_outputs_stream(
                thread_id, "run_1", tool_outputs=[], timeout=float("nan")
            )
        return emu.counts.total - before

    assert serve(body) == 0


def test_usable_without_async_with() -> None:
    """async for alone works too, and final_run after it."""

    async def body(emu: Emulator, client: RunsClient) -> Run:
        thread_id = await new_thread(client)
        stream = client.runs.stream(thread_id, assistant_id="asst_1")
        async for _ in stream:
            pass
        return await stream.final_run()

    assert serve(body).status == "completed"


def test_deadline_bounds_the_whole_stream() -> None:
    """timeout= ends a stream that goes on past it with WatchTimeoutError."""

    # A deadline a loaded machine's first events cannot miss (0.3 s did: the
    # stream ended before it saw the run); lateness against the loop's lag.
    timeout = 1.0

    async def body(emu: Emulator, client: RunsClient) -> tuple[Any, float, float]:
        thread_id = await new_thread(client)
        loop = asyncio.get_running_loop()
        async with loop_lag() as lag:
            started = loop.time()
            with pytest.raises(exc.WatchTimeoutError) as info:
                async with client.runs.stream(
                    thread_id, assistant_id="asst_1", timeout=timeout
                ) as stream:
                    await stream.until_done()
            took = loop.time() - started
        return info.value, took, lag.worst

    error, took, lag = serve(body, default_script=RunScript.endless())
    assert error.run is not None
    assert error.run.status == "in_progress"
    assert took < timeout + 1.7 + lag


def test_deadline_with_cancel() -> None:
    """cancel_on_timeout cancels the run at the deadline; the error carries it."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        thread_id = await new_thread(client)
        with pytest.raises(exc.WatchTimeoutError) as info:
            # Past the first events however loaded the machine (0.3 s was not).
            async with client.runs.stream(
                thread_id, assistant_id="asst_1", timeout=1.0, cancel_on_timeout=True
            ) as stream:
                await stream.until_done()
        assert info.value.run is not None
        run = await client.runs.retrieve(thread_id, info.value.run.id)
        return info.value.run, run

    seen, now = serve(body, default_script=RunScript.endless(), cancel_delay=0.05)
    # As for a watch: the cancel's grace polls on to how the run ended.
    assert seen.status == "cancelled"
    assert now.status == "cancelled"


def test_leaving_early_closes_and_keeps_the_run() -> None:
    """Leaving the async with early closes the connection; the run goes on."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        thread_id = await new_thread(client)
        async with client.runs.stream(thread_id, assistant_id="asst_1") as stream:
            async for event in stream:
                if event.event == "thread.run.in_progress":
                    break
        assert stream._response is None
        run = stream.current_run
        assert run is not None
        await asyncio.sleep(0.4)
        return await client.runs.retrieve(thread_id, run.id)

    assert serve(body).status == "completed"


def test_caller_cancel_cancels_the_run() -> None:
    """Cancelling the task reading the stream, with cancel_on_caller_cancel, cancels the run."""

    async def body(emu: Emulator, client: RunsClient) -> Run:
        thread_id = await new_thread(client)
        stream = client.runs.stream(
            thread_id,
            assistant_id="asst_1",
            policy=WatchPolicy(cancel_on_caller_cancel=True),
        )
        started = asyncio.Event()

        async def read() -> None:
            async with stream:
                async for event in stream:
                    if event.event == "thread.run.in_progress":
                        started.set()

        task = asyncio.create_task(read())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        run = stream.current_run
        assert run is not None
        return await client.runs.retrieve(thread_id, run.id)

    run = serve(body, default_script=RunScript.endless(), cancel_delay=0.05)
    assert run.status in ("cancelling", "cancelled")


def test_caller_cancel_without_the_flag_leaves_the_run() -> None:
    """Without cancel_on_caller_cancel, a cancelled reader leaves the run running."""

    async def body(emu: Emulator, client: RunsClient) -> Run:
        thread_id = await new_thread(client)
        stream = client.runs.stream(thread_id, assistant_id="asst_1")

        async def read() -> None:
            async with stream:
                await stream.until_done()

        task = asyncio.create_task(read())
        # The run seen, however slowly (a fixed 0.2 s could pass first).
        async with asyncio.timeout(10):
            while stream.current_run is None:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        run = stream.current_run
        assert run is not None
        return await client.runs.retrieve(thread_id, run.id)

    assert serve(body, default_script=RunScript.endless()).status == "in_progress"


def test_cut_stream_falls_back_to_polling() -> None:
    """A proxy that resets the stream mid-run: the stream polls and ends with the terminal run."""

    async def main() -> Any:
        async with (
            Emulator(default_script=RunScript.completed(0.5)) as emu,
            fault_proxy(emu.url.rsplit("/v1", 1)[0], cut_after=4) as proxy,
            RunsClient(api_key=emu.api_key, base_url=proxy.url + "/v1") as client,
        ):
            thread_id = await new_thread(client)
            proxy.plan("cut_stream")
            async with client.runs.stream(
                thread_id, assistant_id="asst_1", policy=FAST
            ) as stream:
                events = [event async for event in stream]
                return events, await stream.final_run(), stream, proxy.injected

    events, run, stream, injected = asyncio.run(asyncio.wait_for(main(), 15))
    assert injected["cut_stream"] == 1
    assert stream.reconnects == 1
    assert run.status == "completed"
    assert events[-1].event == "thread.run.completed"
    assert isinstance(events[-1].data, Run)
    # The message step made meanwhile is reported, and its snapshot is final.
    steps = stream.snapshots.steps()
    assert [s.status for s in steps] == ["completed"]
    # The reply, never streamed, comes from the thread's messages: whole.
    texts = [
        part.text.value
        for event in events
        if isinstance(event.data, MessageDelta)
        for part in event.data.delta.content or ()
        if isinstance(part, TextPartDelta) and part.text
    ]
    assert "".join(t or "" for t in texts) == DEFAULT_REPLY
    assert [m.text for m in stream.snapshots.messages()] == [DEFAULT_REPLY]


def test_tool_loop_survives_a_cut_stream() -> None:
    """A stream cut before requires_action still serves the tools (by polling) to the end."""

    async def main() -> Any:
        async with (
            Emulator(
                default_script=RunScript.requires_action(after=0.2, then=0.1)
            ) as emu,
            fault_proxy(emu.url.rsplit("/v1", 1)[0], cut_after=3) as proxy,
            RunsClient(api_key=emu.api_key, base_url=proxy.url + "/v1") as client,
        ):
            thread_id = await new_thread(client)
            proxy.plan("cut_stream")
            async with client.runs.stream(
                thread_id,
                assistant_id="asst_1",
                tools=[WEATHER],
                tool_handler=weather,
                policy=FAST,
            ) as stream:
                events = [event async for event in stream]
                return events, await stream.final_run()

    events, run = asyncio.run(asyncio.wait_for(main(), 15))
    assert run.status == "completed"
    assert "thread.run.requires_action" in names(events)


# --- Hostile servers ----------------------------------------------------------


@contextlib.asynccontextmanager
async def raw_server(*chunks: bytes) -> AsyncIterator[RunsClient]:
    """A server whose create-run answer is *chunks* as an event stream."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
        return response

    app = web.Application()
    app.router.add_post("/v1/threads/{thread_id}/runs", handler)
    async with TestServer(app) as server:
        url = str(server.make_url("/v1"))
        async with RunsClient(api_key="sk-test", base_url=url) as client:
            yield client


def run_event(status: str) -> bytes:
    payload = {
        "id": "run_1",
        "object": "thread.run",
        "created_at": 1,
        "thread_id": "thread_1",
        "assistant_id": "asst_1",
        "status": status,
        "completed_at": 2 if status == "completed" else None,
    }
    return f"event: thread.run.{status}\ndata: {json.dumps(payload)}\n\n".encode()


def hostile(*chunks: bytes) -> list[StreamEvent]:
    async def main() -> list[StreamEvent]:
        async with raw_server(*chunks) as client:
            events: list[StreamEvent] = []
            async with client.runs.stream("thread_1", assistant_id="asst_1") as stream:
                async for event in stream:
                    events.append(event)
            return events

    return asyncio.run(asyncio.wait_for(main(), 10))


def test_unknown_events_are_yielded_and_harmless() -> None:
    """Event names added later come through as they are, and the stream goes on."""
    events = hostile(
        run_event("created"),
        b'event: thread.run.step.thinking\ndata: {"id": "x"}\n\n',
        b": keep-alive\n\n",
        b"event: ping\ndata: not json\n\n",
        run_event("completed"),
        b"event: done\ndata: [DONE]\n\n",
    )
    assert names(events) == [
        "thread.run.created",
        "thread.run.step.thinking",
        "ping",
        "thread.run.completed",
    ]
    assert events[1].data == {"id": "x"}
    assert events[2].data == "not json"


@pytest.mark.parametrize(
    "bad",
    [
        b"event: thread.run.created\ndata: {not json}\n\n",
        b'event: thread.message.delta\ndata: {"id": 1}\n\n',
        b"data: " + b"x" * (DEFAULT_MAX_LINE + 10) + b"\n\n",
    ],
    ids=["not-json", "wrong-shape", "oversized"],
)
def test_malformed_and_oversized_events_are_typed_errors(bad: bytes) -> None:
    """A malformed or oversized event raises StreamDecodeError (an APIDecodeError)."""
    with pytest.raises(exc.StreamDecodeError) as info:
        hostile(run_event("created"), bad, b"event: done\ndata: [DONE]\n\n")
    assert isinstance(info.value, exc.APIDecodeError)
    assert info.value.status_code == 200


def test_stream_that_ends_before_naming_its_run() -> None:
    """A stream that ends before any run event raises APIConnectionError, not a hang."""
    with pytest.raises(exc.APIConnectionError, match="before it named its run"):
        hostile(b": nothing\n\n")


def test_error_status_raises_at_async_with() -> None:
    """A 404 on the create is its typed error, raised when the block starts."""

    async def body(emu: Emulator, client: RunsClient) -> None:
        with pytest.raises(exc.NotFoundError):
            async with client.runs.stream("thread_nope", assistant_id="asst_1"):
                pytest.fail("the block must not start")

    serve(body)


def test_invalid_arguments_raise_before_sending() -> None:
    """Bad arguments are InvalidRequestError at the call, before any request."""

    async def body(emu: Emulator, client: RunsClient) -> None:
        with pytest.raises(exc.InvalidRequestError):
            client.runs.stream("thread/1", assistant_id="asst_1")
        with pytest.raises(exc.InvalidRequestError):
            client.runs.stream("thread_1", assistant_id="asst_1", timeout=-1)
        with pytest.raises(exc.InvalidRequestError):
            client.runs.submit_tool_outputs_stream(
                "thread_1",
                "run_1",
                tool_outputs=["x"],  # type: ignore[list-item]
            )
        assert emu.counts.total == 0

    serve(body)


def test_repr_and_delta_types() -> None:
    """RunStream has a short repr; step deltas are RunStepDelta."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        thread_id = await new_thread(client)
        stream = client.runs.stream(
            thread_id, assistant_id="asst_1", tools=[WEATHER], tool_handler=weather
        )
        assert isinstance(stream, RunStream)
        async with stream:
            events = [e async for e in stream]
        return repr(stream), events

    text, events = serve(
        body, default_script=RunScript.requires_action(after=0.05, then=0.05)
    )
    assert text.startswith("<RunStream run_")
    assert "completed" in text
    deltas = [e for e in events if e.event == "thread.run.step.delta"]
    assert deltas
    assert all(isinstance(e.data, RunStepDelta) for e in deltas)


# --- The docs' web app ----------------------------------------------------------

WEB_EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "stream_web.py"


def test_docs_web_app_relays_text_deltas() -> None:
    """docs/examples/stream_web.py sends the reply to the browser piece by piece."""
    spec = importlib.util.spec_from_file_location("stream_web", WEB_EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    async def main() -> tuple[list[bytes], int]:
        async with (
            Emulator(default_script=RunScript.completed(0.3)) as emu,
            RunsClient(api_key=emu.api_key, base_url=emu.url) as client,
            TestServer(example.make_app(client, "asst_1")) as server,
            aiohttp.ClientSession() as session,
            session.get(server.make_url("/ask"), params={"q": "Hi"}) as response,
        ):
            pieces = [chunk async for chunk in response.content.iter_any()]
            return pieces, response.status

    pieces, status = asyncio.run(asyncio.wait_for(main(), 15))
    assert status == 200
    assert b"".join(pieces).decode() == DEFAULT_REPLY + "\n[completed]\n"
    assert len(pieces) > 3  # the words came as they were written, not at the end


# --- After a drop, against a server that lists messages ----------------------------


def message_payload(text: str, status: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "object": "thread.message",
        "created_at": 1,
        "thread_id": "thread_1",
        "status": status,
        "incomplete_details": None,
        "completed_at": 2 if status == "completed" else None,
        "incomplete_at": None,
        "role": "assistant",
        "content": (
            [{"type": "text", "text": {"value": text, "annotations": []}}]
            if text
            else []
        ),
        "assistant_id": "asst_1",
        "run_id": "run_1",
        "attachments": [],
        "metadata": {},
    }


def sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def dropping_server(
    *chunks: bytes,
    messages: list[dict[str, Any]] | None,
    answer: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None,
) -> Any:
    """A server whose stream ends after *chunks* without [DONE]; polls say completed."""

    async def create(request: web.Request) -> web.StreamResponse:
        if answer is not None:
            return await answer(request)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
        return response  # no [DONE]: the stream ended early

    async def retrieve(_: web.Request) -> web.Response:
        run = json.loads(run_event("completed").split(b"data: ", 1)[1])
        return web.json_response(run)

    async def steps(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [],
                "first_id": None,
                "last_id": None,
                "has_more": False,
            }
        )

    async def list_messages(request: web.Request) -> web.Response:
        assert request.query["run_id"] == "run_1"
        data = messages or []
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "first_id": None,
                "last_id": None,
                "has_more": False,
            }
        )

    app = web.Application()
    app.router.add_post("/v1/threads/{thread_id}/runs", create)
    app.router.add_get("/v1/threads/{thread_id}/runs/{run_id}", retrieve)
    app.router.add_get("/v1/threads/{thread_id}/runs/{run_id}/steps", steps)
    if messages is not None:
        app.router.add_get("/v1/threads/{thread_id}/messages", list_messages)
    return app


def read_dropped(
    app: web.Application,
) -> tuple[list[StreamEvent], list[str], RunStream]:
    async def main() -> tuple[list[StreamEvent], list[str], RunStream]:
        async with TestServer(app) as server:
            url = str(server.make_url("/v1"))
            async with RunsClient(api_key="sk-test", base_url=url) as client:
                stream = client.runs.stream(
                    "thread_1", assistant_id="asst_1", policy=FAST
                )
                events: list[StreamEvent] = []
                texts: list[str] = []
                async with stream:
                    async for event in stream:
                        events.append(event)
                        if isinstance(event.data, MessageDelta):
                            for part in event.data.delta.content or ():
                                texts.append(part.text.value)  # type: ignore[union-attr]
                return events, texts, stream

    return asyncio.run(asyncio.wait_for(main(), 10))


def test_drop_mid_message_catches_up_the_text() -> None:
    """After a drop, the rest of a half-streamed message comes as one delta, then completed."""
    half = {
        "id": "msg_1",
        "object": "thread.message.delta",
        "delta": {"content": [{"index": 0, "type": "text", "text": {"value": "Hel"}}]},
    }
    app = dropping_server(
        run_event("created"),
        sse("thread.message.created", message_payload("", "in_progress")),
        sse("thread.message.delta", half),
        messages=[message_payload("Hello world", "completed")],
    )
    events, texts, stream = read_dropped(app)
    assert "".join(texts) == "Hello world"
    assert names(events)[-3:] == [
        "thread.message.delta",
        "thread.message.completed",
        "thread.run.completed",
    ]
    (message,) = stream.snapshots.messages()
    assert message.text == "Hello world"
    assert stream.reconnects == 1


def test_drop_before_a_message_shows_it_whole() -> None:
    """A message the stream never showed comes as created (empty), one delta, completed."""
    app = dropping_server(
        run_event("created"), messages=[message_payload("All of it.", "completed")]
    )
    events, texts, _ = read_dropped(app)
    assert texts == ["All of it."]
    created = next(e for e in events if e.event == "thread.message.created")
    assert isinstance(created.data, Message)
    assert created.data.content == []


def test_error_event_then_drop_still_ends_with_the_run() -> None:
    """An error event is yielded; the stream that then breaks polls to the terminal run."""
    error = {"type": "server_error", "message": "boom", "param": None, "code": None}
    app = dropping_server(run_event("created"), sse("error", error), messages=None)
    events, _, stream = read_dropped(app)
    assert names(events) == ["thread.run.created", "error", "thread.run.completed"]
    assert events[1].data == ErrorObject(type="server_error", message="boom")
    assert stream.current_run is not None
    assert stream.current_run.status == "completed"


def test_scripted_reply_is_streamed_and_left_on_the_thread() -> None:
    """The streamed message is the one the thread keeps: same id, same text."""
    reply = "Paris is sunny today, 21 degrees."

    async def body(emu: Emulator, client: RunsClient) -> Any:
        thread_id = await new_thread(client)
        async with client.runs.stream(thread_id, assistant_id="asst_1") as stream:
            text = "".join([piece async for piece in stream.text_deltas()])
            (streamed,) = await stream.final_messages()
        page = await client.messages.list(thread_id)
        return text, streamed, page.data

    text, streamed, kept = serve(
        body, default_script=RunScript.completed(0.2, reply=reply)
    )
    assert text == reply
    assert [(m.id, m.text) for m in kept if m.role == "assistant"] == [
        (streamed.id, reply)
    ]


def test_server_that_answers_json_is_polled() -> None:
    """A server that ignores stream: true and answers the run as JSON is polled to the end."""

    async def create(_: web.Request) -> web.StreamResponse:
        run = json.loads(run_event("queued").split(b"data: ", 1)[1])
        return web.json_response(run)

    app = dropping_server(messages=None, answer=create)
    events, _, stream = read_dropped(app)
    assert names(events) == ["thread.run.created", "thread.run.completed"]
    assert stream.current_run is not None
    assert stream.current_run.status == "completed"


def test_foundry_dialect_streams_with_agent_id() -> None:
    """Against the emulator's Azure AI Foundry dialect, agent_id= streams the reply."""

    async def main() -> tuple[str, str]:
        async with (
            Emulator(dialect="foundry", default_script=RunScript.completed(0.2)) as emu,
            RunsClient.foundry(emu.url, api_key="any-entra-token") as client,
        ):
            thread = await client.threads.create()
            async with client.runs.stream(thread.id, agent_id="asst_1") as stream:
                text = "".join([piece async for piece in stream.text_deltas()])
                return text, str((await stream.final_run()).status)

    assert asyncio.run(asyncio.wait_for(main(), 15)) == (DEFAULT_REPLY, "completed")


def test_tool_error_ends_the_stream_and_cancels_the_run() -> None:
    """A tool handler that raises ends the stream with ToolCallError; the run is cancelled."""

    def broken(call: ToolCall) -> str:
        raise RuntimeError("the weather service is down")

    async def body(emu: Emulator, client: RunsClient) -> tuple[Any, Run]:
        thread_id = await new_thread(client)
        with pytest.raises(exc.ToolCallError) as info:
            async with client.runs.stream(
                thread_id, assistant_id="asst_1", tools=[WEATHER], tool_handler=broken
            ) as stream:
                await stream.until_done()
        run = stream.current_run
        assert run is not None
        return info.value, await client.runs.retrieve(thread_id, run.id)

    error, run = serve(
        body,
        default_script=RunScript.requires_action(after=0.05, then=0.1),
        cancel_delay=0.05,
    )
    assert isinstance(error.__cause__, RuntimeError)
    assert error.tool_call.function.name == "get_weather"
    assert run.status in ("cancelling", "cancelled")
