"""RunWatcher against a scripted server on loopback: cadence, faults, deadline, cancel."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import attrs
import pytest
from _scripted import FAST, Reply, Script, client_tasks, error, run_of, serve

from openai_runs import (
    RetryPolicy,
    Run,
    RunWatcher,
    WatchPolicy,
    WatchState,
    converter,
)
from openai_runs import exceptions as exc
from openai_runs._retry import retry_delay


@attrs.define
class FakeTime:
    """An injected clock and sleep: sleeping moves the clock, and is recorded."""

    now: float = 1000.0
    sleeps: list[float] = attrs.field(factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds
        await asyncio.sleep(0)


ON_FAKE_TIME = attrs.evolve(FAST, initial=0.5, maximum=1.0, request_timeout=5.0)
"""A cadence for deadlines on a [FakeTime][] clock: its sleeps take no time, but
a request's timeout (the policy's, cut to the time left before the deadline)
is real, so the deadline leaves seconds for answers on a loaded machine (a
0.03 s one timed the first request out) in a handful of polls."""


def watch(script: Script, **options: Any) -> tuple[Run, RunWatcher, Script]:
    """Run one watch of *script* to its end and return the run, watcher, script."""

    async def main() -> tuple[Run, RunWatcher, Script]:
        async with serve({"run_1": script}) as (client, _):
            options.setdefault("policy", FAST)
            watcher = RunWatcher(client, "thread_1", "run_1", **options)
            return await watcher.wait(), watcher, script

    return asyncio.run(main())


def watch_error(script: Script, error: type[Exception], **options: Any) -> Any:
    """Run one watch of *script* that must fail with *error*; return the error."""
    with pytest.raises(error) as info:
        watch(script, **options)
    return info.value


@pytest.mark.parametrize(
    "status", ["completed", "failed", "cancelled", "expired", "incomplete"]
)
def test_terminal_status_ends_the_watch(status: str) -> None:
    """Each terminal status ends the watch with that run, after queued and in_progress."""
    run, watcher, script = watch(run_of("queued", "in_progress", "in_progress", status))
    assert run.status == status
    assert script.gets == watcher.polls == 4


def test_requires_action_hands_the_run_back() -> None:
    """requires_action is not terminal, but wait() returns there for the caller to act."""
    run, _, script = watch(run_of("in_progress", "requires_action", "completed"))
    assert run.status == "requires_action"
    assert script.gets == 2


def test_unknown_status_keeps_the_normal_cadence() -> None:
    """A status this version does not know is polled at the cadence, not busy-looped."""
    time_ = FakeTime()
    script = run_of("thinking", "thinking", "thinking", "thinking", "completed")
    run, _, _ = watch(script, clock=time_.clock, sleep=time_.sleep)
    assert run.status == "completed"
    assert time_.sleeps == [0.005, 0.01, 0.02, 0.02]


def test_unknown_status_with_terminal_timestamp_is_an_end() -> None:
    """An unknown status ends the watch only when the run carries a terminal timestamp."""
    done = Reply("archived", fields={"completed_at": 1_700_000_100})
    run, _, script = watch(run_of("archived", done, "completed"))
    assert run.status == "archived"
    assert script.gets == 2


def test_iteration_yields_each_change_and_calls_hooks() -> None:
    """async for yields the run once per status change; sync and async hooks see each."""
    seen: list[str] = []

    async def main() -> tuple[list[str], list[str]]:
        script = run_of("queued", "queued", "in_progress", "in_progress", "completed")
        hooked: list[str] = []

        async def hook(run: Run) -> None:
            hooked.append(str(run.status))

        async with serve({"run_1": script}) as (client, _):
            watcher = RunWatcher(
                client, "thread_1", "run_1", policy=FAST, on_status=hook
            )
            async for run in watcher:
                seen.append(str(run.status))
            await client.runs.poll(
                "thread_1",
                "run_1",
                policy=FAST,
                on_status=lambda r: hooked.append("sync"),
            )
        return seen, hooked

    seen, hooked = asyncio.run(main())
    assert seen == ["queued", "in_progress", "completed"]
    assert hooked == [*seen, "sync"]


def test_poll_after_header_sets_the_next_interval_within_bounds() -> None:
    """openai-poll-after-ms on every response sets the next sleep, clamped to the bounds."""
    time_ = FakeTime()

    def hinted(ms: str) -> Reply:
        return Reply("in_progress", headers={"openai-poll-after-ms": ms})

    script = run_of(
        hinted("30"), hinted("999999"), hinted("0"), "in_progress", "completed"
    )
    watch(script, clock=time_.clock, sleep=time_.sleep)
    # 30 ms as asked; capped at 0.05; a hint of 0 is no hint: the cadence,
    # which the hints before did not advance.
    assert time_.sleeps == [0.03, 0.05, 0.005, 0.01]


def test_backoff_grows_to_its_cap_and_restarts_on_a_change() -> None:
    """The cadence multiplies up to its cap, and starts again when the status changes."""
    time_ = FakeTime()
    busy = ["in_progress"] * 5
    script = run_of("queued", *busy, "completed")
    watch(script, clock=time_.clock, sleep=time_.sleep)
    assert time_.sleeps == [0.005, 0.005, 0.01, 0.02, 0.02, 0.02]


@pytest.mark.parametrize(
    "fault",
    [
        error(429, "slow down", **{"Retry-After": "0.01"}),
        error(500, "oops"),
        error(503, "unavailable"),
        Reply(None, 200, body=b"{not json"),
        Reply(None, 200, body=b'{"id": 1}'),
        Reply("in_progress", delay=0.5),  # longer than the request timeout
    ],
    ids=["429", "500", "503", "malformed", "not-a-run", "timeout"],
)
def test_transient_faults_are_survived(fault: Reply) -> None:
    """Transient faults are retried with backoff and the watch goes on to the end."""
    # Only the slow reply may hit the shortened request timeout.
    policy = attrs.evolve(FAST, request_timeout=0.15 if fault.delay else 30)
    run, watcher, script = watch(
        run_of("in_progress", fault, fault, "completed"), policy=policy
    )
    assert run.status == "completed"
    assert watcher.retries == 2
    assert script.gets == 4


def test_retry_after_is_honoured() -> None:
    """A 429's Retry-After sets the wait before the retry, through the injected sleep."""
    time_ = FakeTime()
    script = run_of(error(429, "slow", **{"Retry-After": "0.04"}), "completed")
    watch(script, clock=time_.clock, sleep=time_.sleep)
    assert time_.sleeps == [0.04]


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (400, exc.BadRequestError),
        (401, exc.AuthenticationError),
        (403, exc.PermissionDeniedError),
        (404, exc.NotFoundError),
    ],
)
def test_permanent_faults_end_the_watch_at_once(
    code: int, error_type: type[Exception]
) -> None:
    """A permanent fault ends the watch with its typed error, without a retry."""
    script = run_of("in_progress", error(code), "completed")
    watch_error(script, error_type)
    assert script.gets == 2


