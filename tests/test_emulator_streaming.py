"""The emulator's answer to ``stream: true``: server-sent events over loopback."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from _threads_spec import validator

from openai_runs._sse import ServerSentEvent, iter_sse
from openai_runs.testing import Emulator, ManualClock, RunScript
from openai_runs.testing._script import DEFAULT_REPLY

Events = list[tuple[str, Any]]
FUNCTION_TOOL = {"type": "function", "function": {"name": "get_weather"}}


def run_with(
    body: Callable[[Emulator, aiohttp.ClientSession], Awaitable[Any]], **options: Any
) -> Any:
    """Serve an emulator (no key, no beta header) and run *body* against it."""

    async def main() -> Any:
        options.setdefault("api_key", None)
        options.setdefault("require_beta", False)
        async with Emulator(**options) as emu, aiohttp.ClientSession() as session:
            return await asyncio.wait_for(body(emu, session), 10)

    return asyncio.run(main())


async def sse(
    session: aiohttp.ClientSession, url: str, payload: dict[str, Any]
) -> AsyncIterator[ServerSentEvent]:
    async with session.post(url, json=payload) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == "text/event-stream"
        async for event in iter_sse(response.content):
            yield event


async def collect(
    session: aiohttp.ClientSession, url: str, payload: dict[str, Any]
) -> Events:
    events: Events = []
    async for event in sse(session, url, payload):
        data = event.data if event.is_done else json.loads(event.data)
        events.append((event.event, data))
    return events


async def new_thread(emu: Emulator, session: aiohttp.ClientSession) -> str:
    async with session.post(f"{emu.url}/threads", json={}) as response:
        thread_id: str = (await response.json())["id"]
        return thread_id


def names(events: Events) -> list[str]:
    return [name for name, _ in events]


def text_of(events: Events) -> str:
    return "".join(
        part["text"]["value"]
        for name, data in events
        if name == "thread.message.delta"
        for part in data["delta"]["content"]
    )


def check_schemas(events: Events) -> None:
    """Every event, with its data, is one the AssistantStreamEvent schema allows."""
    schema = validator("AssistantStreamEvent")
    for name, data in events:
        schema.validate({"event": name, "data": data})


MESSAGE_EVENTS = [
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
]


def test_create_run_streams_the_documented_sequence() -> None:
    """A run streams created, queued, in_progress, its message word by word, completed, done."""

    async def body(emu: Emulator, session: aiohttp.ClientSession) -> Events:
        thread_id = await new_thread(emu, session)
        url = f"{emu.url}/threads/{thread_id}/runs"
        return await collect(session, url, {"assistant_id": "asst_1", "stream": True})

    events = run_with(body, default_script=RunScript.completed(0.3))
    deltas = names(events).count("thread.message.delta")
    assert names(events) == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        *MESSAGE_EVENTS,
        *["thread.message.delta"] * deltas,
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
        "done",
    ]
    assert deltas == len(DEFAULT_REPLY.split())
    assert text_of(events) == DEFAULT_REPLY
    assert events[-1] == ("done", "[DONE]")
    completed = dict(events)["thread.message.completed"]
    assert completed["content"][0]["text"]["value"] == DEFAULT_REPLY
    check_schemas(events[:-1])


def test_create_thread_and_run_starts_with_the_thread() -> None:
    """createThreadAndRun's stream opens with thread.created, the run on that thread."""

    async def body(emu: Emulator, session: aiohttp.ClientSession) -> Events:
        payload = {"assistant_id": "asst_1", "stream": True}
        return await collect(session, f"{emu.url}/threads/runs", payload)

    events = run_with(body, default_script=RunScript.completed(0.1))
    assert names(events)[:2] == ["thread.created", "thread.run.created"]
    assert events[1][1]["thread_id"] == events[0][1]["id"]
    assert names(events)[-2:] == ["thread.run.completed", "done"]
    check_schemas(events[:-1])


