"""runs.watch_many against a scripted server: order, isolation, limits, clean exits."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from _scripted import FAST, Reply, Script, client_tasks, error, run_of, serve
from _timing import loop_lag

from openai_runs import LocalBudget, WatchResult
from openai_runs import exceptions as exc


def watch_all(
    scripts: dict[str, Script],
    refs: Any = None,
    budget: LocalBudget | None = None,
    **options: Any,
) -> list[WatchResult]:
    """Watch every scripted run (or *refs*) and return the results in order."""

    async def main() -> list[WatchResult]:
        async with serve(scripts, budget=budget) as (client, _):
            options.setdefault("policy", FAST)
            pairs = refs if refs is not None else [("thread_1", r) for r in scripts]
            return [item async for item in client.runs.watch_many(pairs, **options)]

    return asyncio.run(main())


def watch_all_timed(
    scripts: dict[str, Script], **options: Any
) -> tuple[list[WatchResult], float]:
    """As watch_all; also how long watch_many took beyond the loop's own lag.

    Measured inside the server's block (its start-up is not the SDK's), less
    the worst lateness of the event loop meanwhile (a loaded machine's, or
    the parser's first build), so a bound on it holds on any machine.
    """

    async def main() -> tuple[list[WatchResult], float]:
        async with serve(scripts) as (client, _), loop_lag() as lag:
            options.setdefault("policy", FAST)
            pairs = [("thread_1", r) for r in scripts]
            started = time.monotonic()
            results = [item async for item in client.runs.watch_many(pairs, **options)]
            return results, time.monotonic() - started - lag.worst

    return asyncio.run(main())


def test_results_come_in_the_order_runs_end() -> None:
    """Each run's result is yielded as soon as it ends: as-completed order."""
    scripts = {
        "run_slow": run_of(*["in_progress"] * 6, "completed"),
        "run_mid": run_of("in_progress", "in_progress", "failed"),
        "run_fast": run_of("completed"),
    }
    results = watch_all(scripts)
    assert [r.run_id for r in results] == ["run_fast", "run_mid", "run_slow"]
    assert [r.run.status for r in results if r.run] == [
        "completed",
        "failed",
        "completed",
    ]


def test_keys_tag_runs_and_an_async_iterable_feeds_them() -> None:
    """Runs fed by an async iterable, tagged with keys, come back with their keys."""

    async def feed() -> AsyncIterator[tuple[str, str, str]]:
        yield ("thread_1", "run_a", "first")
        await asyncio.sleep(0.02)  # fed in while the first is being watched
        yield ("thread_1", "run_b", "second")

    scripts = {
        "run_a": run_of("in_progress", "completed"),
        "run_b": run_of("completed"),
    }
    results = watch_all(scripts, feed())
    assert {r.key: r.run_id for r in results} == {"first": "run_a", "second": "run_b"}
    assert all(r.ok for r in results)


def test_a_failure_is_reported_for_its_run_only() -> None:
    """A 404 for one run and a timeout for another leave the rest to finish."""
    scripts = {
        "run_ok": run_of("in_progress", "in_progress", "completed"),
        "run_stuck": run_of("in_progress"),
        "run_retry": run_of(error(500), "completed"),
    }
    refs = [("thread_1", r) for r in [*scripts, "run_missing"]]
    # The deadline is generous for run_ok (three quick polls) even on a loaded
    # machine in asyncio debug mode (0.6 s was not: run_ok timed out in the
    # serial run), and still short for run_stuck.
    results = {r.run_id: r for r in watch_all(scripts, refs, timeout=2.0)}
    assert isinstance(results["run_missing"].error, exc.NotFoundError)
    assert isinstance(results["run_stuck"].error, exc.WatchTimeoutError)
    assert results["run_ok"].run is not None
    assert results["run_ok"].run.status == "completed"
    assert results["run_retry"].ok


def test_requests_in_flight_stay_within_the_bound() -> None:
    """No more than the budget's max_in_flight requests are ever open at once."""
    slow = Reply("in_progress", delay=0.01)
    scripts = {
        f"run_{i}": run_of(slow, Reply("completed", delay=0.01)) for i in range(20)
    }

    async def main() -> int:
        budget = LocalBudget(max_in_flight=3)
        async with serve(scripts, budget=budget) as (client, server):
            pairs = [("thread_1", r) for r in scripts]
            results = [r async for r in client.runs.watch_many(pairs, policy=FAST)]
            assert len(results) == 20
            return server.peak

    assert asyncio.run(main()) == 3


def test_due_runs_wait_on_the_heap_not_in_tasks() -> None:
    """Runs due at once beyond the budget's max_in_flight get no task of their
    own: a task waiting for the budget holds a coroutine stack, a future and
    timers (the watch_many memory per run that grew after the watch core)."""
    slow = Reply("in_progress", delay=0.02)
    scripts = {f"run_{i}": run_of(slow, "completed") for i in range(60)}
    peak = 0

    async def main() -> None:
        nonlocal peak
        budget = LocalBudget(max_in_flight=3)
        async with serve(scripts, budget=budget) as (client, _):
            pairs = [("thread_1", r) for r in scripts]
            policy = attrs.evolve(FAST, initial=0.001)  # all due at once
            base = len(client_tasks())

            async def sample() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, len(client_tasks()) - base)
                    await asyncio.sleep(0)

            sampler = asyncio.create_task(sample())
            try:
                results = [
                    r async for r in client.runs.watch_many(pairs, policy=policy)
                ]
            finally:
                sampler.cancel()
                await asyncio.gather(sampler, return_exceptions=True)
            assert len(results) == 60
            assert all(r.ok for r in results)

    asyncio.run(main())
    # The sampler, watch_many's feeder and at most 3 request tasks.
    assert 0 < peak <= 5