def test_deadline_raises_with_the_last_run_seen() -> None:
    """Past the deadline wait() raises WatchTimeoutError carrying the last run, on time."""
    time_ = FakeTime()
    error_ = watch_error(
        run_of("queued", "in_progress"),
        exc.WatchTimeoutError,
        timeout=5,
        policy=ON_FAKE_TIME,
        clock=time_.clock,
        sleep=time_.sleep,
    )
    assert issubclass(exc.WatchTimeoutError, exc.OpenAIRunsError)
    assert error_.run.status == "in_progress"
    assert time_.now - 1000.0 == pytest.approx(5)


def test_retry_sleep_is_clamped_to_the_deadline() -> None:
    """A long Retry-After does not carry the watch past its deadline."""
    script = run_of(error(429, "slow", **{"Retry-After": "30"}))
    started = time.monotonic()
    error_ = watch_error(script, exc.WatchTimeoutError, timeout=0.05)
    assert error_.run is None
    assert time.monotonic() - started < 0.5


def test_default_deadline_is_the_policys() -> None:
    """With no timeout a watch still has one: the policy's deadline."""

    async def main() -> float:
        async with serve({}) as (client, _):
            return RunWatcher(client, "thread_1", "run_1").timeout

    assert asyncio.run(main()) == WatchPolicy().deadline == 900


def test_timed_cancel_reports_the_cancelled_run() -> None:
    """cancel_on_timeout cancels at the deadline and polls through cancelling to the end."""
    script = run_of("in_progress")
    error_ = watch_error(
        script, exc.WatchTimeoutError, timeout=0.04, cancel_on_timeout=True
    )
    assert error_.run.status == "cancelled"
    assert script.cancels == 1


def test_timed_cancel_that_races_completion_reports_completed() -> None:
    """A run that completes before the cancel lands is reported completed, not a 400."""
    script = run_of(
        "in_progress",
        cancel_reply=error(400, "Cannot cancel run with status 'completed'."),
        after_cancel=[Reply("completed")],
    )
    error_ = watch_error(
        script, exc.WatchTimeoutError, timeout=0.04, cancel_on_timeout=True
    )
    assert error_.run.status == "completed"
    assert script.cancels == 1


def test_timed_cancel_grace_is_bounded() -> None:
    """A run stuck in cancelling ends the watch after the grace period, never hangs."""
    script = run_of("in_progress", after_cancel=[Reply("cancelling")])
    time_ = FakeTime()
    error_ = watch_error(
        script,
        exc.WatchTimeoutError,
        timeout=5,
        cancel_on_timeout=True,
        policy=attrs.evolve(ON_FAKE_TIME, cancel_grace=5),
        clock=time_.clock,
        sleep=time_.sleep,
    )
    assert error_.run.status == "cancelling"
    assert script.cancels == 1
    # The deadline, then the grace, on the watch's own clock.
    assert time_.now - 1000.0 == pytest.approx(5 + 5)


