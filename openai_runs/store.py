"""Run stores: where `watch_many` records each run, so another process can go on.

`client.runs.watch_many(refs, store=store)` records every run it reads, its
status as it changes, and how its watch ended (the final run, or the error);
`client.runs.resume_many(store)` goes on with the runs that had not ended.
Runs are *claimed* by one worker at a time, with a lease the worker renews
while it watches them: two processes resuming the same store never watch (or
report) the same run, a worker that dies leaves its runs to be taken over
when its lease lapses, and a run whose end is recorded is never reported
again.

[SQLiteRunStore][openai_runs.store.SQLiteRunStore] keeps the runs in a local
SQLite file (stdlib `sqlite3`, in a thread of its own);
[RedisRunStore][openai_runs.redis.RedisRunStore] shares them between
machines. Anything with the [RunStore][openai_runs.store.RunStore] methods
plugs in the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import socket
import sqlite3
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

import attrs

from ._converter import converter
from ._validation import check_duration
from .exceptions import StoreError
from .models import Run

__all__ = [
    "Claim",
    "RunStore",
    "RunUpdate",
    "SQLiteRunStore",
    "StoredRun",
    "new_owner",
]

T = TypeVar("T")

_TIMED_OUT = "WatchTimeoutError:"

RunKey = tuple[str, str, Any]
"""`(thread_id, run_id, key)`: a run as `watch_many` adds it to a store."""


def new_owner() -> str:
    """A worker id no other worker has: host, process and a random part.

    Returns:
        For example `"build-7:4121:9f2c4e1a"`.
    """
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@attrs.frozen(kw_only=True)
class StoredRun:
    """One run as a store holds it.

    Attributes:
        thread_id: The thread that was run.
        run_id: The run.
        key: The caller's tag given to `watch_many` (a JSON value), or *None*.
        status: The last status recorded (the final one once ended).
        ended: Whether its watch has ended and been reported.
        run: The final run (the last one seen when the watch failed), once
            ended; *None* before, or when no poll succeeded.
        error: What ended a failed watch, as `"TypeName: message"`, or *None*.
        owner: The worker that holds (or ended) it, or *None*.
        lease_until: When the holder's claim lapses, in Unix seconds (0 when
            nobody holds it).
        updated_at: When it was last written, in Unix seconds.
    """

    thread_id: str
    run_id: str
    key: Any = None
    status: str | None = None
    ended: bool = False
    run: Run | None = None
    error: str | None = None
    owner: str | None = None
    lease_until: float = 0.0
    updated_at: float = 0.0

    @property
    def outcome(self) -> str:
        """How it stands: `"open"`, `"timed out"`, `"error"`, or the final status."""
        if not self.ended:
            return "open"
        if self.error is not None:
            return "timed out" if self.error.startswith(_TIMED_OUT) else "error"
        return self.status or "error"


@attrs.frozen(kw_only=True)
class RunUpdate:
    """What a worker records about a run it holds: a new status, or its end.

    Attributes:
        thread_id: The thread that was run.
        run_id: The run.
        status: The status seen (the final run's, at the end), or *None*.
        ended: Whether this records the end of the watch.
        run: The final run (the last one seen, when the watch failed), at
            the end.
        error: What ended a failed watch, as `"TypeName: message"`.
    """

    thread_id: str
    run_id: str
    status: str | None = None
    ended: bool = False
    run: Run | None = None
    error: str | None = None


@attrs.frozen(kw_only=True)
class Claim:
    """What [RunStore.claim][openai_runs.store.RunStore.claim] took, and what it left.

    Attributes:
        runs: The runs now held by the claiming worker, as
            `(thread_id, run_id, key)`.
        waiting: Runs not ended that other workers hold, with leases not yet
            lapsed.
        retry_in: Seconds until the first of those leases lapses (*None*
            when *waiting* is 0).
    """

    runs: list[RunKey]
    waiting: int = 0
    retry_in: float | None = None


@runtime_checkable
class RunStore(Protocol):
    """Where `watch_many` records runs; what `resume_many` goes on from.

    Every method is atomic against every other worker on the same store:
    claims (`add`, `claim`) never give one run to two workers whose leases
    have not lapsed, and `record` writes only for the worker that holds the
    run, so a run whose end is recorded is never reported again.
    `watch_many` batches its writes: one `record` carries every change
    since the last.

    Attributes:
        lease: Seconds a claim lasts unless renewed; a worker renews its
            claims (with `renew`) every third of it.
    """

    @property
    def lease(self) -> float:
        """Seconds a claim lasts unless renewed."""
        ...

    async def add(self, owner: str, runs: Sequence[RunKey]) -> list[bool]:
        """Add *runs* and claim them for *owner*.

        A run the store already has is claimed only if it has not ended and
        nobody else holds it with a live lease.

        Returns:
            For each run, whether *owner* now holds it (and should watch it).
        """
        ...

    async def claim(self, owner: str, limit: int) -> Claim:
        """Claim up to *limit* runs not ended and not held, oldest first.

        Runs held by a worker whose lease has lapsed are taken over.
        """
        ...

    async def renew(self, owner: str) -> None:
        """Extend every claim *owner* holds by a lease from now."""
        ...

    async def record(self, owner: str, updates: Sequence[RunUpdate]) -> list[bool]:
        """Write *updates* to runs *owner* holds.

        Returns:
            For each update, whether it was written: *False* when *owner*
            no longer holds the run (its lease lapsed and another worker
            took it over) or its end was already recorded.
        """
        ...

    async def release(self, owner: str, reopen: Sequence[tuple[str, str]] = ()) -> None:
        """Give up every run *owner* holds that has not ended.

        Args:
            owner: The worker stopping.
            reopen: Runs *owner* recorded as ended but never handed to its
                caller (it stopped first): they are open again, to be
                reported by whoever goes on.
        """
        ...

    async def runs(self) -> list[StoredRun]:
        """Every run in the store, in the order they were added."""
        ...

    async def counts(self) -> dict[str, int]:
        """How many runs stand how: `StoredRun.outcome` to a count."""
        ...


def describe_error(error: Exception) -> str:
    """An error as a store keeps it: `"TypeName: message"`."""
    return f"{type(error).__name__}: {error}"


def _json_key(key: Any) -> str | None:
    return None if key is None else json.dumps(key)


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _stored_run(row: sqlite3.Row) -> StoredRun:
    run = row["run"]
    return StoredRun(
        thread_id=row["thread_id"],
        run_id=row["run_id"],
        key=None if row["key"] is None else json.loads(row["key"]),
        status=row["status"],
        ended=bool(row["ended"]),
        run=None if run is None else converter.structure(json.loads(run), Run),
        error=row["error"],
        owner=row["owner"],
        lease_until=row["lease_until"],
        updated_at=row["updated_at"],
    )


_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    thread_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    key TEXT,
    status TEXT,
    ended INTEGER NOT NULL DEFAULT 0,
    run TEXT,
    error TEXT,
    owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL,
    PRIMARY KEY (thread_id, run_id)
);
CREATE INDEX IF NOT EXISTS runs_open ON runs (ended, lease_until);
CREATE INDEX IF NOT EXISTS runs_owner ON runs (owner) WHERE ended = 0;
"""


class SQLiteRunStore:
    """A run store in a local SQLite file: the embedded default.

    Several processes on one machine can share the file: claims are
    transactions (`BEGIN IMMEDIATE`), so two workers never claim the same
    run, and the database runs in WAL mode, so readers never wait on the
    writer. Every call runs in one thread of the store's own, off the event
    loop. Use it as an async context manager (or call
    [aclose][openai_runs.store.SQLiteRunStore.aclose]).

    ```python
    from openai_runs.store import SQLiteRunStore

    async with SQLiteRunStore("runs.db") as store:
        async for result in client.runs.watch_many(pairs, store=store):
            print(result.run_id, result.ok)
    ```

    A file on a network share is not safe: SQLite's locks need a local disk.
    For workers on several machines use
    [RedisRunStore][openai_runs.redis.RedisRunStore].

    Args:
        path: The database file, created if missing (its directory must
            exist).
        lease: Seconds a worker's claim lasts unless renewed (30); a worker
            that dies leaves its runs to others after this long.
        busy_timeout: Seconds to wait for another process's transaction
            (30) before a [StoreError][openai_runs.exceptions.StoreError].

    Raises:
        InvalidRequestError: *lease* or *busy_timeout* is not a positive
            number of seconds.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lease: float = 30.0,
        busy_timeout: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self._lease = check_duration("lease", lease, positive=True)
        self._busy_timeout = check_duration("busy_timeout", busy_timeout)
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._closed = False
        # A store dropped without aclose() still closes its file and thread.
        self._opened: list[sqlite3.Connection | ThreadPoolExecutor] = []
        weakref.finalize(self, _close_quietly, self._opened)

    def __repr__(self) -> str:
        return f"<SQLiteRunStore {str(self.path)!r} lease={self._lease:g}s>"

    @property
    def lease(self) -> float:
        """Seconds a claim lasts unless renewed."""
        return self._lease

    async def __aenter__(self) -> Self:
        await self._call(lambda db: None)  # open now: a bad path fails here
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the database and stop the store's thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._close_db)
        finally:
            executor.shutdown(wait=False)

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreError(f"the run store {self.path} is closed")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                1, thread_name_prefix="openai-runs-sqlite"
            )
            self._opened.append(self._executor)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, functools.partial(self._in_thread, fn)
            )
        except sqlite3.Error as exc:
            raise StoreError(f"run store {self.path}: {exc}") from exc

    def _in_thread(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db
        if db is None:
            db = self._db = self._open()
            self._opened.append(db)
        return fn(db)

    def _open(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise StoreError(f"run store {self.path}: is a directory")
        if not self.path.parent.is_dir():
            raise StoreError(f"run store {self.path}: no directory {self.path.parent}")
        db = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout,
            isolation_level=None,  # transactions are begun by hand
            check_same_thread=False,  # opened and used in the store's one thread
        )
        try:
            db.row_factory = sqlite3.Row
            version = self._schema_version(db)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            if version < _SCHEMA_VERSION:
                # Idempotent, so two processes creating the file at once agree.
                db.executescript(
                    f"BEGIN IMMEDIATE; {_SCHEMA} "
                    f"PRAGMA user_version = {_SCHEMA_VERSION}; COMMIT;"
                )
        except BaseException:
            db.close()
            raise
        return db

    def _schema_version(self, db: sqlite3.Connection) -> int:
        version: int = db.execute("PRAGMA user_version").fetchone()[0]
        if version > _SCHEMA_VERSION:
            raise StoreError(
                f"run store {self.path}: written by a newer openai-runs "
                f"(schema {version}); upgrade to read it"
            )
        return version

    async def add(self, owner: str, runs: Sequence[RunKey]) -> list[bool]:
        """Add *runs* and claim them for *owner*; see `RunStore.add`."""
        rows = [(tid, rid, _json_key(key)) for tid, rid, key in runs]
        lease = self._lease

        def add(db: sqlite3.Connection) -> list[bool]:
            now = time.time()
            claimed = []
            with _transaction(db):
                for tid, rid, key in rows:
                    cursor = db.execute(
                        "INSERT INTO runs (thread_id, run_id, key, owner, "
                        "lease_until, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (thread_id, run_id) DO UPDATE SET "
                        "owner = excluded.owner, lease_until = excluded.lease_until, "
                        "updated_at = excluded.updated_at WHERE ended = 0 AND "
                        # Free, or held by another worker whose lease lapsed
                        # (never one's own claim: it is being watched).
                        "(owner IS NULL OR (lease_until <= ? AND owner != ?))",
                        (tid, rid, key, owner, now + lease, now, now, owner),
                    )
                    claimed.append(cursor.rowcount == 1)
            return claimed

        return await self._call(add)

    async def claim(self, owner: str, limit: int) -> Claim:
        """Claim up to *limit* free runs; see `RunStore.claim`."""
        lease = self._lease

        def claim(db: sqlite3.Connection) -> Claim:
            now = time.time()
            with _transaction(db):
                rows = db.execute(
                    "SELECT rowid, thread_id, run_id, key FROM runs WHERE ended = 0 "
                    "AND (owner IS NULL OR (lease_until <= ? AND owner != ?)) "
                    "ORDER BY rowid LIMIT ?",
                    (now, owner, limit),
                ).fetchall()
                db.executemany(
                    "UPDATE runs SET owner = ?, lease_until = ?, updated_at = ? "
                    "WHERE rowid = ?",
                    [(owner, now + lease, now, row["rowid"]) for row in rows],
                )
                waiting, first = db.execute(
                    "SELECT count(*), min(lease_until) FROM runs WHERE ended = 0 "
                    "AND owner IS NOT NULL AND owner != ? AND lease_until > ?",
                    (owner, now),
                ).fetchone()
            return Claim(
                runs=[
                    (
                        row["thread_id"],
                        row["run_id"],
                        None if row["key"] is None else json.loads(row["key"]),
                    )
                    for row in rows
                ],
                waiting=waiting,
                retry_in=None if first is None else max(first - now, 0.0),
            )

        return await self._call(claim)

    async def renew(self, owner: str) -> None:
        """Extend *owner*'s claims by a lease from now; see `RunStore.renew`."""
        lease = self._lease

        def renew(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(
                    "UPDATE runs SET lease_until = ? WHERE owner = ? AND ended = 0",
                    (time.time() + lease, owner),
                )

        await self._call(renew)

    async def record(self, owner: str, updates: Sequence[RunUpdate]) -> list[bool]:
        """Write *updates* to runs *owner* holds; see `RunStore.record`."""
        if not updates:
            return []
        updates = list(updates)

        def record(db: sqlite3.Connection) -> list[bool]:
            # Runs are turned into JSON here, in the store's thread, not on
            # the event loop.
            rows = [
                (
                    u.status,
                    int(u.ended),
                    None if u.run is None else _dumps(converter.unstructure(u.run)),
                    u.error,
                    u.thread_id,
                    u.run_id,
                )
                for u in updates
            ]
            now = time.time()
            with _transaction(db):
                if not _BATCHED:  # pragma: no cover - SQLite before 3.33
                    return [
                        db.execute(
                            _WRITE_ONE, (*row[:4], now, *row[4:], owner)
                        ).rowcount
                        == 1
                        for row in rows
                    ]
                # One statement for the batch, not one a run: each statement
                # hands the GIL back and forth with the busy event loop.
                (held,) = db.execute(
                    _HELD, (_dumps([row[4:] for row in rows]), owner)
                ).fetchone()
                ours = {(tid, rid) for tid, rid in json.loads(held)}
                written = [(row[4], row[5]) in ours for row in rows]
                db.execute(
                    _WRITE,
                    (
                        now,
                        _dumps([r for r, w in zip(rows, written, strict=True) if w]),
                        owner,
                    ),
                )
            return written

        return await self._call(record)

    async def release(self, owner: str, reopen: Sequence[tuple[str, str]] = ()) -> None:
        """Give up *owner*'s open runs; see `RunStore.release`."""
        reopened = list(reopen)

        def release(db: sqlite3.Connection) -> None:
            now = time.time()
            with _transaction(db):
                db.execute(
                    "UPDATE runs SET owner = NULL, lease_until = 0, updated_at = ? "
                    "WHERE owner = ? AND ended = 0",
                    (now, owner),
                )
                db.executemany(
                    "UPDATE runs SET ended = 0, owner = NULL, lease_until = 0, "
                    "updated_at = ? WHERE thread_id = ? AND run_id = ? "
                    "AND owner = ? AND ended = 1",
                    [(now, tid, rid, owner) for tid, rid in reopened],
                )

        await self._call(release)

    async def runs(self) -> list[StoredRun]:
        """Every run in the store, in the order they were added."""

        def runs(db: sqlite3.Connection) -> list[StoredRun]:
            rows = db.execute("SELECT * FROM runs ORDER BY rowid").fetchall()
            return [_stored_run(row) for row in rows]

        return await self._call(runs)

    async def counts(self) -> dict[str, int]:
        """How many runs stand how: `StoredRun.outcome` to a count."""

        def counts(db: sqlite3.Connection) -> dict[str, int]:
            rows = db.execute(
                "SELECT CASE WHEN ended = 0 THEN 'open' "
                "WHEN error LIKE 'WatchTimeoutError:%' THEN 'timed out' "
                "WHEN error IS NOT NULL OR status IS NULL THEN 'error' "
                "ELSE status END AS outcome, count(*) FROM runs GROUP BY outcome"
            ).fetchall()
            return dict(rows)

        return await self._call(counts)


_BATCHED = sqlite3.sqlite_version_info >= (3, 33)  # UPDATE ... FROM
# The batch is the outer loop (CROSS JOIN keeps SQLite's order; a unary +
# keeps the owner index out of it): each of its runs is then found by the
# primary key, never by a scan.
_HELD = """
SELECT json_group_array(json_array(r.thread_id, r.run_id))
FROM (SELECT json_extract(value, '$[0]') AS t, json_extract(value, '$[1]') AS r
      FROM json_each(?)) AS u
CROSS JOIN runs AS r ON r.thread_id = u.t AND r.run_id = u.r
WHERE r.owner = ? AND r.ended = 0
"""
_WRITE = """
UPDATE runs SET status = u.s, ended = u.e, run = u.j, error = u.x, updated_at = ?
FROM (SELECT json_extract(value, '$[0]') AS s, json_extract(value, '$[1]') AS e,
             json_extract(value, '$[2]') AS j, json_extract(value, '$[3]') AS x,
             json_extract(value, '$[4]') AS t, json_extract(value, '$[5]') AS r
      FROM json_each(?)) AS u
WHERE runs.thread_id = u.t AND runs.run_id = u.r AND +runs.owner = ? AND +runs.ended = 0
"""
_WRITE_ONE = (
    "UPDATE runs SET status = ?, ended = ?, run = ?, error = ?, updated_at = ? "
    "WHERE thread_id = ? AND run_id = ? AND owner = ? AND ended = 0"
)


def _close_quietly(opened: list[sqlite3.Connection | ThreadPoolExecutor]) -> None:
    for thing in opened:
        if isinstance(thing, ThreadPoolExecutor):
            thing.shutdown(wait=False)
        else:
            with contextlib.suppress(sqlite3.Error):
                thing.close()


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """`BEGIN IMMEDIATE` ... `COMMIT` (or `ROLLBACK`): the write lock first.

    IMMEDIATE takes the database's write lock at the start, so a claim
    reads and writes with no other writer in between; waiting for the lock
    obeys the connection's busy timeout.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
