"""Run stores: watch_many records runs, resume_many goes on, each run reported once."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from _redis import redis_server_fixture, redis_url_fixture  # noqa: F401
from _redis_server import free_port

from openai_runs import RunsClient, WatchPolicy, WatchResult
from openai_runs import _journal as journal_module
from openai_runs.exceptions import InvalidRequestError, StoreError
from openai_runs.store import (
    Claim,
    RunKey,
    RunStore,
    RunUpdate,
    SQLiteRunStore,
    StoredRun,
)
from openai_runs.testing import Emulator, ManualClock, RunScript

POLICY = WatchPolicy(initial=0.01, multiplier=1.5, maximum=0.03, jitter=0.0)
LEASE = 5.0  # seconds: renewed in time even on a loaded machine under coverage
SHORT_LEASE = 0.3  # seconds: a dead worker's claims lapse quickly

StoreFactory = Callable[..., RunStore]


@pytest.fixture(name="make_store", params=["sqlite", "redis"])
def _make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[StoreFactory]:
    """Open stores of one kind, all over the same data (as workers would share it).

    The Redis stores talk to a real redis-server of the test's own.
    """
    opened: list[Any] = []
    if request.param == "redis":
        from openai_runs.redis import RedisRunStore  # noqa: PLC0415 - the extra

        url = request.getfixturevalue("redis_url")

        def make(lease: float = LEASE) -> RunStore:
            return RedisRunStore(url, name="test", lease=lease)

        yield make
        return

    def make(lease: float = LEASE) -> RunStore:
        store = SQLiteRunStore(tmp_path / "runs.db", lease=lease)
        opened.append(store)
        return store

    yield make
    for store in opened:  # closed by each test; a failed test may leave one open
        if not store._closed:
            asyncio.run(store.aclose())


@contextlib.asynccontextmanager
async def emulated(
    clock: ManualClock | None = None,
) -> AsyncIterator[tuple[Emulator, RunsClient]]:
    emu = Emulator(clock=clock)
    async with emu, RunsClient(base_url=emu.url, api_key=emu.api_key) as client:
        yield emu, client


def runs_of(emu: Emulator, *scripts: RunScript) -> list[tuple[str, str, int]]:
    """Create a run per script; return `(thread_id, run_id, index)` refs."""
    made = [emu.create_run(script=script) for script in scripts]
    return [(run["thread_id"], run["id"], i) for i, run in enumerate(made)]


async def collect(results: AsyncIterator[WatchResult]) -> list[WatchResult]:
    return [result async for result in results]


async def until(
    check: Callable[[], Awaitable[bool]], *, within: float = 5.0, every: float = 0.01
) -> None:
    """Wait until *check* is true, failing after *within* seconds."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - checks the store, no event
            await asyncio.sleep(every)


def close_all(*stores: RunStore) -> Awaitable[Any]:
    return asyncio.gather(*(store.aclose() for store in stores))


def test_watch_many_records_each_run_and_how_it_ended(
    make_store: StoreFactory,
) -> None:
    """Each run is recorded: its key, its final run or its error, ended."""

    async def main() -> list[StoredRun]:
        async with emulated() as (emu, client):
            refs = runs_of(
                emu, RunScript.completed(after=0.0), RunScript.failed(after=0.0)
            )
            refs.append((refs[0][0], "run_missing", {"order": [1, 2]}))
            store = make_store()
            results = await collect(
                client.runs.watch_many(refs, store=store, policy=POLICY)
            )
            assert len(results) == 3
            stored = await store.runs()
            assert await store.counts() == {"completed": 1, "failed": 1, "error": 1}
            await close_all(store)
            return stored

    completed, failed, missing = asyncio.run(main())
    assert completed.ended
    assert completed.status == "completed"
    assert completed.run is not None
    assert completed.run.status == "completed"
    assert completed.key == 0
    assert completed.error is None
    assert failed.status == "failed"
    assert failed.outcome == "failed"
    assert missing.ended
    assert missing.run is None
    assert missing.key == {"order": [1, 2]}
    assert missing.error is not None
    assert missing.error.startswith("NotFoundError: ")
    assert missing.outcome == "error"


