"""Faults between the SDK and the server, load, and lifecycle hygiene.

The SDK talks to the emulator through :mod:`_faultproxy`, which breaks HTTP
exchanges the ways networks and gateways do; the emulator adds its own faults
(error statuses with ``Retry-After``, dropped connections, bad bodies). Every
test runs under :func:`run_clean`: asyncio debug mode, every warning recorded,
and the loop's exception handler watched, so an unclosed session or a task
destroyed while pending fails the test that caused it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import socket
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import attrs
import pytest
from _faultproxy import FaultProxy, fault_proxy
from _timing import loop_lag, retry_sleep_logged

from openai_runs import LocalBudget, RetryPolicy, RunsClient, RunWatcher, WatchPolicy
from openai_runs import exceptions as exc
from openai_runs.testing import Emulator, Fault, RunScript

T = TypeVar("T")

RETRY = RetryPolicy(initial=0.005, maximum=0.02, jitter=0.005)
TIMEOUT = 0.2  # seconds for one request in the fault matrix
INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"
OVERRUN_MARGIN = 0.1
"""The most a watch may outlive its deadline, in seconds (asserted, measured),
beyond the worst lateness of the event loop itself during the test."""


def run_clean(main: Callable[[], Awaitable[T]], *, debug: bool = True) -> T:
    """Run *main* (in debug mode); fail on leftover tasks, warnings, loop errors.

    The load tests pass ``debug=False``: asyncio's debug mode records a stack
    for every callback, which here costs up to 0.2 s per accepted connection,
    so timings would measure the debug mode rather than the SDK. Leftover
    tasks, unclosed sessions and warnings are caught either way.
    """
    problems: list[str] = []

    async def wrapper() -> T:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, ctx: problems.append(ctx["message"]))
        result = await main()
        await asyncio.sleep(0.01)  # let closed transports' callbacks run
        left = asyncio.all_tasks() - {asyncio.current_task()}
        assert not left, f"tasks still running: {left}"
        return result

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = asyncio.run(wrapper(), debug=debug)
        gc.collect()
    assert problems == []
    assert [str(w.message) for w in caught] == []
    return result


def origin(url: str) -> str:
    """The scheme, host and port of *url*."""
    return url.rsplit("/v1", 1)[0]


@contextlib.asynccontextmanager
async def stack(
    **options: Any,
) -> AsyncIterator[tuple[Emulator, FaultProxy, RunsClient]]:
    """An emulator, a fault proxy in front of it, and a client of the proxy."""
    trickle = options.pop("trickle_pause", 0.05)
    async with (
        Emulator(expires_after=None, seed=options.pop("seed", 0)) as emu,
        fault_proxy(origin(emu.url), trickle_pause=trickle) as proxy,
    ):
        options.setdefault("timeout", TIMEOUT)
        options.setdefault("retry_policy", RETRY)
        async with RunsClient(
            api_key=emu.api_key, base_url=proxy.url + "/v1", **options
        ) as client:
            yield emu, proxy, client


@attrs.frozen
class Case:
    """One row of the fault matrix: what goes wrong, and what the user sees."""

    proxy: tuple[str, ...] = ()
    emulator: Fault | None = None
    error: type[Exception] | None = None
    requests: int = 1
    request_id: bool = True


MATRIX = {
    "reset before answer, once: retried": Case(("reset_request",), requests=2),
    "reset before answer, always: connection error": Case(
        ("reset_request",) * 9, error=exc.APIConnectionError, requests=3
    ),
    "reset mid-body, once: retried": Case(("reset_body",), requests=2),
    "reset mid-body, always: connection error": Case(
        ("reset_body",) * 9, error=exc.APIConnectionError, requests=3
    ),
    "never answers, once: retried after the timeout": Case(("hang",), requests=2),
    "never answers, always: timeout error": Case(
        ("hang",) * 9, error=exc.APITimeoutError, requests=3
    ),
    "body stops half-way, once: retried": Case(("half_body",), requests=2),
    "body stops half-way, always: connection error": Case(
        ("half_body",) * 9, error=exc.APIConnectionError, requests=3
    ),
    "slow trickle: timeout error": Case(
        ("trickle",) * 9, error=exc.APITimeoutError, requests=3
    ),
    "wrong Content-Type: parsed": Case(("wrong_content_type",)),
    "HTML 502 page, once: retried": Case(("html_502",), requests=2),
    "HTML 502 page, always: server error": Case(
        ("html_502",) * 9,
        error=exc.InternalServerError,
        requests=3,
        request_id=False,
    ),
    "HTML 504 page, always: server error": Case(
        ("html_504",) * 9,
        error=exc.InternalServerError,
        requests=3,
        request_id=False,
    ),
    "JSON that is not a run: decode error, not retried": Case(
        ("not_a_run",), error=exc.APIDecodeError
    ),
    "429 with Retry-After, twice: retried": Case(
        emulator=Fault(status=429, retry_after=0.01, times=2), requests=3
    ),
    "429 with Retry-After, always: rate limit error": Case(
        emulator=Fault(status=429, retry_after=0.01),
        error=exc.RateLimitError,
        requests=3,
    ),
    "503, always: server error": Case(
        emulator=Fault(status=503), error=exc.InternalServerError, requests=3
    ),
    "dropped by the server, once: retried": Case(
        emulator=Fault(disconnect=True, times=1), requests=2
    ),
    "latency over the timeout, once: retried": Case(
        emulator=Fault(delay=0.5, times=1), requests=2
    ),
    "malformed body: decode error": Case(
        emulator=Fault(body="malformed"), error=exc.APIDecodeError
    ),
    "truncated body: decode error": Case(
        emulator=Fault(body="truncated"), error=exc.APIDecodeError
    ),
}


@pytest.mark.parametrize("case", MATRIX.values(), ids=MATRIX.keys())
def test_fault_matrix(case: Case) -> None:
    """Each fault is retried to success or surfaces as its typed error, in time."""

    async def main() -> None:
        async with stack(max_retries=2) as (emu, proxy, client):
            run = emu.create_run(script=RunScript.completed(after=60))
            proxy.plan(*case.proxy)
            if case.emulator is not None:
                emu.inject(case.emulator)
            started = time.monotonic()
            outcome: Any
            try:
                outcome = await client.runs.retrieve(run["thread_id"], run["id"])
            except exc.OpenAIRunsError as error:
                outcome = error
            elapsed = time.monotonic() - started
            if case.error is None:
                assert outcome.id == run["id"]
            else:
                assert type(outcome) is case.error
            if isinstance(outcome, exc.APIResponseError):
                assert (outcome.request_id is not None) == case.request_id
            sent = proxy.requests if case.emulator is None else emu.counts.total
            assert case.requests <= sent <= 2 * case.requests
            # Three attempts of at most TIMEOUT each, the backoff between them,
            # and scheduling slack: never the emulator's 0.5 s or a hang.
            assert elapsed < 3 * TIMEOUT + 0.25

    run_clean(main)


def test_connection_refused_fails_fast_with_a_connection_error() -> None:
    """A port with no server gives APIConnectionError after the retries, at once."""

    async def main() -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        async with RunsClient(
            api_key="sk-x", base_url=f"http://127.0.0.1:{port}/v1", retry_policy=RETRY
        ) as client:
            started = time.monotonic()
            with pytest.raises(exc.APIConnectionError):
                await client.runs.retrieve("thread_1", "run_1")
            assert time.monotonic() - started < 0.5

    run_clean(main)


def test_a_slow_but_steady_body_within_the_timeout_arrives_whole() -> None:
    """A trickle that finishes inside the timeout is read whole and parsed."""

    async def main() -> None:
        async with stack(timeout=2.0, trickle_pause=0.0005) as (emu, proxy, client):
            run = emu.create_run(script=RunScript.completed(after=60))
            proxy.plan("trickle")
            got = await client.runs.retrieve(run["thread_id"], run["id"])
            assert got.id == run["id"]
            assert proxy.injected["trickle"] == 1

    run_clean(main)


def test_a_huge_steps_page_with_file_search_content_parses() -> None:
    """A 100-step page of file-search results (about 1.5 MB) parses in full."""

    async def main() -> None:
        async with stack(timeout=5.0) as (emu, proxy, client):
            run = emu.create_run(script=RunScript.completed(after=0))
            proxy.plan("huge_steps")
            started = time.monotonic()
            page = await client.runs.steps.list(
                run["thread_id"], run["id"], limit=100, include=[INCLUDE]
            )
            assert time.monotonic() - started < 3
            assert len(page.data) == 100
            calls = [s.step_details.tool_calls for s in page.data]  # type: ignore[union-attr]
            results = calls[-1][0].file_search.results
            assert len(results) == 5
            assert results[0].content[0].text.startswith("Lorem ipsum")

    run_clean(main)


def test_a_429_storm_is_held_down_by_the_shared_back_off() -> None:
    """Under a 429 storm, watch_many's shared back-off caps the request rate; all runs end."""
    n, in_flight, hint, storm = 60, 8, 0.1, 0.5

    async def main() -> None:
        async with Emulator(expires_after=None) as emu:
            refs = [
                (r["thread_id"], r["id"])
                for r in (
                    emu.create_run(script=RunScript.completed(after=0.3))
                    for _ in range(n)
                )
            ]
            emu.inject(Fault(status=429, retry_after=hint))
            during: list[int] = []

            def calm() -> None:
                emu.clear_faults()
                during.append(emu.counts.total)

            asyncio.get_running_loop().call_later(storm, calm)
            policy = WatchPolicy(initial=0.02, maximum=0.05, retry=RETRY)
            budget = LocalBudget(max_in_flight=in_flight)
            async with RunsClient(
                api_key=emu.api_key, base_url=emu.url, budget=budget
            ) as client:
                results = [
                    r
                    async for r in client.runs.watch_many(
                        refs, policy=policy, timeout=5
                    )
                ]
        assert all(r.run is not None and r.run.status == "completed" for r in results)
        assert len(results) == n
        # At most one round of in-flight requests per Retry-After window; a
        # watcher per run without the shared pause would send n per window.
        rounds = storm / hint + 1
        assert during[0] <= rounds * in_flight * 1.5 < n * storm / hint

    run_clean(main, debug=False)