def test_polls_per_second_are_capped() -> None:
    """The budget's max_requests_per_second spaces the requests out."""
    scripts = {f"run_{i}": run_of("completed") for i in range(10)}
    started = time.monotonic()
    watch_all(scripts, budget=LocalBudget(max_requests_per_second=200))
    assert time.monotonic() - started >= 9 / 200


def test_first_polls_are_spread_out() -> None:
    """Runs added together are first polled over a cadence, not all at one instant."""
    scripts = {f"run_{i}": run_of("completed") for i in range(30)}
    watch_all(scripts, policy=attrs.evolve(FAST, initial=0.05))
    firsts = sorted(s.times[0] for s in scripts.values())
    assert firsts[-1] - firsts[0] > 0.02


def test_a_429_pauses_every_run() -> None:
    """After one 429 with Retry-After no run is polled until the back-off is over."""
    scripts = {
        "run_throttled": run_of(
            error(429, "slow", **{"Retry-After": "0.3"}), "completed"
        ),
        **{f"run_{i}": run_of(*["in_progress"] * 3, "completed") for i in range(5)},
    }

    async def main() -> list[float]:
        async with serve({**scripts, "run_warm": run_of("completed")}) as (client, _):
            # The first answer builds the parsing code (a tenth of a second):
            # not part of what is measured.
            await client.runs.watch("thread_1", "run_warm", policy=FAST)
            pairs = [("thread_1", r) for r in scripts]
            async for _ in client.runs.watch_many(pairs, policy=FAST):
                pass
            throttled = scripts["run_throttled"].times[0]
            return [scripts[f"run_{i}"].times[-1] - throttled for i in range(5)]

    # Unpaused, each run's three more polls end about 0.1 s after the 429.
    # Paused, no run can end before the 0.3 s back-off is over, however slowly
    # the machine answers: a stalled client loop only makes them later.
    ends = asyncio.run(main())
    assert min(ends) >= 0.29, ends


