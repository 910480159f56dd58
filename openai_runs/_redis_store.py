"""A run store in Redis, shared by workers on many machines (the `[redis]` extra)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ._converter import converter
from ._validation import check_duration
from .exceptions import InvalidRequestError, StoreError
from .models import Run
from .store import Claim, RunKey, RunUpdate, StoredRun

__all__ = ["RedisRunStore"]

T = TypeVar("T")

# Every script reads the time from Redis itself (TIME), so leases mean the
# same to every worker whatever their clocks say. A run is a hash at
# P..'run:'..member (member: the JSON of [thread_id, run_id]); P..'open' is a
# sorted set of the runs not ended, scored by when their lease lapses (0:
# free); P..'all' orders every run by when it was added; P..'owner:'..owner
# is the set of runs a worker holds.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function num(x) return string.format('%.6f', x) end
"""

_TAKE = """
local function take(p, m, h, owner, lease_until, now)
  local old = redis.call('HGET', h, 'owner')
  if old and old ~= '' and old ~= owner then
    redis.call('SREM', p .. 'owner:' .. old, m)
  end
  redis.call('HSET', h, 'owner', owner, 'lease_until', num(lease_until),
             'updated_at', num(now))
  redis.call('ZADD', p .. 'open', lease_until, m)
  redis.call('SADD', p .. 'owner:' .. owner, m)
end
"""

_ADD = (
    _NOW
    + _TAKE
    + """
local p, owner, lease = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {}
for i = 4, #ARGV, 4 do
  local m, tid, rid, key = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local h = p .. 'run:' .. m
  local ours = 0
  if redis.call('EXISTS', h) == 0 then
    local seq = redis.call('INCR', p .. 'seq')
    redis.call('HSET', h, 'thread_id', tid, 'run_id', rid, 'key', key,
               'status', '', 'ended', '0', 'run', '', 'error', '', 'owner', '',
               'lease_until', '0', 'updated_at', num(now))
    redis.call('ZADD', p .. 'all', seq, m)
    take(p, m, h, owner, now + lease, now)
    ours = 1
  else
    local f = redis.call('HMGET', h, 'ended', 'owner', 'lease_until')
    if f[1] == '0' and (f[2] == '' or (tonumber(f[3]) <= now and f[2] ~= owner)) then
      take(p, m, h, owner, now + lease, now)
      ours = 1
    end
  end
  out[#out + 1] = ours
end
return out
"""
)

_CLAIM = (
    _NOW
    + _TAKE
    + """
local p, owner, lease, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local claimed = {}
local offset = 0
while #claimed < limit do
  local page = redis.call('ZRANGEBYSCORE', p .. 'open', '-inf', now,
                          'LIMIT', offset, limit)
  if #page == 0 then break end
  offset = offset + #page
  for _, m in ipairs(page) do
    if #claimed >= limit then break end
    local h = p .. 'run:' .. m
    local f = redis.call('HMGET', h, 'owner', 'thread_id', 'run_id', 'key')
    if f[1] ~= owner then
      take(p, m, h, owner, now + lease, now)
      offset = offset - 1  -- it left the range: its lease is now in the future
      claimed[#claimed + 1] = {f[2], f[3], f[4]}
    end
  end
end
local waiting, first = 0, ''
local held = redis.call('ZRANGEBYSCORE', p .. 'open', '(' .. now, '+inf', 'WITHSCORES')
for i = 1, #held, 2 do
  if redis.call('HGET', p .. 'run:' .. held[i], 'owner') ~= owner then
    waiting = waiting + 1
    if first == '' then first = num(tonumber(held[i + 1]) - now) end
  end
end
return {claimed, waiting, first}
"""
)

_RENEW = (
    _NOW
    + """
local p, owner, lease = ARGV[1], ARGV[2], tonumber(ARGV[3])
for _, m in ipairs(redis.call('SMEMBERS', p .. 'owner:' .. owner)) do
  redis.call('ZADD', p .. 'open', 'XX', now + lease, m)
  redis.call('HSET', p .. 'run:' .. m, 'lease_until', num(now + lease))
end
return 0
"""
)