def test_tool_call_then_submit_with_stream() -> None:
    """A stream stops at requires_action; submitting with stream: true streams the rest."""

    async def body(
        emu: Emulator, session: aiohttp.ClientSession
    ) -> tuple[Events, Events]:
        thread_id = await new_thread(emu, session)
        url = f"{emu.url}/threads/{thread_id}/runs"
        payload = {"assistant_id": "asst_1", "stream": True, "tools": [FUNCTION_TOOL]}
        first = await collect(session, url, payload)
        run = dict(first)["thread.run.requires_action"]
        calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
        outputs = [{"tool_call_id": call["id"], "output": "sunny"} for call in calls]
        submit = f"{url}/{run['id']}/submit_tool_outputs"
        second = await collect(
            session, submit, {"tool_outputs": outputs, "stream": True}
        )
        return first, second

    first, second = run_with(
        body, default_script=RunScript.requires_action(after=0.1, then=0.2)
    )
    assert names(first)[:3] == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
    ]
    assert names(first)[-2:] == ["thread.run.requires_action", "done"]
    tool_deltas = [data for name, data in first if name == "thread.run.step.delta"]
    first_call = tool_deltas[0]["delta"]["step_details"]["tool_calls"][0]
    assert first_call["function"] == {"name": "get_weather", "arguments": ""}
    assert first_call["id"].startswith("call_")
    assert names(second)[:3] == [
        "thread.run.step.completed",
        "thread.run.queued",
        "thread.run.in_progress",
    ]
    step = second[0][1]
    assert step["step_details"]["tool_calls"][0]["function"]["output"] == "sunny"
    assert names(second)[-2:] == ["thread.run.completed", "done"]
    assert text_of(second) == DEFAULT_REPLY
    check_schemas(first[:-1] + second[:-1])


def test_words_follow_the_manual_clock() -> None:
    """With a ManualClock, the reply's words come only as the clock moves."""
    clock = ManualClock()

    async def body(emu: Emulator, session: aiohttp.ClientSession) -> list[int]:
        thread_id = await new_thread(emu, session)
        url = f"{emu.url}/threads/{thread_id}/runs"
        seen: list[str] = []
        counts = []
        stream = sse(session, url, {"assistant_id": "asst_1", "stream": True})
        async for event in stream:
            seen.append(event.event)
            if event.event == "thread.message.in_progress":
                break
        # Nothing more comes while the clock stands still.
        next_event = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.2)
        assert not next_event.done()
        clock.advance(0.5)  # half of the message step's second: 5 of 11 words
        await next_event
        await asyncio.sleep(0.2)
        counts.append(1)
        async for event in stream:
            counts[-1] += event.event == "thread.message.delta"
            if counts[-1] >= 5:
                break
        clock.advance(10)
        rest = [event.event async for event in stream]
        counts.append(rest.count("thread.message.delta"))
        assert rest[-2:] == ["thread.run.completed", "done"]
        return counts

    half, rest = run_with(body, clock=clock, default_script=RunScript.completed(1.0))
    words = len(DEFAULT_REPLY.split())
    assert half == 5
    assert half + rest == words


def test_cancel_mid_stream_is_streamed() -> None:
    """A cancel from another request shows in the stream: cancelling, then cancelled."""

    async def body(emu: Emulator, session: aiohttp.ClientSession) -> Events:
        thread_id = await new_thread(emu, session)
        url = f"{emu.url}/threads/{thread_id}/runs"
        events: Events = []
        async for event in sse(
            session, url, {"assistant_id": "asst_1", "stream": True}
        ):
            data = event.data if event.is_done else json.loads(event.data)
            events.append((event.event, data))
            if event.event == "thread.message.delta" and len(events) == 9:
                run_id = events[0][1]["id"]
                async with session.post(f"{url}/{run_id}/cancel") as response:
                    assert response.status == 200
        return events

    events = run_with(body, default_script=RunScript.completed(1.0), cancel_delay=0.1)
    tail = [name for name in names(events) if name != "thread.message.delta"]
    assert tail[-5:] == [
        "thread.run.cancelling",
        "thread.message.incomplete",
        "thread.run.step.cancelled",
        "thread.run.cancelled",
        "done",
    ]
    assert 0 < names(events).count("thread.message.delta") < len(DEFAULT_REPLY.split())
    incomplete = dict(events)["thread.message.incomplete"]
    assert incomplete["incomplete_details"] == {"reason": "run_cancelled"}
    check_schemas(events[:-1])