def test_breaking_out_cancels_and_awaits_everything() -> None:
    """Leaving the loop early under aclosing leaves no task behind."""
    scripts = {"run_fast": run_of("completed")}
    scripts |= {f"run_{i}": run_of(Reply("in_progress", delay=0.05)) for i in range(5)}

    async def main() -> None:
        async with serve(scripts) as (client, _):
            pairs = [("thread_1", r) for r in scripts]
            async with contextlib.aclosing(
                client.runs.watch_many(pairs, policy=FAST)
            ) as results:
                async for item in results:
                    assert item.run_id == "run_fast"
                    break
            assert client_tasks() == {asyncio.current_task()}

    asyncio.run(main())


def test_cancelling_the_loop_cancels_and_awaits_everything() -> None:
    """Cancelled under asyncio.timeout, watch_many leaves no task behind."""
    scripts = {f"run_{i}": run_of(Reply("in_progress", delay=0.02)) for i in range(5)}

    async def main() -> None:
        async with serve(scripts) as (client, _):
            pairs = [("thread_1", r) for r in scripts]

            async def consume() -> None:
                async for _ in client.runs.watch_many(pairs, policy=FAST):
                    pass

            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await consume()
            assert client_tasks() == {asyncio.current_task()}

    asyncio.run(main())


def test_a_bad_item_or_limit_is_refused() -> None:
    """An item that is not a Run or (thread_id, run_id[, key]), or a zero limit, is refused."""
    with pytest.raises(exc.InvalidRequestError, match="runs"):
        watch_all({}, ["run_1"])
    with pytest.raises(exc.InvalidRequestError, match="max_in_flight"):
        LocalBudget(max_in_flight=0)
    with pytest.raises(TypeError, match="max_in_flight"):
        watch_all({}, [], max_in_flight=1)


def test_no_poll_is_put_off_past_the_deadline() -> None:
    """Neither the spread of first polls nor the 25 ms grid outlasts a run's deadline."""
    scripts = {f"run_{i}": run_of("in_progress") for i in range(10)}
    # First polls spread over 1 s would each come up to 1 s late.
    results, took = watch_all_timed(
        scripts, policy=attrs.evolve(FAST, initial=1.0), timeout=0.05
    )
    assert took < 0.5
    assert all(isinstance(r.error, exc.WatchTimeoutError) for r in results)


def test_the_shared_back_off_holds_no_run_past_its_deadline() -> None:
    """A Retry-After longer than the watch's timeout ends every watch on time."""
    scripts = {
        "run_throttled": run_of(error(429, "slow", **{"Retry-After": "2"})),
        **{f"run_{i}": run_of("in_progress") for i in range(3)},
    }
    results, took = watch_all_timed(scripts, timeout=0.2)
    assert took < 1.0
    assert all(isinstance(r.error, exc.WatchTimeoutError) for r in results)


def test_cancels_after_failed_tool_handlers_stay_within_the_bound() -> None:
    """The cancel that follows a failing tool handler waits for a request slot."""
    action = {
        "type": "submit_tool_outputs",
        "submit_tool_outputs": {
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "f", "arguments": "{}"},
                }
            ]
        },
    }
    waiting = Reply("requires_action", fields={"required_action": action})
    scripts = {
        f"run_{i}": run_of(waiting, cancel_reply=Reply("cancelling", delay=0.03))
        for i in range(4)
    }

    def handler(call: Any) -> str:
        raise RuntimeError("the tool is down")

    async def main() -> int:
        budget = LocalBudget(max_in_flight=1)
        async with serve(scripts, budget=budget) as (client, server):
            pairs = [("thread_1", r) for r in scripts]
            results = [
                r
                async for r in client.runs.watch_many(
                    pairs, policy=FAST, tool_handler=handler
                )
            ]
            assert all(isinstance(r.error, exc.ToolCallError) for r in results)
            assert all(s.cancels == 1 for s in scripts.values())
            return server.peak

    assert asyncio.run(main()) == 1