def test_changes_of_status_are_recorded_as_they_go(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run still working is recorded with its status, not ended, held by its worker."""
    monkeypatch.setattr(journal_module, "PROGRESS_DELAY", 0.01)

    async def main() -> None:
        async with emulated() as (emu, client):
            (ref,) = runs_of(emu, RunScript.endless())
            store = make_store()
            watches = client.runs.watch_many([ref], store=store, policy=POLICY)
            consumer = asyncio.ensure_future(collect(watches))

            async def in_progress() -> bool:
                runs = await store.runs()
                return bool(runs) and runs[0].status == "in_progress"

            await until(in_progress)
            (run,) = await store.runs()
            assert not run.ended
            assert run.owner is not None
            assert run.lease_until > time.time()
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
            # A clean stop gives the run back at once.
            (run,) = await store.runs()
            assert run.owner is None
            assert not run.ended
            await close_all(store)

    asyncio.run(main())


def test_a_crash_mid_way_then_resume_many_finishes_every_run_once(
    make_store: StoreFactory,
) -> None:
    """The consumer is cancelled mid-way; resume_many reports exactly the rest."""

    async def main() -> None:
        clock = ManualClock()
        async with emulated(clock) as (emu, client):
            quick = [RunScript.completed(after=0.0)] * 6
            slow = [RunScript.completed(after=100.0)] * 6
            refs = runs_of(emu, *quick, *slow)
            store = make_store()
            first: list[WatchResult] = []

            async def consume() -> None:
                async for result in client.runs.watch_many(
                    refs, store=store, policy=POLICY
                ):
                    first.append(result)

            consumer = asyncio.ensure_future(consume())
            await until(lambda: _true(len(first) >= 3))
            consumer.cancel()  # mid-way: some quick ones may be in flight
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
            clock.advance(200.0)
            rest = await collect(client.runs.resume_many(store, policy=POLICY))
            ids = [r.run_id for r in first + rest]
            assert sorted(ids) == sorted(r[1] for r in refs)  # each exactly once
            assert all(r.ok and r.run is not None for r in rest)
            assert {r.key for r in rest} <= set(range(12))
            assert await store.counts() == {"completed": 12}
            # Nothing is left: another resume has nothing to report.
            assert await collect(client.runs.resume_many(store, policy=POLICY)) == []
            await close_all(store)

    asyncio.run(main())


async def _true(value: bool) -> bool:
    return value


def test_runs_the_store_has_seen_end_are_not_watched_again(
    make_store: StoreFactory,
) -> None:
    """watch_many with the same runs and store again sends nothing, yields nothing."""

    async def main() -> None:
        async with emulated() as (emu, client):
            refs = runs_of(emu, *[RunScript.completed(after=0.0)] * 3)
            store = make_store()
            assert len(await collect(client.runs.watch_many(refs, store=store))) == 3
            sent = emu.counts.total
            again = await collect(client.runs.watch_many(refs * 2, store=store))
            assert again == []
            assert emu.counts.total == sent
            await close_all(store)

    asyncio.run(main())


def test_a_run_given_twice_is_watched_and_reported_once(
    make_store: StoreFactory,
) -> None:
    """With a store, a duplicate in the runs is one watch and one result."""

    async def main() -> list[WatchResult]:
        async with emulated() as (emu, client):
            refs = runs_of(emu, RunScript.completed(after=0.0))
            store = make_store()
            results = await collect(
                client.runs.watch_many(refs * 3, store=store, policy=POLICY)
            )
            await close_all(store)
            return results

    assert len(asyncio.run(main())) == 1


def test_two_resumers_over_one_store_report_each_run_once(
    make_store: StoreFactory,
) -> None:
    """Two clients resuming the same store concurrently split the runs, no overlap."""

    async def main() -> None:
        async with emulated() as (emu, client):
            refs = runs_of(emu, *[RunScript.completed(after=0.05)] * 40)
            seed = make_store()
            assert await seed.add("a worker that stopped", refs) == [True] * 40
            await seed.release("a worker that stopped")
            async with RunsClient(base_url=emu.url, api_key=emu.api_key) as other:
                a, b = make_store(), make_store()
                got_a, got_b = await asyncio.gather(
                    collect(client.runs.resume_many(a, policy=POLICY)),
                    collect(other.runs.resume_many(b, policy=POLICY)),
                )
            ids = [r.run_id for r in got_a + got_b]
            assert sorted(ids) == sorted(r[1] for r in refs)
            assert all(r.ok for r in got_a + got_b)
            await close_all(seed, a, b)

    asyncio.run(main())


def test_a_dead_workers_runs_are_taken_over_when_its_lease_lapses(
    make_store: StoreFactory,
) -> None:
    """Runs held by a worker that stopped renewing are resumed after its lease."""

    async def main() -> float:
        async with emulated() as (emu, client):
            refs = runs_of(emu, *[RunScript.completed(after=0.0)] * 5)
            store = make_store(lease=SHORT_LEASE)
            # A worker claims the runs, then dies without a word.
            assert await store.add("dead worker", refs) == [True] * 5
            started = time.monotonic()
            results = await collect(client.runs.resume_many(store, policy=POLICY))
            waited = time.monotonic() - started
            assert sorted(r.run_id for r in results) == sorted(r[1] for r in refs)
            owners = {run.owner for run in await store.runs()}
            assert "dead worker" not in owners
            await close_all(store)
            return waited

    assert asyncio.run(main()) >= SHORT_LEASE * 0.5


def test_a_worker_that_lost_its_claim_cannot_record_the_end(
    make_store: StoreFactory,
) -> None:
    """After a takeover, the old holder's writes are refused; the new one's land."""

    async def main() -> None:
        # A lease a loaded machine cannot outlast between two calls (0.05 s
        # could lapse before the second add); then wait it out.
        store = make_store(lease=0.5)
        ref: RunKey = ("thread_1", "run_1", None)
        assert await store.add("slow", [ref]) == [True]
        assert await store.add("eager", [ref]) == [False]  # held, lease live
        await asyncio.sleep(0.55)
        claim = await store.claim("eager", 10)
        assert claim.runs == [ref]
        end = RunUpdate(thread_id="thread_1", run_id="run_1", ended=True)
        assert await store.record("slow", [end]) == [False]
        assert await store.record("eager", [end]) == [True]
        assert await store.record("eager", [end]) == [False]  # ended once
        assert await store.add("third", [ref]) == [False]
        assert await store.claim("third", 10) == Claim(runs=[], waiting=0)
        await close_all(store)

    asyncio.run(main())


def test_a_claim_reports_runs_other_workers_hold(make_store: StoreFactory) -> None:
    """claim leaves runs held by a live lease, and says when the first lapses."""

    async def main() -> None:
        store = make_store(lease=10.0)
        await store.add("holder", [("t", "r1", None), ("t", "r2", None)])
        claim = await store.claim("other", 10)
        assert claim.runs == []
        assert claim.waiting == 2
        assert claim.retry_in is not None
        assert 9 < claim.retry_in <= 10
        await close_all(store)

    asyncio.run(main())


def test_store_writes_never_hold_up_the_watches(make_store: StoreFactory) -> None:
    """While the store is stuck in a write, every run is still polled to its end."""

    class Stuck:
        """A store whose writes wait for a gate."""

        def __init__(self, inner: RunStore) -> None:
            self.inner = inner
            self.gate = asyncio.Event()
            self.lease = inner.lease

        async def add(self, owner: str, runs: Sequence[RunKey]) -> list[bool]:
            return await self.inner.add(owner, runs)

        async def record(self, owner: str, updates: Sequence[RunUpdate]) -> list[bool]:
            await self.gate.wait()
            return await self.inner.record(owner, updates)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    async def main() -> None:
        async with emulated() as (emu, client):
            scripts = [RunScript.completed(after=0.02 * i) for i in range(10)]
            refs = runs_of(emu, *scripts)
            inner = make_store(lease=30.0)
            store = Stuck(inner)
            seen: set[str] = set()
            consumer = asyncio.ensure_future(
                collect(
                    client.runs.watch_many(
                        refs,
                        store=store,
                        policy=POLICY,
                        on_status=lambda run: _seen(seen, run),
                    )
                )
            )

            async def all_seen_ending() -> bool:
                return len(seen) == len(refs)

            await until(all_seen_ending)
            assert not consumer.done()  # the results wait for the store
            store.gate.set()
            results = await asyncio.wait_for(consumer, 5)
            assert len(results) == 10
            await close_all(inner)

    asyncio.run(main())


def _seen(seen: set[str], run: Any) -> None:
    if run.status == "completed":
        seen.add(run.id)


def test_a_key_must_be_json_with_a_store(make_store: StoreFactory) -> None:
    """A key that cannot be stored is refused when read, like any bad item."""

    async def main() -> None:
        async with emulated() as (emu, client):
            ((tid, rid, _),) = runs_of(emu, RunScript.completed(after=0.0))
            store = make_store()
            with pytest.raises(InvalidRequestError, match="JSON value"):
                await collect(
                    client.runs.watch_many([(tid, rid, object())], store=store)
                )
            await close_all(store)

    asyncio.run(main())


@pytest.mark.parametrize(
    ("make_path", "message"),
    [
        (lambda tmp: tmp / "no" / "such" / "runs.db", "no directory"),
        (lambda tmp: tmp, "is a directory"),
        (
            lambda tmp: _write(tmp / "notes.txt", b"not a database at all" * 100),
            "not a database",
        ),
    ],
    ids=["missing directory", "a directory", "not a database"],
)
def test_a_bad_path_is_a_store_error(
    tmp_path: Path, make_path: Callable[[Path], Path], message: str
) -> None:
    """A path that cannot hold a store fails on opening, saying why."""

    async def main() -> None:
        store = SQLiteRunStore(make_path(tmp_path))
        with pytest.raises(StoreError, match=message):
            async with store:
                pass
        await store.aclose()

    asyncio.run(main())


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    """A file whose schema is newer than this version is not written to."""
    with contextlib.closing(sqlite3.connect(tmp_path / "runs.db")) as db:
        db.execute("PRAGMA user_version = 99")

    async def main() -> None:
        with pytest.raises(StoreError, match="newer"):
            async with SQLiteRunStore(tmp_path / "runs.db"):
                pass

    asyncio.run(main())


def test_a_closed_store_refuses_calls(tmp_path: Path) -> None:
    """A call after aclose is a StoreError, not a hang or a reopen."""

    async def main() -> None:
        async with SQLiteRunStore(tmp_path / "runs.db") as store:
            await store.runs()
        await store.aclose()  # idempotent
        with pytest.raises(StoreError, match="closed"):
            await store.runs()

    asyncio.run(main())


@pytest.mark.parametrize("lease", [0, -1, float("nan"), float("inf")])
def test_a_bad_lease_is_refused(tmp_path: Path, lease: float) -> None:
    """A lease must be a positive, finite number of seconds."""
    with pytest.raises(InvalidRequestError, match="lease"):
        SQLiteRunStore(tmp_path / "runs.db", lease=lease)


def test_sqlite_store_satisfies_the_protocol(tmp_path: Path) -> None:
    """SQLiteRunStore is a RunStore."""
    assert isinstance(SQLiteRunStore(tmp_path / "runs.db"), RunStore)


def test_redis_store_leaves_a_client_it_was_given_open(redis_url: str) -> None:
    """A RedisRunStore is a RunStore; closing it leaves the caller's client open."""
    import redis.asyncio as aioredis  # noqa: PLC0415 - the extra

    from openai_runs.redis import RedisRunStore  # noqa: PLC0415 - the extra

    async def main() -> None:
        client = aioredis.Redis.from_url(redis_url)
        async with RedisRunStore(client, name="given") as store:
            assert isinstance(store, RunStore)
            assert await store.add("me", [("t", "r", [1])]) == [True]
        assert await client.ping()
        await client.aclose()

    asyncio.run(main())


def test_an_unreachable_redis_is_a_store_error() -> None:
    """A Redis nobody answers at fails on opening with a StoreError."""
    pytest.importorskip("redis")
    from openai_runs.redis import RedisRunStore  # noqa: PLC0415 - the extra

    async def main() -> None:
        store = RedisRunStore(f"redis://127.0.0.1:{free_port()}/0")
        with pytest.raises(StoreError, match="run store 'default'"):
            async with store:
                pass

    asyncio.run(main())


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("redis://127.0.0.1:1/0",), {"name": ""}, "name"),
        (("redis://127.0.0.1:1/0",), {"lease": 0}, "lease"),
        (("http://example.com",), {}, "url_or_client"),
    ],
)
def test_bad_redis_store_arguments_are_refused(
    args: tuple[Any, ...], kwargs: dict[str, Any], match: str
) -> None:
    """An empty name, a bad lease or a URL that is not Redis's is refused at once."""
    pytest.importorskip("redis")
    from openai_runs.redis import RedisRunStore  # noqa: PLC0415 - the extra

    with pytest.raises(InvalidRequestError, match=match):
        RedisRunStore(*args, **kwargs)


def test_importing_the_package_and_its_stores_never_imports_redis() -> None:
    """`import openai_runs`, `openai_runs.store` and the CLI leave redis-py unloaded."""
    code = (
        "import sys, openai_runs, openai_runs.store, openai_runs._cli; "
        "print(sorted(m for m in sys.modules if m == 'redis' or m.startswith('redis.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "[]"