_RECORD = (
    _NOW
    + """
local p, owner = ARGV[1], ARGV[2]
local mine = p .. 'owner:' .. owner
local out = {}
for i = 4, #ARGV, 5 do  -- ARGV[3]: unused (the lease)
  local m, status, ended = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local h = p .. 'run:' .. m
  local f = redis.call('HMGET', h, 'owner', 'ended')
  if f[1] == owner and f[2] == '0' then
    if ended == '1' then
      redis.call('HSET', h, 'status', status, 'ended', '1', 'run', ARGV[i + 3],
                 'error', ARGV[i + 4], 'lease_until', '0', 'updated_at', num(now))
      redis.call('ZREM', p .. 'open', m)
      redis.call('SREM', mine, m)
    else
      redis.call('HSET', h, 'status', status, 'updated_at', num(now))
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""
)

_RELEASE = (
    _NOW
    + """
local p, owner = ARGV[1], ARGV[2]
local mine = p .. 'owner:' .. owner
for _, m in ipairs(redis.call('SMEMBERS', mine)) do
  redis.call('HSET', p .. 'run:' .. m, 'owner', '', 'lease_until', '0',
             'updated_at', num(now))
  redis.call('ZADD', p .. 'open', 0, m)
end
redis.call('DEL', mine)
for i = 3, #ARGV do
  local m = ARGV[i]
  local h = p .. 'run:' .. m
  local f = redis.call('HMGET', h, 'owner', 'ended')
  if f[1] == owner and f[2] == '1' then
    redis.call('HSET', h, 'ended', '0', 'owner', '', 'lease_until', '0',
               'updated_at', num(now))
    redis.call('ZADD', p .. 'open', 0, m)
  end
end
return 0
"""
)

_FIELDS = (
    "thread_id",
    "run_id",
    "key",
    "status",
    "ended",
    "run",
    "error",
    "owner",
    "lease_until",
    "updated_at",
)


class RedisRunStore:
    """A run store in Redis: workers on many machines share it.

    Every claim and every write is one Lua script, so it is atomic on the
    Redis server; leases are timed by the server's clock (`TIME`), so the
    workers' clocks need not agree. All keys of one store share a hash tag
    (`openai-runs:store:{NAME}:...`), so they live in one slot of a Redis
    Cluster.

    ```python
    from openai_runs.redis import RedisRunStore

    async with RedisRunStore("redis://localhost:6379/0", name="nightly") as store:
        async for result in client.runs.resume_many(store):
            print(result.run_id, result.ok)
    ```

    Args:
        url_or_client: A `redis://` URL, or a `redis.asyncio.Redis` client of
            yours (left open when the store closes).
        name: The store's name: workers that name the same store share its
            runs.
        lease: Seconds a worker's claim lasts unless renewed (30).

    Raises:
        InvalidRequestError: *name* is empty, or *lease* is not a positive
            number of seconds.
    """

    def __init__(
        self,
        url_or_client: str | aioredis.Redis,
        *,
        name: str = "default",
        lease: float = 30.0,
    ) -> None:
        given: object = name  # a caller may pass anything
        if not isinstance(given, str) or not given:
            raise InvalidRequestError("name", "must be a non-empty string")
        self._lease = check_duration("lease", lease, positive=True)
        self.name = name
        if isinstance(url_or_client, str):
            try:
                self._redis = aioredis.Redis.from_url(url_or_client)
            except ValueError as exc:
                raise InvalidRequestError("url_or_client", str(exc)) from None
            self._owns_client = True
        else:
            self._redis = url_or_client
            self._owns_client = False
        self._prefix = f"openai-runs:store:{{{name}}}:"
        self._add = self._redis.register_script(_ADD)
        self._claim = self._redis.register_script(_CLAIM)
        self._renew = self._redis.register_script(_RENEW)
        self._record = self._redis.register_script(_RECORD)
        self._release = self._redis.register_script(_RELEASE)
        self._closed = False

    def __repr__(self) -> str:
        return f"<RedisRunStore {self.name!r} lease={self._lease:g}s>"

    @property
    def lease(self) -> float:
        """Seconds a claim lasts unless renewed."""
        return self._lease

    async def __aenter__(self) -> Self:
        await self._call(self._redis.ping)  # a wrong URL fails here
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection, if the store opened it (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._redis.aclose()

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        if self._closed:
            raise StoreError(f"the run store {self.name!r} is closed")
        try:
            return await fn()
        except RedisError as exc:
            raise StoreError(f"run store {self.name!r}: {exc}") from exc

    async def add(self, owner: str, runs: Sequence[RunKey]) -> list[bool]:
        """Add *runs* and claim them for *owner*; see `RunStore.add`."""
        args: list[str | float] = [self._prefix, owner, self._lease]
        for tid, rid, key in runs:
            args += [
                _member(tid, rid),
                tid,
                rid,
                "" if key is None else json.dumps(key),
            ]
        out = await self._call(lambda: self._add(args=args))
        return [bool(x) for x in out]

    async def claim(self, owner: str, limit: int) -> Claim:
        """Claim up to *limit* free runs; see `RunStore.claim`."""
        args: list[str | float] = [self._prefix, owner, self._lease, limit]
        claimed, waiting, first = await self._call(lambda: self._claim(args=args))
        return Claim(
            runs=[(_text(t), _text(r), _key(k)) for t, r, k in claimed],
            waiting=int(waiting),
            retry_in=float(first) if _text(first) else None,
        )

    async def renew(self, owner: str) -> None:
        """Extend *owner*'s claims by a lease from now; see `RunStore.renew`."""
        args: list[str | float] = [self._prefix, owner, self._lease]
        await self._call(lambda: self._renew(args=args))

    async def record(self, owner: str, updates: Sequence[RunUpdate]) -> list[bool]:
        """Write *updates* to runs *owner* holds; see `RunStore.record`."""
        if not updates:
            return []
        args: list[str | float] = [self._prefix, owner, self._lease]
        for u in updates:
            run = "" if u.run is None else json.dumps(converter.unstructure(u.run))
            args += [
                _member(u.thread_id, u.run_id),
                u.status or "",
                "1" if u.ended else "0",
                run,
                u.error or "",
            ]
        out = await self._call(lambda: self._record(args=args))
        return [bool(x) for x in out]

    async def release(self, owner: str, reopen: Sequence[tuple[str, str]] = ()) -> None:
        """Give up *owner*'s open runs; see `RunStore.release`."""
        args = [self._prefix, owner, *(_member(t, r) for t, r in reopen)]
        await self._call(lambda: self._release(args=args))

    async def runs(self) -> list[StoredRun]:
        """Every run in the store, in the order they were added."""
        members = await self._call(
            lambda: self._redis.zrange(self._prefix + "all", 0, -1)
        )
        rows: list[list[Any]] = []
        for start in range(0, len(members), 500):
            async with self._redis.pipeline(transaction=False) as pipe:
                for member in members[start : start + 500]:
                    pipe.hmget(self._prefix + "run:" + _text(member), _FIELDS)
                rows += await self._call(pipe.execute)
        return [_stored_run(row) for row in rows]

    async def counts(self) -> dict[str, int]:
        """How many runs stand how: `StoredRun.outcome` to a count."""
        counts: dict[str, int] = {}
        for run in await self.runs():
            counts[run.outcome] = counts.get(run.outcome, 0) + 1
        return counts


def _member(thread_id: str, run_id: str) -> str:
    return json.dumps([thread_id, run_id], separators=(",", ":"))


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _key(value: Any) -> Any:
    text = _text(value)
    return json.loads(text) if text else None


def _stored_run(row: list[Any]) -> StoredRun:
    tid, rid, key, status, ended, run, error, owner, lease_until, updated = map(
        _text, row
    )
    return StoredRun(
        thread_id=tid,
        run_id=rid,
        key=json.loads(key) if key else None,
        status=status or None,
        ended=ended == "1",
        run=converter.structure(json.loads(run), Run) if run else None,
        error=error or None,
        owner=owner or None,
        lease_until=float(lease_until or 0),
        updated_at=float(updated or 0),
    )