MIX = {
    "reset_request": 2,
    "reset_body": 2,
    "hang": 1,
    "half_body": 2,
    "trickle": 1,
    "wrong_content_type": 1,
    "html_502": 2,
    "html_504": 1,
    "not_a_run": 1,
}
SCRIPTS = [
    lambda rng: RunScript.completed(after=rng.uniform(0.02, 0.3)),
    lambda rng: RunScript.failed(after=rng.uniform(0.02, 0.3)),
    lambda rng: RunScript.incomplete(after=rng.uniform(0.02, 0.3)),
    lambda rng: RunScript.requires_action(after=rng.uniform(0.02, 0.3)),
    lambda _: RunScript.endless(),  # last: its watch must time out
]
ENDLESS_TIMEOUT = 0.8
"""The deadline of a watch of an endless run: it times out, on time, mid-faults."""
ENDING_TIMEOUT = 30.0
"""The deadline of a watch of a run that ends (by 0.3 s): a bound, never reached
while faults are survived. One short deadline for every watch timed most of
them out on a loaded machine (40 watches, proxy and emulator on one loop):
"ends true" then depended on the machine's load."""
MIX_POLICY = WatchPolicy(
    initial=0.01,
    multiplier=1.5,
    maximum=0.05,
    jitter=0.1,
    retry=RetryPolicy(initial=0.005, maximum=0.05, jitter=0.005),
    # Far over what a loaded machine takes to answer 40 concurrent requests
    # (proxy and emulator on the test's loop). A timed-out request's
    # connection is dropped and its retry opens a new one, the costly part:
    # under 0.1 s, then 0.3 s, on a loaded machine (or in asyncio debug mode)
    # every request timed out, and the emulator saw none for seconds. A
    # deadline still cuts a request short, so "on time" is checked as before.
    request_timeout=2.0,
    cancel_grace=0.2,
)


