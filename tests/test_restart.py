"""create_and_poll(rate_limit_restarts=): a run failed for a rate limit starts again."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest

from openai_runs import Run, RunsClient, WatchPolicy
from openai_runs import exceptions as exc
from openai_runs.models import MessageRequest
from openai_runs.testing import Emulator, RunScript

POLICY = WatchPolicy(initial=0.01, multiplier=1.5, maximum=0.03, jitter=0.0)
LIMITED = RunScript.failed(
    0.02,
    code="rate_limit_exceeded",
    message="Rate limit reached for gpt-4o on tokens per min. Please try again in 20ms.",
)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


@contextlib.asynccontextmanager
async def emulated(script: RunScript) -> AsyncIterator[tuple[Emulator, RunsClient]]:
    async with (
        Emulator(default_script=script) as emu,
        RunsClient(base_url=emu.url, api_key=emu.api_key) as client,
    ):
        yield emu, client


def test_a_rate_limited_run_is_started_again() -> None:
    """With rate_limit_restarts, a run failed with rate_limit_exceeded is
    followed by a new run on the same thread, whose end is returned; the
    additional messages are sent once."""

    async def main() -> None:
        async with emulated(LIMITED) as (emu, client):
            thread = await client.threads.create()

            def recover(seen: Run) -> None:
                if seen.status == "failed":
                    emu.set_default_script(RunScript.completed(0.02, reply="ok"))

            done = await client.runs.create_and_poll(
                thread.id,
                assistant_id="asst_1",
                additional_messages=[MessageRequest(role="user", content="hi")],
                policy=POLICY,
                on_status=recover,
                rate_limit_restarts=2,
            )
            assert done.status == "completed"
            runs = (await client.runs.list(thread.id)).data
            assert [r.status for r in runs] == ["completed", "failed"]
            assert runs[1].last_error is not None
            assert runs[1].last_error.code == "rate_limit_exceeded"
            messages = (await client.messages.list(thread.id, order="asc")).data
            assert [m.text for m in messages] == ["hi", "ok"]

    run(main())


def test_restarts_are_bounded_and_the_last_failure_returned() -> None:
    """After rate_limit_restarts restarts the last failed run comes back, as
    without the opt-in; no error is raised."""

    async def main() -> None:
        async with emulated(LIMITED) as (_, client):
            thread = await client.threads.create()
            last = await client.runs.create_and_poll(
                thread.id, assistant_id="a", policy=POLICY, rate_limit_restarts=2
            )
            assert last.status == "failed"
            runs = (await client.runs.list(thread.id)).data
            assert len(runs) == 3
            assert last.id == runs[0].id

    run(main())


@pytest.mark.parametrize(
    ("script", "restarts"),
    [
        (LIMITED, 0),
        (RunScript.failed(0.02, code="server_error"), 3),
        (RunScript.completed(0.02), 3),
    ],
    ids=["not asked", "another failure", "completed"],
)
def test_nothing_else_is_restarted(script: RunScript, restarts: int) -> None:
    """Without the opt-in, or for any other ending, one run is made."""

    async def main() -> None:
        async with emulated(script) as (_, client):
            thread = await client.threads.create()
            await client.runs.create_and_poll(
                thread.id, assistant_id="a", policy=POLICY, rate_limit_restarts=restarts
            )
            assert len((await client.runs.list(thread.id)).data) == 1

    run(main())


def test_the_wait_named_in_the_error_is_used() -> None:
    """ "Please try again in 20ms" replaces a long backoff."""

    async def main() -> None:
        async with emulated(LIMITED) as (_, client):
            thread = await client.threads.create()
            started = time.monotonic()
            await client.runs.create_and_poll(
                thread.id,
                assistant_id="a",
                policy=POLICY,
                rate_limit_restarts=1,
                rate_limit_backoff=30,
            )
            assert time.monotonic() - started < 5

    run(main())


def test_backoff_doubles_without_a_hint() -> None:
    """Without a wait in the message, restarts wait backoff, then twice that."""

    async def main() -> None:
        script = RunScript.failed(0.0, code="rate_limit_exceeded", message="Slow down.")
        async with emulated(script) as (_, client):
            thread = await client.threads.create()
            started = time.monotonic()
            await client.runs.create_and_poll(
                thread.id,
                assistant_id="a",
                policy=POLICY,
                rate_limit_restarts=2,
                rate_limit_backoff=0.1,
            )
            assert 0.3 <= time.monotonic() - started < 3

    run(main())


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"rate_limit_restarts": -1}, "rate_limit_restarts"),
        ({"rate_limit_restarts": 1.5}, "rate_limit_restarts"),
        ({"rate_limit_restarts": 1, "rate_limit_backoff": -1}, "rate_limit_backoff"),
    ],
)
def test_bad_restart_settings_are_refused_before_sending(
    kwargs: dict[str, Any], param: str
) -> None:
    """A negative or fractional restart count or a negative backoff is an
    InvalidRequestError, and no run is started."""

    async def main() -> None:
        async with emulated(LIMITED) as (emu, client):
            with pytest.raises(exc.InvalidRequestError) as raised:
                await client.runs.create_and_poll(
                    "thread_1", assistant_id="a", **kwargs
                )
            assert raised.value.param == param
            assert emu.counts.total == 0

    run(main())
