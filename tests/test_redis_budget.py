"""RedisBudget: a request budget shared through a real redis-server."""

from __future__ import annotations

import asyncio
import logging
import math
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable

import pytest
import redis.asyncio as aioredis
from _redis import RedisServer, redis_server_fixture, redis_url_fixture  # noqa: F401
from _redis_server import free_port
from _timing import loop_lag

from openai_runs import Budget, RunsClient
from openai_runs.exceptions import InvalidRequestError
from openai_runs.redis import RedisBudget
from openai_runs.testing import Emulator, RateLimit

FAST = {"timeout": 0.2, "reconnect_after": 0.05}
"""Short Redis timeouts, so outages are seen (and left) quickly."""


async def acquire_times(budget: RedisBudget, n: int) -> list[float]:
    """Acquire (and release) *n* requests one after another; when each was let go."""
    times = []
    for _ in range(n):
        await budget.acquire()
        times.append(time.monotonic())
        budget.release()
    return times


async def blocks(call: Awaitable[None], seconds: float = 0.15) -> bool:
    """Whether *call* is still waiting after *seconds*."""
    try:
        await asyncio.wait_for(call, seconds)
    except TimeoutError:
        return True
    return False


def most_in_window(times: list[float], window: float) -> int:
    """The most of *times* that fall within any *window* seconds."""
    times = sorted(times)
    start, most = 0, 0
    for end, t in enumerate(times):
        while t - times[start] > window:
            start += 1
        most = max(most, end - start + 1)
    return most


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The log records of openai_runs (not asyncio's debug-mode notes)."""
    return [r for r in caplog.records if r.name == "openai_runs"]


def test_fixture_serves_a_fresh_redis(redis_server: RedisServer) -> None:
    """The fixture's redis-server answers on its URL, empty, and stops on demand."""

    async def main() -> None:
        client = aioredis.Redis.from_url(redis_server.url, socket_timeout=2)
        try:
            assert await client.ping()
            assert await client.dbsize() == 0
        finally:
            await client.aclose()

    asyncio.run(main())
    redis_server.stop()
    assert not redis_server.running


def test_is_a_budget_and_never_shows_the_password() -> None:
    """A RedisBudget is a Budget; its repr names its limits but not the URL's password."""
    budget = RedisBudget("redis://:hunter2@127.0.0.1:1/0", max_in_flight=3)
    assert isinstance(budget, Budget)
    assert "hunter2" not in repr(budget)
    assert "max_in_flight=3" in repr(budget)
    asyncio.run(budget.aclose())


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"max_requests_per_second": 0}, "max_requests_per_second"),
        ({"max_requests_per_second": -5}, "max_requests_per_second"),
        ({"max_requests_per_second": math.nan}, "max_requests_per_second"),
        ({"max_requests_per_second": math.inf}, "max_requests_per_second"),
        ({"max_requests_per_second": True}, "max_requests_per_second"),
        ({"max_requests_per_second": "10"}, "max_requests_per_second"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"max_in_flight": -1}, "max_in_flight"),
        ({"max_in_flight": 2.5}, "max_in_flight"),
        ({"name": ""}, "name"),
        ({"name": 7}, "name"),
        ({"timeout": 0}, "timeout"),
        ({"lease": -1}, "lease"),
        ({"reconnect_after": math.nan}, "reconnect_after"),
        ({"fallback": "local"}, "fallback"),
    ],
)
def test_bad_arguments_are_refused_up_front(
    kwargs: dict[str, object], param: str
) -> None:
    """Negative, zero, NaN or mistyped limits are an InvalidRequestError naming the argument."""
    with pytest.raises(InvalidRequestError) as caught:
        RedisBudget("redis://127.0.0.1:1/0", **kwargs)  # type: ignore[arg-type]
    assert caught.value.param == param


@pytest.mark.parametrize("target", ["http://127.0.0.1:6379", "", 6379, object()])
def test_bad_url_or_client_is_refused(target: object) -> None:
    """Something neither a Redis URL nor an asyncio client is an InvalidRequestError."""
    with pytest.raises(InvalidRequestError) as caught:
        RedisBudget(target)  # type: ignore[arg-type]
    assert caught.value.param == "url_or_client"


