"""The watch core: the state machine with an injected clock, the budget, and the
defects of the watch-core issue proved over loopback HTTP."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import attrs
import pytest
from _scripted import FAST, Reply, error, run_json, run_of, serve
from _timing import loop_lag
from aiohttp import web
from aiohttp.test_utils import TestServer

from openai_runs import LocalBudget, Run, RunsClient, WatchPolicy, converter
from openai_runs import exceptions as exc
from openai_runs._retry import RetryPolicy
from openai_runs._watch_core import Finish, Send, Serve, Settings, Sleep, WatchMachine
from openai_runs.auth import TokenAuth
from openai_runs.models import ToolOutput
from openai_runs.testing import Emulator, ManualClock, RunScript

CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "f", "arguments": "{}"},
}
ACTION = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [CALL]}}


def a_run(status: str, **fields: Any) -> Run:
    return converter.structure(run_json("run_1", status, **fields), Run)


def machine(now: float = 0.0, **options: Any) -> WatchMachine:
    options.setdefault("policy", attrs.evolve(FAST, jitter=0.0, request_timeout=0.1))
    return WatchMachine(
        "thread_1", "run_1", settings=Settings.of(options), retry=RetryPolicy(), now=now
    )


# --- The machine, no server ------------------------------------------------


def test_machine_polls_at_the_cadence_and_finishes_at_a_terminal_run() -> None:
    """The machine says poll, sleep by the cadence, and finish with the terminal run."""
    m = machine()
    assert m.next(0.0) == Send("retrieve", 0.1)
    assert m.on_run("retrieve", a_run("queued"), 0.01) is True
    assert m.next(0.01) == Sleep(0.015)
    assert m.on_run("retrieve", a_run("queued"), 0.02) is False
    assert m.next(0.02) == Sleep(0.03)
    done = a_run("completed")
    m.on_run("retrieve", done, 0.04)
    assert m.next(0.04) == Finish(done, None)


def test_machine_times_out_at_the_deadline_with_the_last_fault() -> None:
    """At the deadline the watch ends with WatchTimeoutError carrying the last fault."""
    m = machine(timeout=1.0)
    m.next(0.0)
    fault = exc.APIConnectionError("refused")
    m.on_fault("retrieve", fault, 0.01)
    action = m.next(1.0)
    assert isinstance(action, Finish)
    assert isinstance(action.error, exc.WatchTimeoutError)
    assert action.error.last_error is fault
    assert action.error.__cause__ is fault
    assert "refused" in str(action.error)


def test_machine_never_sleeps_past_the_deadline() -> None:
    """A cadence or hint longer than the time left is cut to the deadline."""
    m = machine(timeout=0.5, policy=WatchPolicy(initial=5.0, jitter=0.0))
    m.next(0.0)
    m.on_run("retrieve", a_run("in_progress"), 0.1, poll_after_ms=20_000)
    assert m.next(0.1) == Sleep(0.5)


@pytest.mark.parametrize("hint", [0, None])
def test_machine_reads_a_zero_poll_hint_as_no_hint(hint: int | None) -> None:
    """openai-poll-after-ms of 0 is no hint: the cadence applies, never a hot loop."""
    m = machine()
    m.next(0.0)
    m.on_run("retrieve", a_run("in_progress"), 0.0, poll_after_ms=hint)
    assert m.next(0.0) == Sleep(0.005)


def test_machine_never_serves_an_accepted_call_twice() -> None:
    """After a submit is accepted, a stale requires_action read is polled, not served."""
    m = machine(tool_handler=lambda call: "ok")
    m.next(0.0)
    waiting = a_run("requires_action", required_action=ACTION)
    m.on_run("retrieve", waiting, 0.0)
    assert isinstance(m.next(0.0), Serve)
    m.on_outputs([ToolOutput(tool_call_id="call_1", output="ok")], 0.0)
    assert m.next(0.0) == Send("submit", 0.1)
    m.on_run("submit", a_run("queued"), 0.01)
    m.on_run("retrieve", waiting, 0.02)  # stale: the server has not moved on
    assert isinstance(m.next(0.02), Sleep)  # the cadence, no second serve
    for t in (0.1, 0.2, 0.3):
        m.on_run("retrieve", waiting, t)
        assert not isinstance(m.next(t), Serve)


def test_machine_retries_the_cancel_within_the_grace_and_says_if_it_landed() -> None:
    """A timed cancel that fails transiently is sent again; the error says it landed."""
    m = machine(timeout=1.0, cancel_on_timeout=True)
    m.next(0.0)
    m.on_run("retrieve", a_run("in_progress"), 0.0)
    assert m.next(1.0) == Send("cancel", 0.1)
    m.on_fault("cancel", exc.APIConnectionError("reset"), 1.01)
    action = m.next(1.01)
    assert isinstance(action, Sleep)
    assert m.next(action.until) == Send("cancel", 0.1)
    m.on_run("cancel", a_run("cancelling"), 1.6)
    m.on_run("retrieve", a_run("cancelled"), 1.7)
    end = m.next(1.7)
    assert isinstance(end, Finish)
    assert isinstance(end.error, exc.WatchTimeoutError)
    assert end.error.cancel_landed is True
    assert end.error.run is not None
    assert end.error.run.status == "cancelled"


def test_machine_reports_a_cancel_that_never_landed() -> None:
    """A timed cancel failing until the grace runs out ends with cancel_landed False."""
    policy = attrs.evolve(FAST, cancel_grace=0.5, request_timeout=0.1)
    m = machine(timeout=1.0, cancel_on_timeout=True, policy=policy)
    m.next(0.0)
    m.on_run("retrieve", a_run("in_progress"), 0.0)
    m.next(1.0)
    m.on_fault(
        "cancel", exc.InternalServerError("down", status_code=503, headers={}), 1.1
    )
    end = m.next(1.5)
    assert isinstance(end, Finish)
    assert isinstance(end.error, exc.WatchTimeoutError)
    assert end.error.cancel_landed is False
    assert "did not land" in str(end.error)


def test_machine_measures_expiry_on_the_server_clock_only() -> None:
    """expires_at is compared with created_at, never with the local clock."""
    m = machine(timeout=900.0, policy=attrs.evolve(FAST, expiry_slack=60.0))
    m.next(0.0)
    # A run stamped eleven minutes "ago" for this machine's wall clock.
    stamp = int(time.time()) - 660
    m.on_run(
        "retrieve", a_run("in_progress", created_at=stamp, expires_at=stamp + 600), 5
    )
    assert m.deadline == 5 + 600 + 60


# --- The budget ------------------------------------------------------------


def test_sparse_429s_do_not_pause_the_whole_key() -> None:
    """One 429 among many good answers delays only itself; dense 429s pause all."""

    async def main() -> None:
        budget = LocalBudget(max_in_flight=None)
        budget.release(throttled=0.5)  # the first answer: the key looks throttled
        assert budget.paused_for > 0.4
        budget = LocalBudget(max_in_flight=None)
        for _ in range(100):
            await budget.acquire()
            budget.release()
        budget.release(throttled=0.5)
        assert budget.paused_for == 0
        for _ in range(10):
            budget.release(throttled=0.5)
        assert budget.paused_for > 0.4

    asyncio.run(main())


def test_the_budget_bounds_requests_in_flight_and_hands_slots_on_in_order() -> None:
    """With max_in_flight=2 a third acquire waits until a release, first come first."""

    async def main() -> None:
        budget = LocalBudget(max_in_flight=2)
        await budget.acquire()
        await budget.acquire()
        waiting = asyncio.create_task(budget.acquire())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        budget.release()
        await asyncio.wait_for(waiting, 1)
        assert budget.in_flight == 2

    asyncio.run(main())


def test_one_budget_serves_two_clients_and_a_429_on_one_pauses_the_other() -> None:
    """A 429 on create through one client holds the other client's polls too."""
    script = run_of("in_progress", "completed")

    async def main() -> float:
        async with serve({"run_1": script}) as (first, _):
            budget = first.budget
            second = RunsClient(
                api_key="sk-test", base_url=first.base_url, budget=budget
            )
            async with second:
                budget.release(throttled=0.2)  # as after a 429 seen by the first
                started = time.monotonic()
                await second.runs.retrieve("thread_1", "run_1")
                return time.monotonic() - started

    assert asyncio.run(main()) >= 0.15