async def faulty_runs(
    emu: Emulator, proxy: FaultProxy, n: int, seed: int
) -> list[tuple[str, str, float]]:
    """Create *n* runs of random scripts and turn on a seeded mix of faults.

    Returns each run's thread id, id, and the deadline to watch it with.
    """
    rng = random.Random(seed)
    refs = []
    for _ in range(n):
        make = rng.choice(SCRIPTS)
        run = emu.create_run(script=make(rng))
        timeout = ENDLESS_TIMEOUT if make is SCRIPTS[-1] else ENDING_TIMEOUT
        refs.append((run["thread_id"], run["id"], timeout))
    proxy.mix(MIX, rate=0.3, seed=seed)
    emu.inject(Fault(status=429, retry_after=0.02, probability=0.05))
    emu.inject(Fault(status=500, probability=0.05))
    emu.inject(Fault(body="truncated", probability=0.03))
    return refs


def check_outcome(emu: Emulator, run_id: str, run: Any, error: Any) -> str:
    """Assert a watch ended with the run's true status or the timeout error."""
    truth = emu.retrieve(run_id)["status"]
    if error is None:
        assert run.status == truth
        assert run.is_terminal or truth == "requires_action"
        return str(truth)
    assert isinstance(error, exc.WatchTimeoutError), repr(error)
    assert (
        truth not in {"completed", "failed", "incomplete"}
        or error.run is None
        or (not error.run.is_terminal)
    )
    return "timeout"


