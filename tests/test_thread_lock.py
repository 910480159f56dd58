"""runs.active and runs.wait_idle: finding and waiting out a thread's active run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest

from openai_runs import RunsClient, WatchPolicy
from openai_runs import exceptions as exc
from openai_runs.models import ToolOutput
from openai_runs.testing import Emulator, ManualClock, RunScript

POLICY = WatchPolicy(initial=0.01, multiplier=1.5, maximum=0.03, jitter=0.0)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


@contextlib.asynccontextmanager
async def emulated(**options: Any) -> AsyncIterator[tuple[Emulator, RunsClient]]:
    options.setdefault("cancel_delay", 0.05)
    async with (
        Emulator(**options) as emu,
        RunsClient(base_url=emu.url, api_key=emu.api_key) as client,
    ):
        yield emu, client


@pytest.mark.parametrize(
    ("script", "active"),
    [
        (RunScript.endless(), True),
        (RunScript.requires_action(after=0.0), True),
        (RunScript.completed(0.0), False),
        (RunScript.failed(0.0), False),
    ],
    ids=["in_progress", "requires_action", "completed", "failed"],
)
def test_active_returns_the_run_holding_the_thread(
    script: RunScript, active: bool
) -> None:
    """runs.active is the thread's queued/in_progress/requires_action run, else None."""

    async def main() -> None:
        async with emulated() as (emu, client):
            created = emu.create_run(script=script)
            await asyncio.sleep(0.01)
            found = await client.runs.active(created["thread_id"])
            assert (found.id if found else None) == (created["id"] if active else None)

    run(main())


def test_active_of_an_empty_thread_is_none() -> None:
    """A thread without runs has no active run."""

    async def main() -> None:
        async with emulated() as (_, client):
            thread = await client.threads.create()
            assert await client.runs.active(thread.id) is None
            assert await client.runs.wait_idle(thread.id) is None

    run(main())


def test_cancelling_run_is_still_active() -> None:
    """A run in ``cancelling`` still holds the lock."""

    async def main() -> None:
        async with emulated(cancel_delay=60) as (emu, client):
            created = emu.create_run(script=RunScript.endless())
            emu.cancel(created["id"])
            found = await client.runs.active(created["thread_id"])
            assert found is not None
            assert found.status == "cancelling"

    run(main())


def test_wait_idle_waits_for_the_run_to_end_and_returns_it() -> None:
    """wait_idle returns the run once it has ended; then a message goes in."""

    async def main() -> None:
        # The run ends when the test moves the clock, not after a real
        # interval a loaded machine could spend before the first request.
        clock = ManualClock()
        async with emulated(clock=clock) as (emu, client):
            created = emu.create_run(script=RunScript.completed(0.1))
            t = created["thread_id"]
            with pytest.raises(exc.ThreadLockedError):
                await client.messages.create(t, content="hi")
            waiting = asyncio.create_task(
                client.runs.wait_idle(t, policy=POLICY, timeout=10)
            )
            async with asyncio.timeout(5):  # polls, however slowly, of the live run
                while emu.counts.retrieves[created["id"]] < 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            assert not waiting.done()
            clock.advance(0.1)
            last = await waiting
            assert last is not None
            assert (last.id, last.status) == (created["id"], "completed")
            await client.messages.create(t, content="hi")

    run(main())


@pytest.mark.parametrize(
    "script",
    [RunScript.endless(), RunScript.requires_action(after=0.0)],
    ids=["in_progress", "requires_action"],
)
def test_wait_idle_with_cancel_cancels_and_waits(script: RunScript) -> None:
    """wait_idle(cancel=True) cancels the active run and returns it cancelled."""

    async def main() -> None:
        async with emulated() as (emu, client):
            created = emu.create_run(script=script)
            await asyncio.sleep(0.01)
            last = await client.runs.wait_idle(
                created["thread_id"], cancel=True, policy=POLICY, timeout=5
            )
            assert last is not None
            assert (last.id, last.status) == (created["id"], "cancelled")
            assert await client.runs.active(created["thread_id"]) is None

    run(main())


@pytest.mark.parametrize(
    "script",
    [RunScript.endless(), RunScript.requires_action(after=0.0)],
    ids=["in_progress", "requires_action"],
)
def test_wait_idle_times_out_with_the_active_run(script: RunScript) -> None:
    """Without cancel, a run that does not end makes wait_idle raise
    WatchTimeoutError carrying it, at the deadline."""

    async def main() -> None:
        async with emulated() as (emu, client):
            created = emu.create_run(script=script)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(exc.WatchTimeoutError) as raised:
                # Long enough for a first answer on a loaded machine: the error
                # must carry the run.
                await client.runs.wait_idle(
                    created["thread_id"], policy=POLICY, timeout=1.0
                )
            assert 0.95 < loop.time() - started < 2.7
            assert raised.value.run is not None
            assert raised.value.run.id == created["id"]
            assert not raised.value.run.is_terminal

    run(main())


def test_wait_idle_waits_for_a_run_served_elsewhere() -> None:
    """A run in requires_action that someone else answers ends the wait."""

    async def main() -> None:
        async with emulated() as (emu, client):
            created = emu.create_run(
                script=RunScript.requires_action(after=0.0, then=0.05)
            )
            t = created["thread_id"]

            async def serve_later() -> None:
                await asyncio.sleep(0.1)
                waiting = await client.runs.retrieve(t, created["id"])
                await client.runs.submit_tool_outputs(
                    t,
                    waiting.id,
                    tool_outputs=[
                        ToolOutput(tool_call_id=call.id, output="{}")
                        for call in waiting.tool_calls
                    ],
                )

            server = asyncio.create_task(serve_later())
            last = await client.runs.wait_idle(t, policy=POLICY, timeout=5)
            await server
            assert last is not None
            assert last.status == "completed"

    run(main())


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"thread_id": ""}, "thread_id"),
        ({"thread_id": "t", "timeout": -1}, "timeout"),
        ({"thread_id": "t", "cancel": "yes"}, "cancel"),
    ],
)
def test_wait_idle_checks_its_arguments(kwargs: dict[str, Any], param: str) -> None:
    """A bad thread id, timeout or cancel flag is refused before sending."""

    async def main() -> None:
        async with emulated() as (emu, client):
            with pytest.raises(exc.InvalidRequestError) as raised:
                await client.runs.wait_idle(**kwargs)
            assert raised.value.param == param
            assert emu.counts.total == 0

    run(main())