@pytest.mark.parametrize("stream", ["yes", 1])
def test_stream_must_be_a_boolean(stream: object) -> None:
    """``stream`` that is not a boolean is a 400, as the API's schema says."""

    async def body(emu: Emulator, session: aiohttp.ClientSession) -> int:
        thread_id = await new_thread(emu, session)
        url = f"{emu.url}/threads/{thread_id}/runs"
        async with session.post(url, json={"assistant_id": "a", "stream": stream}) as r:
            return r.status

    assert run_with(body) == 400


def test_stream_false_answers_json() -> None:
    """``stream: false`` answers the plain run object, as before."""

    async def body(emu: Emulator, session: aiohttp.ClientSession) -> dict[str, Any]:
        thread_id = await new_thread(emu, session)
        url = f"{emu.url}/threads/{thread_id}/runs"
        async with session.post(url, json={"assistant_id": "a", "stream": False}) as r:
            payload: dict[str, Any] = await r.json()
            return payload

    assert run_with(body)["object"] == "thread.run"


def test_official_openai_client_streams_through_a_tool_call() -> None:
    """openai's runs.stream with an AsyncAssistantEventHandler runs a tool call to the end."""
    openai = pytest.importorskip("openai")
    from openai import AsyncAssistantEventHandler  # noqa: PLC0415 - optional

    seen: list[str] = []
    texts: list[str] = []

    class Handler(AsyncAssistantEventHandler):
        def __init__(self, client: Any, thread_id: str) -> None:
            super().__init__()
            self.client = client
            self.thread_id = thread_id

        async def on_event(self, event: Any) -> None:
            seen.append(event.event)
            if event.event == "thread.run.requires_action":
                run = event.data
                calls = run.required_action.submit_tool_outputs.tool_calls
                outputs = [{"tool_call_id": c.id, "output": "sunny"} for c in calls]
                async with self.client.beta.threads.runs.submit_tool_outputs_stream(
                    thread_id=self.thread_id,
                    run_id=run.id,
                    tool_outputs=outputs,
                    event_handler=Handler(self.client, self.thread_id),
                ) as stream:
                    await stream.until_done()

        async def on_text_delta(self, delta: Any, snapshot: Any) -> None:
            texts.append(delta.value)

    async def body(emu: Emulator, session: aiohttp.ClientSession) -> Any:
        thread_id = await new_thread(emu, session)
        async with (
            openai.AsyncOpenAI(
                base_url=emu.url, api_key="sk-any", max_retries=0
            ) as client,
            client.beta.threads.runs.stream(
                thread_id=thread_id,
                assistant_id="asst_1",
                tools=[FUNCTION_TOOL],
                event_handler=Handler(client, thread_id),
            ) as stream,
        ):
            await stream.until_done()
            return await stream.get_final_run(), stream.current_run_step_snapshot

    with warnings.catch_warnings():
        # The openai client marks the Assistants API deprecated.
        warnings.simplefilter("ignore", DeprecationWarning)
        first_run, _ = run_with(
            body, default_script=RunScript.requires_action(after=0.1, then=0.2)
        )
    assert first_run.status == "requires_action"
    assert seen.count("thread.run.requires_action") == 1
    assert seen[-1] == "thread.run.completed"
    assert "".join(texts) == DEFAULT_REPLY