@pytest.mark.parametrize("seed", [1, 2])
def test_watchers_under_a_random_mix_of_faults_end_true_and_on_time(seed: int) -> None:
    """Under seeded random faults each watch ends true, or an endless run's
    times out within the margin."""
    n = 40

    async def main() -> tuple[list[tuple[str, float]], float]:
        async with loop_lag() as lag, stack(seed=seed) as (emu, proxy, client):
            refs = await faulty_runs(emu, proxy, n, seed)

            async def watch(ref: tuple[str, str, float]) -> tuple[str, float]:
                thread_id, run_id, timeout = ref
                watcher = RunWatcher(
                    client, thread_id, run_id, timeout=timeout, policy=MIX_POLICY
                )
                started = time.monotonic()
                try:
                    run, error = await watcher.wait(), None
                except exc.WatchTimeoutError as timed_out:
                    run, error = None, timed_out
                overrun = time.monotonic() - started - timeout
                return check_outcome(emu, run_id, run, error), overrun

            outcomes = await asyncio.gather(*(watch(ref) for ref in refs))
            # The faults really happened (fewer on a slow machine, which
            # sends fewer polls before the deadlines).
            assert sum(proxy.injected.values()) >= 10, proxy.injected
            assert len(proxy.injected) >= 3, proxy.injected
        ended = [(o, ref[2]) for (o, _), ref in zip(outcomes, refs, strict=True)]
        return ended, max(o for _, o in outcomes) - lag.worst

    ended, overrun = run_clean(main, debug=False)
    assert overrun < OVERRUN_MARGIN
    # Every run that ends is seen to end, through the faults; only the endless
    # ones time out.
    assert [o for o, t in ended if t == ENDING_TIMEOUT].count("timeout") == 0
    assert {o for o, t in ended if t == ENDLESS_TIMEOUT} == {"timeout"}
    assert {"completed", "failed", "requires_action"} <= {o for o, _ in ended}


def test_watch_many_under_a_random_mix_of_faults_ends_true_and_on_time() -> None:
    """watch_many under seeded random faults: each result true, or an endless
    run's timeout on time."""
    n = 60

    async def main() -> tuple[list[tuple[str, float]], float]:
        budget = LocalBudget(max_in_flight=16)
        async with (
            loop_lag() as lag,
            stack(seed=3, budget=budget) as (emu, proxy, client),
        ):
            refs = await faulty_runs(emu, proxy, n, 3)
            started = time.monotonic()
            overrun = 0.0

            async def watch_all(timeout: float) -> list[tuple[str, float]]:
                """One watch_many of the runs given *timeout*, on the shared budget."""
                nonlocal overrun
                outcomes = []
                async for result in client.runs.watch_many(
                    [(t, r) for t, r, d in refs if d == timeout],
                    timeout=timeout,
                    policy=MIX_POLICY,
                ):
                    overrun = max(overrun, time.monotonic() - started - timeout)
                    outcome = check_outcome(
                        emu, result.run_id, result.run, result.error
                    )
                    outcomes.append((outcome, timeout))
                return outcomes

            endless, ending = await asyncio.gather(
                watch_all(ENDLESS_TIMEOUT), watch_all(ENDING_TIMEOUT)
            )
        return [*endless, *ending], overrun - lag.worst

    ended, overrun = run_clean(main, debug=False)
    assert len(ended) == n
    assert overrun < OVERRUN_MARGIN
    assert [o for o, t in ended if t == ENDING_TIMEOUT].count("timeout") == 0
    assert {o for o, t in ended if t == ENDLESS_TIMEOUT} == {"timeout"}


# -- lifecycle hygiene ---------------------------------------------------------


def test_cancel_mid_request_leaves_nothing_running() -> None:
    """Cancelling a caller while its request hangs ends it; the client still works."""

    async def main() -> None:
        async with stack(timeout=30) as (emu, proxy, client):
            run = emu.create_run(script=RunScript.completed(after=60))
            proxy.plan("hang")
            task = asyncio.create_task(
                client.runs.retrieve(run["thread_id"], run["id"])
            )
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await client.runs.retrieve(run["thread_id"], run["id"])).id

    run_clean(main)


