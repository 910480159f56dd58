"""Writes safe to retry: a proxy drops the answer after the server acted.

The fault proxy forwards the write to the emulator (so the run is created,
the outputs taken, the cancel made) and then resets the connection instead
of answering: the client cannot tell whether the write happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest
from _faultproxy import FaultProxy, fault_proxy
from aiohttp import web
from aiohttp.test_utils import TestServer

from openai_runs import PollPolicy, RetryPolicy, RunsClient
from openai_runs import exceptions as exc
from openai_runs.models import MessageRequest, ThreadRequest, ToolOutput
from openai_runs.testing import Emulator, RunScript, ScriptedCall

RETRY = RetryPolicy(initial=0.005, maximum=0.02, jitter=0.005)
POLICY = PollPolicy(initial=0.01, multiplier=1.5, maximum=0.03, jitter=0.0)
KEY = "openai_runs_idempotency_key"


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


@contextlib.asynccontextmanager
async def stack(
    script: RunScript | None = None,
) -> AsyncIterator[tuple[Emulator, FaultProxy, RunsClient]]:
    """An emulator, the fault proxy in front of it, and a client of the proxy."""
    async with (
        Emulator(default_script=script, cancel_delay=0.05) as emu,
        fault_proxy(emu.url.rsplit("/v1", 1)[0]) as proxy,
        RunsClient(
            api_key=emu.api_key,
            base_url=proxy.url + "/v1",
            timeout=2,
            retry_policy=RETRY,
        ) as client,
    ):
        yield emu, proxy, client


# --- create ---------------------------------------------------------------------


def test_create_after_a_lost_answer_makes_exactly_one_run() -> None:
    """The create reached the server and its answer was lost: the client finds
    the run by its key instead of sending the create again. One run, returned."""

    async def main() -> None:
        async with stack(RunScript.endless()) as (_, proxy, client):
            thread = await client.threads.create()
            proxy.plan("drop_answer")
            created = await client.runs.create(thread.id, assistant_id="a")
            runs = (await client.runs.list(thread.id)).data
            assert [r.id for r in runs] == [created.id]
            assert created.metadata is not None
            assert created.metadata[KEY].startswith("idem_")
            assert proxy.injected["drop_answer"] == 1

    run(main())


def test_create_that_never_arrived_is_sent_again() -> None:
    """A reset before the server saw the create: the lookup finds nothing, the
    create is sent again with the same key, and one run exists."""

    async def main() -> None:
        async with stack(RunScript.endless()) as (_, proxy, client):
            thread = await client.threads.create()
            proxy.plan("reset_request")
            created = await client.runs.create(
                thread.id, assistant_id="a", idempotency_key="order-17"
            )
            runs = (await client.runs.list(thread.id)).data
            assert [r.id for r in runs] == [created.id]
            assert created.metadata == {KEY: "order-17"}

    run(main())


def test_create_and_poll_after_a_lost_answer_watches_the_one_run() -> None:
    """create_and_poll over a lost create answer ends with the one run it made."""

    async def main() -> None:
        async with stack(RunScript.completed(0.05)) as (_, proxy, client):
            thread = await client.threads.create()
            proxy.plan("drop_answer")
            done = await client.runs.create_and_poll(
                thread.id,
                assistant_id="a",
                additional_messages=[MessageRequest(role="user", content="hi")],
                policy=POLICY,
            )
            assert done.status == "completed"
            assert len((await client.runs.list(thread.id)).data) == 1
            messages = (await client.messages.list(thread.id, order="asc")).data
            assert [m.role for m in messages] == ["user", "assistant"]

    run(main())


def test_untagged_create_after_a_lost_answer_is_an_unknown_outcome() -> None:
    """idempotency_key=False: nothing to look for, so the create is not sent
    again; OutcomeUnknownError says so."""

    async def main() -> None:
        async with stack(RunScript.endless()) as (_, proxy, client):
            thread = await client.threads.create()
            proxy.plan("drop_answer")
            with pytest.raises(exc.OutcomeUnknownError) as raised:
                await client.runs.create(
                    thread.id, assistant_id="a", idempotency_key=False
                )
            assert raised.value.idempotency_key is None
            assert raised.value.path == f"/threads/{thread.id}/runs"
            assert isinstance(raised.value.__cause__, exc.APIConnectionError)
            assert len((await client.runs.list(thread.id)).data) == 1

    run(main())


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "x" * 513}, "idempotency_key"),
        (
            {
                "idempotency_key": "mine",
                "metadata": {str(i): "v" for i in range(16)},
            },
            "metadata",
        ),
    ],
)
def test_bad_idempotency_keys_are_refused(kwargs: dict[str, Any], param: str) -> None:
    """An empty or too long key, or no room for it in the metadata, is refused
    before sending."""

    async def main() -> None:
        async with stack() as (emu, _, client):
            with pytest.raises(exc.InvalidRequestError) as raised:
                await client.runs.create("thread_1", assistant_id="a", **kwargs)
            assert raised.value.param == param
            assert emu.counts.total == 0

    run(main())


def test_full_metadata_goes_untagged_by_default() -> None:
    """With 16 metadata keys and the default key, the create goes untagged."""

    async def main() -> None:
        async with stack(RunScript.endless()) as (_, _proxy, client):
            thread = await client.threads.create()
            full = {str(i): "v" for i in range(16)}
            created = await client.runs.create(
                thread.id, assistant_id="a", metadata=full
            )
            assert created.metadata == full

    run(main())


# --- submit tool outputs, cancel -------------------------------------------------


def test_submit_after_a_lost_answer_returns_the_run_without_error() -> None:
    """Outputs taken by the server, answer lost: the run is looked at and
    returned, no 400; submit_tool_outputs_and_poll sees the run complete."""

    async def main() -> None:
        script = RunScript.requires_action(ScriptedCall("f"), after=0.0, then=0.05)
        async with stack(script) as (emu, proxy, client):
            created = emu.create_run(script=script)
            t, r = created["thread_id"], created["id"]
            waiting = await client.runs.poll(t, r, policy=POLICY)
            outputs = [
                ToolOutput(tool_call_id=call.id, output="{}")
                for call in waiting.tool_calls
            ]
            proxy.plan("drop_answer")
            done = await client.runs.submit_tool_outputs_and_poll(
                t, r, tool_outputs=outputs, policy=POLICY
            )
            assert done.status == "completed"
            assert proxy.injected["drop_answer"] == 1

    run(main())


def _run(status: str, calls: list[str]) -> dict[str, Any]:
    action = (
        {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {
                "tool_calls": [
                    {
                        "id": c,
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                    for c in calls
                ]
            },
        }
        if calls
        else None
    )
    return {
        "id": "run_1",
        "object": "thread.run",
        "created_at": 1,
        "thread_id": "thread_1",
        "assistant_id": "asst_1",
        "status": status,
        "required_action": action,
    }


@pytest.mark.parametrize(
    ("later", "outcome"),
    [
        (_run("in_progress", []), "returned"),
        (_run("requires_action", ["call_1"]), "raised"),
    ],
    ids=["taken", "not taken"],
)
def test_a_400_on_the_retry_means_look_at_the_run(
    later: dict[str, Any], outcome: str
) -> None:
    """Lost answer; the run still shows the calls waiting (the write had not
    landed yet), so the outputs are re-sent; that retry gets a 400. The run is
    looked at again: if it no longer waits on those calls it is returned,
    else the 400 is raised."""
    posts: list[int] = []
    gets: list[int] = []

    async def submit(request: web.Request) -> web.StreamResponse:
        posts.append(1)
        await request.read()
        if len(posts) == 1:
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError
        body = {"error": {"message": "Runs in status ... do not accept tool outputs."}}
        return web.json_response(body, status=400)

    async def get(_: web.Request) -> web.Response:
        gets.append(1)
        first = len(gets) == 1
        return web.json_response(
            _run("requires_action", ["call_1"]) if first else later
        )

    async def main() -> None:
        app = web.Application()
        app.router.add_post(
            "/v1/threads/thread_1/runs/run_1/submit_tool_outputs", submit
        )
        app.router.add_get("/v1/threads/thread_1/runs/run_1", get)
        async with (
            TestServer(app, host="127.0.0.1") as server,
            RunsClient(
                api_key="sk-x",
                base_url=str(server.make_url("/v1")),
                retry_policy=RETRY,
            ) as client,
        ):
            outputs = [ToolOutput(tool_call_id="call_1", output="{}")]
            if outcome == "returned":
                got = await client.runs.submit_tool_outputs(
                    "thread_1", "run_1", tool_outputs=outputs
                )
                assert got.status == "in_progress"
            else:
                with pytest.raises(exc.BadRequestError):
                    await client.runs.submit_tool_outputs(
                        "thread_1", "run_1", tool_outputs=outputs
                    )
        assert (len(posts), len(gets)) == (2, 2)

    run(main())


def test_submit_that_did_not_take_effect_is_sent_again() -> None:
    """A submit reset before it reached the server: the run still waits on
    those calls, so the outputs are sent again and taken."""

    async def main() -> None:
        script = RunScript.requires_action(ScriptedCall("f"), after=0.0, then=5)
        async with stack(script) as (emu, proxy, client):
            created = emu.create_run(script=script)
            t, r = created["thread_id"], created["id"]
            waiting = await client.runs.poll(t, r, policy=POLICY)
            outputs = [
                ToolOutput(tool_call_id=call.id, output="{}")
                for call in waiting.tool_calls
            ]
            proxy.plan("reset_request")
            resumed = await client.runs.submit_tool_outputs(t, r, tool_outputs=outputs)
            assert resumed.status in ("queued", "in_progress")

    run(main())


def test_cancel_after_a_lost_answer_returns_the_cancelling_run() -> None:
    """The cancel took effect and its answer was lost: the run is returned
    (cancelling or cancelled), not the retry's 400."""

    async def main() -> None:
        async with stack(RunScript.endless()) as (emu, proxy, client):
            created = emu.create_run(script=RunScript.endless())
            proxy.plan("drop_answer")
            run_ = await client.runs.cancel(created["thread_id"], created["id"])
            assert run_.status in ("cancelling", "cancelled")

    run(main())