def test_importing_openai_runs_does_not_import_redis() -> None:
    """`import openai_runs` leaves redis-py unloaded; only openai_runs.redis loads it."""
    code = (
        "import sys, openai_runs, openai_runs.testing\n"
        "assert 'redis' not in sys.modules, 'redis imported'\n"
        "import openai_runs.redis\n"
        "assert 'redis' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_two_budgets_of_one_name_share_the_rate(redis_url: str) -> None:
    """Two budgets named alike together start at most the rate; another name has its own."""

    async def main() -> None:
        async with (
            RedisBudget(redis_url, name="k", max_requests_per_second=8) as a,
            RedisBudget(redis_url, name="k", max_requests_per_second=8) as b,
            RedisBudget(redis_url, name="other", max_requests_per_second=8) as c,
        ):
            for budget in (a, b, c):  # connected, scripts loaded
                await acquire_times(budget, 1)
            ta, tb, tc = await asyncio.gather(
                acquire_times(a, 4), acquire_times(b, 4), acquire_times(c, 4)
            )
            # 8 sends of one name, 1/8 s apart: 7/8 s from first to last,
            # and no bunching (give or take a late wake-up on a busy machine).
            assert max(ta + tb) - min(ta + tb) >= 7 / 8 * 0.9
            assert most_in_window(ta + tb, 0.5) <= 4 + 2
            # The other name's 4 went at its own pace: 3/8 s.
            assert max(tc) - min(tc) < 7 / 8 * 0.8

    asyncio.run(main())


CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    import redis.asyncio as aioredis
    from openai_runs.redis import RedisBudget

    async def main(url, n):
        client = aioredis.Redis.from_url(url)
        await client.incr("ready")
        while int(await client.get("ready")) < 2:  # start together
            await asyncio.sleep(0.005)
        async with RedisBudget(url, name="shared", max_requests_per_second=40) as b:
            for _ in range(n):
                await b.acquire()
                print(time.time(), flush=True)
                b.release()
        await client.aclose()

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


def test_two_processes_share_the_rate(redis_url: str) -> None:
    """Two processes with one budget name never start more than the rate in any second."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, redis_url, "20"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [child.communicate(timeout=60)[0] for child in children]
    assert [child.returncode for child in children] == [0, 0]
    times = [float(line) for out in outputs for line in out.split()]
    assert len(times) == 40
    # 40 a second, evenly spaced: about 20 in any half second (a few more when
    # a busy machine wakes a process late); unshared, the two would send 40.
    assert most_in_window(times, 0.5) <= 20 + 4
    assert max(times) - min(times) >= 39 / 40 * 0.9


def test_a_429_pause_holds_every_budget_of_the_name(redis_url: str) -> None:
    """A 429 seen by one budget pauses another of its name until the server's time; not other names."""

    async def main() -> None:
        redis = aioredis.Redis.from_url(redis_url, socket_timeout=2)
        async with (
            loop_lag() as lag,
            RedisBudget(redis_url, name="k") as a,
            RedisBudget(redis_url, name="k") as b,
            RedisBudget(redis_url, name="other") as c,
        ):
            await a.acquire()
            released = time.monotonic()
            a.release(throttled=0.4)  # the first answer, a 429: the key is throttled
            # The pause reaches Redis (in the background), however slowly:
            # a fixed sleep here was too short on a loaded machine.
            try:
                async with asyncio.timeout(5):
                    while not await redis.exists("openai_runs:budget:{k}:pause"):  # noqa: ASYNC110
                        await asyncio.sleep(0.005)
            finally:
                await redis.aclose()
            started = time.monotonic()
            await c.acquire()
            c.release()
            assert time.monotonic() - started < 0.2 + lag.worst
            await b.acquire()
            b.release()
            # 0.4 s from the 429, measured from before it was reported.
            assert time.monotonic() - released >= 0.35

    asyncio.run(main())


def test_sparse_429s_do_not_pause_everyone(redis_url: str) -> None:
    """One 429 among many good answers delays nobody else (the LocalBudget rule)."""

    async def main() -> None:
        async with (
            RedisBudget(redis_url, name="k") as a,
            RedisBudget(redis_url, name="k") as b,
        ):
            for _ in range(30):
                await a.acquire()
                a.release()
            await a.acquire()
            a.release(throttled=5.0)
            await asyncio.sleep(0.05)
            started = time.monotonic()
            await b.acquire()
            b.release()
            assert time.monotonic() - started < 1.0

    asyncio.run(main())


def test_clients_sharing_a_budget_get_no_429s(redis_url: str) -> None:
    """Two clients whose budgets share a rate under the key's limit are never answered 429."""

    async def main() -> None:
        # The key may send 100 a second (a bucket of 30: a stalled event loop's
        # late sends fit in it); the two budgets allow 80 a second together,
        # where each alone would allow 80.
        limit = RateLimit(requests=30, per=0.3)
        async with (
            Emulator(rate_limit=limit) as emulator,
            RedisBudget(redis_url, name="k", max_requests_per_second=80) as a,
            RedisBudget(redis_url, name="k", max_requests_per_second=80) as b,
        ):
            clients = [
                RunsClient(
                    api_key="sk-emulator",
                    base_url=emulator.url,
                    budget=budget,
                    max_retries=0,
                )
                for budget in (a, b)
            ]
            try:
                started = time.monotonic()
                calls = [c.threads.create() for c in clients for _ in range(40)]
                results = await asyncio.gather(*calls, return_exceptions=True)
                elapsed = time.monotonic() - started
            finally:
                for c in clients:
                    await c.aclose()
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert elapsed >= 79 / 80 * 0.9  # 80 sends at 80 a second, shared

    asyncio.run(main())


def test_in_flight_is_bounded_across_budgets(redis_url: str) -> None:
    """max_in_flight counts the requests of every budget of the name; a release frees a slot for another."""

    async def main() -> None:
        async with (
            RedisBudget(redis_url, name="k", max_in_flight=2) as a,
            RedisBudget(redis_url, name="k", max_in_flight=2) as b,
            RedisBudget(redis_url, name="other", max_in_flight=2) as c,
        ):
            await a.acquire()
            await a.acquire()
            assert a.in_flight == 2
            waiting = asyncio.ensure_future(b.acquire())
            assert await blocks(asyncio.shield(waiting))
            await c.acquire()  # another name has its own slots
            c.release()
            a.release()
            await asyncio.wait_for(waiting, 1.0)
            assert b.in_flight == 1
            b.release()
            a.release()

    asyncio.run(main())


def test_a_cancelled_wait_takes_no_slot(redis_url: str) -> None:
    """An acquire cancelled while every slot is taken leaves the slots as they were."""

    async def main() -> None:
        async with (
            RedisBudget(redis_url, name="k", max_in_flight=1) as a,
            RedisBudget(redis_url, name="k", max_in_flight=1) as b,
        ):
            await a.acquire()
            assert await blocks(b.acquire())  # cancelled by the timeout
            assert b.in_flight == 0
            a.release()
            await asyncio.wait_for(b.acquire(), 1.0)
            b.release()

    asyncio.run(main())


HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from openai_runs.redis import RedisBudget

    async def main(url):
        budget = RedisBudget(url, name="k", max_in_flight=2, lease=0.4)
        await budget.acquire()
        await budget.acquire()
        print("held", flush=True)
        await asyncio.sleep(60)

    asyncio.run(main(sys.argv[1]))
    """
)


def test_a_dead_process_slots_expire_with_its_leases(redis_url: str) -> None:
    """Slots held by a process killed mid-request are free again once their lease runs out."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, redis_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"

        async def main() -> None:
            async with RedisBudget(redis_url, name="k", max_in_flight=2) as b:
                # The holder is alive and renews its leases past their 0.4 s.
                assert await blocks(b.acquire(), 0.6)
                holder.kill()
                holder.wait(10)
                started = time.monotonic()
                await asyncio.wait_for(b.acquire(), 2.0)
                assert time.monotonic() - started < 1.0
                b.release()

        asyncio.run(main())
    finally:
        holder.kill()
        holder.communicate(timeout=10)


def test_redis_down_from_the_start_falls_back_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With no Redis listening, acquire falls back to the local budget at once, warns once."""
    caplog.set_level(logging.INFO, logger="openai_runs")
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"

    async def main() -> None:
        async with RedisBudget(url, max_requests_per_second=100, **FAST) as budget:
            started = time.monotonic()
            times = await acquire_times(budget, 10)
            assert budget.degraded
            # The fallback keeps the rate for this process: 100 a second.
            assert times[-1] - times[0] >= 9 / 100 * 0.9
            assert time.monotonic() - started < 1.5

    asyncio.run(main())
    warnings = [r for r in ours(caplog) if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "local budget" in warnings[0].getMessage()
    assert "hunter2" not in caplog.text


def test_a_frozen_redis_is_waited_on_for_the_timeout_only(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis that stops answering costs one timeout, then the fallback serves at once."""
    caplog.set_level(logging.INFO, logger="openai_runs")

    async def main() -> None:
        async with (
            RedisBudget(
                redis_server.url, max_in_flight=4, timeout=0.2, reconnect_after=5
            ) as budget,
            loop_lag() as lag,
        ):
            await budget.acquire()
            budget.release()
            redis_server.freeze()
            try:
                started = time.monotonic()
                await asyncio.wait_for(budget.acquire(), 2.0)
                assert budget.degraded
                assert 0.15 <= time.monotonic() - started < 1.0 + lag.worst
                budget.release()
                started = time.monotonic()
                await budget.acquire()  # no new wait on Redis until reconnect_after
                assert time.monotonic() - started < 0.05 + lag.worst
                budget.release()
            finally:
                redis_server.thaw()

    asyncio.run(main())
    assert sum(r.levelno == logging.WARNING for r in ours(caplog)) == 1


def test_redis_going_down_and_coming_back(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis stopping mid-way: requests go on locally, one warning; once back, the budget is shared again."""
    caplog.set_level(logging.INFO, logger="openai_runs")

    async def main() -> None:
        async with (
            RedisBudget(redis_server.url, name="k", max_in_flight=1, **FAST) as a,
            RedisBudget(redis_server.url, name="k", max_in_flight=1, **FAST) as b,
        ):
            await a.acquire()
            assert await blocks(b.acquire())  # shared: a holds the one slot
            a.release()
            redis_server.stop()
            # Each falls back to its own local budget of one slot.
            await asyncio.wait_for(a.acquire(), 1.0)
            await asyncio.wait_for(b.acquire(), 1.0)
            assert a.degraded
            assert b.degraded
            a.release()
            b.release()
            redis_server.start()
            await asyncio.sleep(FAST["reconnect_after"] * 2)
            await a.acquire()
            assert not a.degraded
            assert await blocks(b.acquire())  # shared again
            a.release()

    asyncio.run(main())
    warnings = [r for r in ours(caplog) if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one per budget
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_a_client_passed_in_stays_open(redis_url: str) -> None:
    """A budget made from the caller's redis client uses it and leaves it open."""

    async def main() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            async with RedisBudget(client, name="k", max_in_flight=1) as budget:
                await budget.acquire()
                budget.release()
            assert await client.ping()
        finally:
            await client.aclose()

    asyncio.run(main())


def test_keys_stay_in_the_names_hash_tag(redis_url: str) -> None:
    """The budget's keys carry its name as a Redis Cluster hash tag and expire on their own."""

    async def main() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            async with RedisBudget(
                client, name="team-a", max_requests_per_second=10, max_in_flight=2
            ) as budget:
                await budget.acquire()
                keys = sorted(k.decode() for k in await client.keys("*"))
                assert keys == [
                    "openai_runs:budget:{team-a}:in_flight",
                    "openai_runs:budget:{team-a}:rate",
                ]
                for key in keys:
                    assert await client.pttl(key) > 0
                budget.release()
        finally:
            await client.aclose()

    asyncio.run(main())