@pytest.mark.parametrize("cancel_run", [False, True])
def test_caller_cancellation_leaves_nothing_behind(cancel_run: bool) -> None:
    """Cancelled under asyncio.timeout, a watch stops, leaving no task or open session."""
    script = run_of("in_progress")

    async def main() -> None:
        async with serve({"run_1": script}) as (client, _):
            watcher = RunWatcher(
                client,
                "thread_1",
                "run_1",
                policy=attrs.evolve(FAST, cancel_on_caller_cancel=cancel_run),
            )
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await watcher.wait()
            assert client_tasks() == {asyncio.current_task()}

    asyncio.run(main())
    assert script.cancels == int(cancel_run)


@pytest.mark.parametrize(
    "error_",
    [asyncio.CancelledError(), KeyboardInterrupt(), SystemExit(1), ValueError()],
)
def test_no_retry_predicate_catches_control_flow(error_: BaseException) -> None:
    """CancelledError, KeyboardInterrupt and SystemExit are never retried."""
    assert retry_delay(RetryPolicy(), 1, error_, decode_errors=True) is None


def test_resume_from_saved_state() -> None:
    """A watch saved as a dict goes on in a new watcher, keeping deadline and counters."""
    script = run_of("queued", "in_progress", "in_progress", "completed")

    async def main() -> tuple[dict[str, Any], Run, RunWatcher]:
        async with serve({"run_1": script}) as (client, _):
            first = RunWatcher(client, "thread_1", "run_1", timeout=60, policy=FAST)
            async for _ in first:
                break
            saved = json.loads(json.dumps(converter.unstructure(first.state())))
            state = converter.structure(saved, WatchState)
            second = RunWatcher.resume(client, state, policy=FAST)
            return saved, await second.wait(), second

    saved, run, second = asyncio.run(main())
    assert saved["run_id"] == "run_1"
    assert saved["polls"] == 1
    assert saved["status"] == "queued"
    assert 59 < saved["deadline"] - time.time() <= 60
    assert run.status == "completed"
    assert second.polls == 4


def test_resumed_past_its_deadline_times_out_at_once() -> None:
    """A saved watch whose deadline has passed ends at once, sending nothing."""
    script = run_of("in_progress")
    state = WatchState(thread_id="thread_1", run_id="run_1", deadline=time.time() - 1)

    async def main() -> None:
        async with serve({"run_1": script}) as (client, _):
            await RunWatcher.resume(client, state, policy=FAST).wait()

    with pytest.raises(exc.WatchTimeoutError):
        asyncio.run(main())
    assert script.gets == 0


def test_the_run_lifetime_on_the_server_clock_caps_the_deadline() -> None:
    """A run polled past its lifetime (expires_at - created_at) plus slack is given up."""
    time_ = FakeTime()
    created = 1_700_000_000
    stuck = Reply(
        "in_progress", fields={"created_at": created, "expires_at": created + 600}
    )
    policy = attrs.evolve(FAST, initial=30.0, maximum=30.0, expiry_slack=60.0)
    error_ = watch_error(
        run_of(stuck),
        exc.WatchTimeoutError,
        timeout=3600,
        policy=policy,
        clock=time_.clock,
        sleep=time_.sleep,
    )
    assert "lifetime" in str(error_)
    assert 660 <= time_.now - 1000.0 <= 661


@pytest.mark.parametrize("skew", [-700, 0, 700])
def test_a_skewed_local_clock_never_ends_a_healthy_watch(skew: int) -> None:
    """Server timestamps are never compared with the local clock (skew of ±11 minutes)."""
    now = int(time.time()) + skew
    fields = {"created_at": now, "expires_at": now + 600}
    script = run_of(
        Reply("in_progress", fields=fields),
        Reply("in_progress", fields=fields),
        Reply("completed", fields=fields),
    )
    run, watcher, _ = watch(script, timeout=30, cancel_on_timeout=True)
    assert run.status == "completed"
    assert script.cancels == 0
    assert watcher.polls == 3


def test_counters_count_polls_retries_and_time() -> None:
    """A watch counts its polls, its retries and the seconds it took."""
    time_ = FakeTime()
    script = run_of("in_progress", error(500), "in_progress", "completed")
    _, watcher, _ = watch(script, clock=time_.clock, sleep=time_.sleep)
    assert (watcher.polls, watcher.retries) == (4, 1)
    assert watcher.elapsed == pytest.approx(sum(time_.sleeps), abs=1e-5)


def test_elapsed_stops_when_the_watch_ends() -> None:
    """After the watch, elapsed stays the time it took rather than growing."""
    time_ = FakeTime()
    _, watcher, _ = watch(
        run_of("in_progress", "completed"), clock=time_.clock, sleep=time_.sleep
    )
    took = watcher.elapsed
    time_.now += 100
    assert watcher.elapsed == took == pytest.approx(sum(time_.sleeps), abs=1e-5)


def test_bad_settings_are_refused() -> None:
    """A negative timeout or a zero interval is refused before anything is sent."""
    with pytest.raises(ValueError, match="initial"):
        WatchPolicy(initial=0)
    with pytest.raises(exc.InvalidRequestError):
        watch(run_of("completed"), timeout=-1)