def test_a_real_400_is_still_raised() -> None:
    """Cancelling a run that had already ended, with no lost answer, is the
    API's 400 as before."""

    async def main() -> None:
        async with stack(RunScript.completed(0.0)) as (emu, _, client):
            created = emu.create_run(script=RunScript.completed(0.0))
            with pytest.raises(exc.BadRequestError):
                await client.runs.cancel(created["thread_id"], created["id"])

    run(main())


# --- create thread and run -----------------------------------------------------


def test_create_thread_and_run_after_a_lost_answer_is_an_unknown_outcome() -> None:
    """Nothing lists threads: the create is not sent again, and the typed
    error carries the key that the run's metadata holds."""

    async def main() -> None:
        async with stack(RunScript.endless()) as (emu, proxy, client):
            proxy.plan("drop_answer")
            with pytest.raises(exc.OutcomeUnknownError) as raised:
                await client.runs.create_thread_and_run(
                    assistant_id="a",
                    thread=ThreadRequest(
                        messages=[MessageRequest(role="user", content="hi")]
                    ),
                )
            error = raised.value
            assert (error.method, error.path) == ("POST", "/threads/runs")
            assert error.idempotency_key is not None
            assert proxy.requests == 1
            (made,) = [
                r
                for r in (emu.retrieve(i) for i in list(emu._state.runs))
                if r["metadata"].get(KEY) == error.idempotency_key
            ]
            assert made["status"] == "in_progress"

    run(main())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_connection_never_made_is_retried_and_not_an_unknown_outcome() -> None:
    """Refused connections carried nothing: they are retried as before, and
    end as a plain APIConnectionError with request_sent False."""

    async def main() -> None:
        async with RunsClient(
            api_key="sk-x",
            base_url=f"http://127.0.0.1:{free_port()}/v1",
            retry_policy=RETRY,
            max_retries=2,
        ) as client:
            with pytest.raises(exc.APIConnectionError) as raised:
                await client.runs.create_thread_and_run(assistant_id="a")
            assert type(raised.value) is exc.APIConnectionError
            assert raised.value.request_sent is False

    run(main())