# --- The defects, over HTTP -------------------------------------------------


@pytest.mark.parametrize("hint", ["0", "-3", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_a_retry_after_of_zero_negative_or_past_is_no_hot_loop(hint: str) -> None:
    """Retry-After ≤ 0 or in the past means no hint: the backoff spaces the retries."""
    script = run_of(error(429, "slow", **{"Retry-After": hint}))

    async def main() -> int:
        async with serve({"run_1": script}) as (client, _):
            policy = attrs.evolve(FAST, retry=RetryPolicy(initial=0.05, jitter=0.0))
            with pytest.raises(exc.WatchTimeoutError):
                await client.runs.watch("thread_1", "run_1", timeout=0.3, policy=policy)
            return script.gets

    assert asyncio.run(main()) <= 6  # a hot loop sent thousands


def test_watch_many_with_retry_after_zero_is_no_hot_loop() -> None:
    """Twenty runs answered 429 with Retry-After: 0 are retried at the backoff."""
    scripts = {
        f"run_{i}": run_of(error(429, "slow", **{"Retry-After": "0"}))
        for i in range(20)
    }

    async def main() -> int:
        async with serve(scripts) as (client, _):
            policy = attrs.evolve(FAST, retry=RetryPolicy(initial=0.05, jitter=0.0))
            pairs = [("thread_1", r) for r in scripts]
            results = [
                r
                async for r in client.runs.watch_many(pairs, timeout=0.3, policy=policy)
            ]
            assert len(results) == 20
            return sum(s.gets for s in scripts.values())

    assert asyncio.run(main()) <= 20 * 6


def test_a_run_past_its_deadline_needs_no_request_slot() -> None:
    """With one slot held by a hung request, every run is still reported on time."""
    scripts = {
        "run_hung": run_of(Reply("in_progress", delay=3.0)),
        **{f"run_{i}": run_of("in_progress") for i in range(5)},
    }

    async def main() -> tuple[float, float]:
        budget = LocalBudget(max_in_flight=1)
        async with loop_lag() as lag, serve(scripts, budget=budget) as (client, _):
            pairs = [("thread_1", r) for r in scripts]
            started = time.monotonic()
            late = 0.0
            async for result in client.runs.watch_many(pairs, timeout=0.3, policy=FAST):
                assert isinstance(result.error, exc.WatchTimeoutError)
                late = max(late, time.monotonic() - started - 0.3)
        return late, lag.worst

    # Waiting for the slot would be 2.7 s late; a loaded machine's own
    # lateness (the loop waking late) is measured, not guessed.
    late, lag = asyncio.run(main())
    assert late < 0.1 + lag


def test_a_server_stuck_at_requires_action_runs_the_handler_once() -> None:
    """An accepted call is never served again: one handler run, one submit."""
    served: list[str] = []
    submits: list[Any] = []

    async def submit(request: web.Request) -> web.Response:
        submits.append(await request.json())
        body = run_json("run_1", "queued")
        return web.json_response(body)

    async def main() -> None:
        # GET always answers requires_action; the submit is accepted.
        app = web.Application()

        async def get(_: web.Request) -> web.Response:
            return web.json_response(
                run_json("run_1", "requires_action", required_action=ACTION)
            )

        base = "/v1/threads/thread_1/runs/run_1"
        app.router.add_get(base, get)
        app.router.add_post(base + "/submit_tool_outputs", submit)
        async with (
            TestServer(app) as srv,
            RunsClient(api_key="sk-test", base_url=str(srv.make_url("/v1"))) as client,
        ):

            def handler(call: Any) -> str:
                served.append(call.id)
                return "ok"

            with pytest.raises(exc.WatchTimeoutError):
                await client.runs.watch(
                    "thread_1", "run_1", timeout=0.3, policy=FAST, tool_handler=handler
                )

    asyncio.run(main())
    assert served == ["call_1"]
    assert len(submits) == 1


def test_the_cancel_after_a_tool_error_is_retried_and_lands() -> None:
    """A 503 on the cancel after a failing handler is retried; the error says it landed."""
    cancels: list[int] = []

    async def get(_: web.Request) -> web.Response:
        status = "cancelling" if cancels else "requires_action"
        return web.json_response(run_json("run_1", status, required_action=ACTION))

    async def cancel(_: web.Request) -> web.Response:
        cancels.append(1)
        if len(cancels) == 1:
            return web.json_response({"error": {"message": "busy"}}, status=503)
        return web.json_response(run_json("run_1", "cancelling"))

    async def main() -> exc.ToolCallError:
        app = web.Application()
        base = "/v1/threads/thread_1/runs/run_1"
        app.router.add_get(base, get)
        app.router.add_post(base + "/cancel", cancel)
        async with (
            TestServer(app) as srv,
            RunsClient(api_key="sk-test", base_url=str(srv.make_url("/v1"))) as client,
        ):

            def broken(call: Any) -> str:
                raise RuntimeError("the tool is down")

            with pytest.raises(exc.ToolCallError) as caught:
                await client.runs.watch(
                    "thread_1", "run_1", timeout=5, policy=FAST, tool_handler=broken
                )
            return caught.value

    error_ = asyncio.run(main())
    assert len(cancels) == 2
    assert error_.cancel_landed is True
    assert error_.run.status == "cancelling"


def test_a_watch_of_an_unreachable_server_says_what_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refused connection is logged at WARNING and is the timeout's cause."""

    async def main() -> exc.WatchTimeoutError:
        async with TestServer(web.Application()) as srv:
            url = str(srv.make_url("/v1"))
        # The server is gone: its port refuses connections.
        async with RunsClient(api_key="sk-test", base_url=url) as client:
            policy = attrs.evolve(FAST, retry=RetryPolicy(initial=0.01, jitter=0.0))
            with pytest.raises(exc.WatchTimeoutError) as caught:
                await client.runs.watch("thread_1", "run_1", timeout=0.3, policy=policy)
            return caught.value

    with caplog.at_level(logging.WARNING, logger="openai_runs"):
        error_ = asyncio.run(main())
    assert isinstance(error_.last_error, exc.APIConnectionError)
    assert error_.__cause__ is error_.last_error
    assert error_.run is None
    assert "no poll succeeded" in str(error_)
    assert any("failures in a row" in r.getMessage() for r in caplog.records)


def test_a_slow_token_provider_counts_against_the_timeout() -> None:
    """A token fetch slower than the call's timeout ends the call at the timeout."""

    async def slow_token() -> str:
        await asyncio.sleep(2)
        return "token"

    async def main() -> float:
        app = web.Application()
        async with (
            TestServer(app) as srv,
            RunsClient(
                base_url=str(srv.make_url("/v1")),
                auth=TokenAuth(slow_token),
                max_retries=0,
            ) as client,
        ):
            started = time.monotonic()
            with pytest.raises(exc.APITimeoutError):
                await client.runs.retrieve("thread_1", "run_1", timeout=0.2)
            return time.monotonic() - started

    assert asyncio.run(main()) < 0.5


def test_a_status_hook_raising_cancelled_error_still_yields_every_result() -> None:
    """Three runs in, three results out, even when a hook raises CancelledError."""
    scripts = {f"run_{i}": run_of("in_progress", "completed") for i in range(3)}

    def hook(run: Run) -> None:
        if run.id == "run_1":
            raise asyncio.CancelledError

    async def main() -> list[Any]:
        async with serve(scripts) as (client, _):
            pairs = [("thread_1", r) for r in scripts]
            return [
                r
                async for r in client.runs.watch_many(
                    pairs, policy=FAST, on_status=hook
                )
            ]

    results = asyncio.run(main())
    assert sorted(r.run_id for r in results) == ["run_0", "run_1", "run_2"]
    failed = [r for r in results if r.error is not None]
    assert [r.run_id for r in failed] == ["run_1"]


def test_watch_many_takes_run_objects() -> None:
    """Run objects are accepted beside (thread_id, run_id) tuples."""
    scripts = {"run_a": run_of("completed"), "run_b": run_of("completed")}

    async def main() -> list[str]:
        async with serve(scripts) as (client, _):
            refs: list[Any] = [
                converter.structure(run_json("run_a", "queued"), Run),
                ("thread_1", "run_b"),
            ]
            return sorted(
                [r.run_id async for r in client.runs.watch_many(refs, policy=FAST)]
            )

    assert asyncio.run(main()) == ["run_a", "run_b"]


def test_watch_is_awaitable_and_iterable_and_refuses_typos() -> None:
    """runs.watch returns a RunWatcher to await or iterate; a typo is a TypeError."""
    script = run_of("queued", "in_progress", "completed")

    async def main() -> tuple[str, list[str]]:
        async with serve({"run_1": script}) as (client, _):
            seen = [
                str(r.status)
                async for r in client.runs.watch("thread_1", "run_1", policy=FAST)
            ]
            final = await client.runs.watch("thread_1", "run_1", policy=FAST)
            with pytest.raises(TypeError, match="tiemout"):
                client.runs.watch("thread_1", "run_1", tiemout=3)  # type: ignore[call-arg]
            return str(final.status), seen

    final, seen = asyncio.run(main())
    assert final == "completed"
    assert seen == ["queued", "in_progress", "completed"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1, "10"])
def test_a_bad_watch_timeout_is_refused_before_anything_is_sent(bad: Any) -> None:
    """NaN, infinity, negative or non-number timeouts are InvalidRequestError."""

    async def main() -> None:
        async with serve({}) as (client, server):
            with pytest.raises(exc.InvalidRequestError, match="timeout"):
                client.runs.watch("thread_1", "run_1", timeout=bad)
            assert server.log == []

    asyncio.run(main())


def test_a_manual_clock_emulator_never_times_a_watch_out_falsely() -> None:
    """The emulator's own docs pattern: a ManualClock and a real watch end true."""

    async def main() -> str:
        clock = ManualClock()
        async with (
            Emulator(clock=clock) as emu,
            RunsClient(api_key=emu.api_key, base_url=emu.url) as client,
        ):
            run = emu.create_run(script=RunScript.completed(after=5))

            async def advance() -> None:
                await asyncio.sleep(0.05)
                clock.advance(10)

            mover = asyncio.create_task(advance())
            final = await client.runs.watch(
                run["thread_id"],
                run["id"],
                timeout=2,
                policy=FAST,
                cancel_on_timeout=True,
            )
            await mover
            return str(final.status)

    assert asyncio.run(main()) == "completed"


def test_create_and_poll_takes_the_create_parameters_once() -> None:
    """create_and_poll passes RunCreateParams to create and watch options to the watch."""

    async def main() -> Run:
        async with (
            Emulator() as emu,
            RunsClient(api_key=emu.api_key, base_url=emu.url) as client,
        ):
            thread = emu.create_thread()
            with pytest.raises(TypeError, match="modle"):
                await client.runs.create_and_poll(
                    thread,
                    assistant_id="asst_1",
                    modle="x",  # type: ignore[call-arg]
                )
            return await client.runs.create_and_poll(
                thread,
                assistant_id="asst_1",
                model="gpt-4o",
                metadata={"k": "v"},
                timeout=10,
                policy=FAST,
            )

    run = asyncio.run(main())
    assert run.model == "gpt-4o"
    assert run.metadata is not None
    assert run.metadata.pop("openai_runs_idempotency_key").startswith("idem_")
    assert run.metadata == {"k": "v"}
    assert run.is_terminal