def test_cancel_mid_retry_sleep_leaves_nothing_running() -> None:
    """Cancelling a caller while it sleeps on a 5 s Retry-After ends it at once."""

    async def main() -> None:
        with retry_sleep_logged(5) as sleeping:
            async with loop_lag() as lag, stack() as (emu, _proxy, client):
                run = emu.create_run(script=RunScript.completed(after=60))
                emu.inject(Fault(status=429, retry_after=5, times=1))
                task = asyncio.create_task(
                    client.runs.retrieve(run["thread_id"], run["id"])
                )
                # The 429 answered, however slowly: the caller is in its sleep.
                async with asyncio.timeout(10):
                    await sleeping.wait()
                cancelled = time.monotonic()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert time.monotonic() - cancelled < OVERRUN_MARGIN + lag.worst
                assert emu.counts.total == 1

    run_clean(main)


def test_cancel_mid_pagination_leaves_nothing_running() -> None:
    """Cancelling an async for over steps while a later page hangs ends it cleanly."""

    async def main() -> None:
        async with stack(timeout=30) as (emu, proxy, client):
            run = emu.create_run(
                script=RunScript.completed(after=0), tools=[{"type": "file_search"}]
            )
            seen: list[str] = []

            async def consume() -> None:
                async for step in client.runs.steps.list(
                    run["thread_id"], run["id"], limit=1
                ):
                    seen.append(step.id)
                    proxy.plan("hang")  # the next page never comes

            task = asyncio.create_task(consume())
            async with asyncio.timeout(10):
                while not seen:  # noqa: ASYNC110 - the first page, however slow
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # the next page's request hangs meanwhile
            assert len(seen) == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    run_clean(main)


def test_cancel_mid_watch_many_leaves_nothing_running() -> None:
    """Cancelling a task consuming watch_many stops every in-flight poll."""

    async def main() -> None:
        async with stack(timeout=30) as (emu, proxy, client):
            refs = [
                (r["thread_id"], r["id"])
                for r in (emu.create_run(script=RunScript.endless()) for _ in range(20))
            ]
            proxy.mix({"hang": 1}, rate=0.5, seed=0)

            async def consume() -> None:
                async with contextlib.aclosing(
                    client.runs.watch_many(refs, policy=MIX_POLICY)
                ) as results:
                    async for _ in results:
                        pass

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    run_clean(main)


def test_caller_owned_session_survives_faults_cancels_and_close() -> None:
    """A caller's session is used, never closed, and still works after faults."""

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            async with stack(session=session, max_retries=0) as (emu, proxy, client):
                run = emu.create_run(script=RunScript.completed(after=60))
                ids = (run["thread_id"], run["id"])
                proxy.plan("reset_body", "hang")
                for expected in (exc.APIConnectionError, exc.APITimeoutError):
                    with pytest.raises(expected):
                        await client.runs.retrieve(*ids)
                proxy.plan("hang")
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await client.runs.retrieve(*ids)
                assert client._transport.session is session
            assert not session.closed
            assert session.connector is not None
            assert not session.connector.closed

    run_clean(main)


def test_one_client_serves_many_tasks_at_once_through_faults() -> None:
    """200 concurrent calls on one client, with faults, all succeed on one session."""

    async def main() -> None:
        async with stack(max_retries=6, timeout=1.0) as (emu, proxy, client):
            runs = [
                emu.create_run(
                    script=RunScript.completed(after=0), tools=[{"type": "file_search"}]
                )
                for _ in range(20)
            ]
            proxy.mix(
                {k: v for k, v in MIX.items() if k != "not_a_run"}, rate=0.2, seed=4
            )

            async def use(i: int) -> str:
                run = runs[i % len(runs)]
                ids = (run["thread_id"], run["id"])
                if i % 3 == 0:
                    return (await client.runs.retrieve(*ids)).id
                if i % 3 == 1:
                    return (await client.runs.update(*ids, metadata={"i": str(i)})).id
                steps = client.runs.steps.list(*ids, limit=1)
                return [s.run_id async for s in steps][-1]

            first = client._transport._session()
            got = await asyncio.gather(*(use(i) for i in range(200)))
            assert got == [runs[i % len(runs)]["id"] for i in range(200)]
            assert client._transport.session is first
            assert sum(proxy.injected.values()) > 20

    run_clean(main, debug=False)
