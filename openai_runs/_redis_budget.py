"""A request budget shared through Redis by every process that names it.

Three keys per budget name hold what the processes share (`{name}` is a Redis
Cluster hash tag, so the three live on one node):

- `openai_runs:budget:{name}:rate`: the next free send slot, in Redis server
  microseconds: a token bucket of one token with reservations (GCRA), so the
  requests of all processes start evenly spaced;
- `openai_runs:budget:{name}:pause`: "nobody sends before T", T in Redis
  server microseconds, only ever moved later;
- `openai_runs:budget:{name}:in_flight`: a sorted set of leases, one per
  request in flight, scored by when the lease expires; a live process renews
  its leases, so only a dead process's leases run out.

Every time comes from Redis `TIME` inside the scripts, so the processes'
clocks never need to agree. Every Redis call is bounded by *timeout*; when
Redis does not answer, the budget serves its requests from a local
[LocalBudget][openai_runs.LocalBudget] until Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Final

from ._budget import Budget, LocalBudget
from ._validation import check_duration
from .exceptions import InvalidRequestError

try:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
except ImportError as error:  # pragma: no cover - the [redis] extra is missing
    raise ImportError(
        "openai_runs.redis needs redis-py: pip install 'openai-runs[redis]'"
    ) from error

__all__ = ["RedisBudget"]

logger = logging.getLogger("openai_runs")

_WINDOW: Final = 100
"""How many recent answers decide whether a 429 pauses every process."""

_PREFIX: Final = "openai_runs:budget"

# KEYS: rate, pause, in_flight. ARGV: spacing µs (0: no rate cap), max in
# flight (0: no bound), lease µs, how many requests n, then n lease ids.
# Returns {status, µs, granted}: {0, wait, 0} paused (nothing taken, ask
# again after wait), {1, 0, 0} every slot taken (nothing taken), {2, wait, m}
# m <= n requests granted: m slots leased (if bounded) and m consecutive send
# slots reserved, the first `wait` from now.
_ACQUIRE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then
  return {0, paused - now, 0}
end
local n = tonumber(ARGV[4])
local limit = tonumber(ARGV[2])
if limit > 0 then
  local lease = tonumber(ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  local free = limit - redis.call('ZCARD', KEYS[3])
  if free <= 0 then
    return {1, 0, 0}
  end
  if free < n then
    n = free
  end
  for i = 1, n do
    redis.call('ZADD', KEYS[3], now + lease, ARGV[4 + i])
  end
  redis.call('PEXPIRE', KEYS[3], math.ceil(lease / 1000) + 1000)
end
local spacing = tonumber(ARGV[1])
if spacing > 0 then
  local at = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
  redis.call('SET', KEYS[1], at + n * spacing, 'PX',
             math.ceil((at + n * spacing - now) / 1000) + 1000)
  return {2, at - now, n}
end
return {2, 0, n}
"""

# KEYS: pause. ARGV: µs from now. Moves "nobody sends before T" later, never
# earlier. Returns the µs left of the pause.
_PAUSE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local untl = now + tonumber(ARGV[1])
local paused = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > paused then
  redis.call('SET', KEYS[1], untl, 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
  paused = untl
end
return paused - now
"""

# KEYS: in_flight. ARGV: lease µs, lease ids. Pushes the expiry of the
# leases still held out to a lease from now.
_RENEW: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], math.ceil(lease / 1000) + 1000)
return #ARGV - 1
"""

_PAUSED, _FULL, _GRANTED = 0, 1, 2

_CONNECTIONS: Final = 8
"""The most Redis calls of one budget at a time (and so its connections)."""

_AHEAD: Final = 0.05
"""Seconds ahead of its send time a process reserves the next send slot."""

_BATCH: Final = 16
"""The most requests of a process granted by one Redis call."""

_FIRST_POLL: Final = 0.005
"""Seconds before asking again for a slot when all are taken; doubles."""
_LAST_POLL: Final = 0.1


class _Unreachable(Exception):
    """Redis did not answer in time; the budget serves requests locally."""


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise InvalidRequestError("name", f"must be a non-empty string, not {name!r}")


def _check_slots(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(
            "max_in_flight", f"must be a whole number, 1 or more, not {value!r}"
        )


def _positive(name: str, value: object) -> float:
    """Refuse anything but a finite number more than 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidRequestError(
            name, f"must be a finite number more than 0, not {value!r}"
        )
    return float(value)


class RedisBudget:
    """A request budget shared by every process that names it, through Redis.

    Give one to each [RunsClient][openai_runs.RunsClient] of every worker
    process (or machine) that uses the same API key, with the same *name*
    and the same Redis: together they keep to one request rate, one bound on
    requests in flight, and one 429 pause, as a single process with a
    [LocalBudget][openai_runs.LocalBudget] would.

    1. At most *max_requests_per_second* requests start in any second across
       all the processes, spaced evenly (an atomic token bucket, a Lua
       script run by Redis).
    2. At most *max_in_flight* requests wait for an answer at once across
       all the processes. Each holds a lease that its process renews while
       it waits; the leases of a process that died expire after *lease*
       seconds, so it cannot hold slots for good.
    3. When 429s show the key is throttled (at least one in ten of this
       process's last hundred answers, or its first answer), nobody sends
       before the time the server asked for: the pause is kept in Redis and
       every process waits it out.

    A process's requests wait in one local queue, first come first served,
    and one task asks Redis for up to 16 of them at a time, reserving send
    slots at most 50 ms ahead: one round trip to Redis serves many requests,
    and a process whose event loop stalls wakes up with a few late requests,
    not a backlog. Times are Redis server time (`TIME`), so the processes'
    clocks need not agree. Every Redis call is bounded by *timeout*. If Redis does not
    answer, the budget logs one WARNING and serves requests from *fallback*
    (by default a [LocalBudget][openai_runs.LocalBudget] with the same
    limits, for this process alone) and tries Redis again after
    *reconnect_after* seconds; it logs an INFO line when Redis is back. It
    never waits on Redis for good.

    Use it in one event loop. A budget made from a URL owns its connection:
    close it with [aclose][openai_runs.redis.RedisBudget.aclose] or
    `async with`; a client you pass stays yours to close.

    Args:
        url_or_client: A Redis URL (`redis://host:6379/0`, `rediss://...`,
            `unix://...`) or a `redis.asyncio.Redis` client.
        name: The budget's name: processes that give the same name share
            one budget; other names are independent. Use one name per API
            key.
        max_requests_per_second: The most requests started per second, by
            all the processes together; *None* (the default) for no cap.
            Set it a little under the key's limit (say 95 %).
        max_in_flight: The most requests waiting for an answer at once, by
            all the processes together; *None* (the default) for no bound.
        timeout: Seconds each Redis call may take before Redis counts as
            unreachable (default 0.5).
        lease: Seconds after which the in-flight slot of a process that no
            longer renews it (it died) is free again (default 30).
        reconnect_after: Seconds spent on the fallback before Redis is tried
            again (default 1).
        fallback: The budget used while Redis is unreachable.

    Raises:
        InvalidRequestError: A limit or duration is not a positive number,
            *name* is empty, or *url_or_client* is neither a Redis URL nor
            an asyncio Redis client. Nothing is sent to Redis.
    """

    def __init__(
        self,
        url_or_client: str | aioredis.Redis,
        *,
        name: str = "default",
        max_requests_per_second: float | None = None,
        max_in_flight: int | None = None,
        timeout: float = 0.5,
        lease: float = 30.0,
        reconnect_after: float = 1.0,
        fallback: Budget | None = None,
    ) -> None:
        _check_name(name)
        if max_requests_per_second is not None:
            _positive("max_requests_per_second", max_requests_per_second)
        if max_in_flight is not None:
            _check_slots(max_in_flight)
        self.timeout = check_duration("timeout", timeout, positive=True)
        self.lease = check_duration("lease", lease, positive=True)
        self.reconnect_after = check_duration(
            "reconnect_after", reconnect_after, positive=True
        )
        if fallback is not None and not isinstance(fallback, Budget):
            raise InvalidRequestError(
                "fallback", f"must have acquire() and release(), not {fallback!r}"
            )
        self._owns_client = isinstance(url_or_client, str)
        self._redis = _client(url_or_client, self.timeout)
        self.name = name
        self.max_requests_per_second = max_requests_per_second
        self.max_in_flight = max_in_flight
        self.fallback: Budget = fallback or LocalBudget(
            max_in_flight=max_in_flight, max_requests_per_second=max_requests_per_second
        )
        tag = f"{_PREFIX}:{{{name}}}"
        self._keys = (f"{tag}:rate", f"{tag}:pause", f"{tag}:in_flight")
        self._spacing_us = (
            0
            if max_requests_per_second is None
            else round(1e6 / max_requests_per_second)
        )
        self._lease_us = max(round(self.lease * 1e6), 1)
        self._acquire_script = self._redis.register_script(_ACQUIRE)
        self._pause_script = self._redis.register_script(_PAUSE)
        self._renew_script = self._redis.register_script(_RENEW)
        self._ids = (f"{uuid.uuid4().hex[:16]}:{n}" for n in itertools.count())
        self._leases: list[str] = []  # held by this process, renewed
        self._local = 0  # requests sent under the fallback, not yet answered
        self._shared = 0  # requests sent under Redis without a lease
        self._gate = asyncio.Semaphore(_CONNECTIONS)
        self._pending: deque[asyncio.Future[tuple[str, float]]] = deque()
        self._dispatcher: asyncio.Task[None] | None = None
        self._slot_freed = asyncio.Event()
        self._idle = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._down_until: float | None = None  # monotonic; None while Redis answers
        self._recent: deque[bool] = deque(maxlen=_WINDOW)
        self._recent_429 = 0

    def __repr__(self) -> str:
        return (
            f"RedisBudget(name={self.name!r}, "
            f"max_requests_per_second={self.max_requests_per_second!r}, "
            f"max_in_flight={self.max_in_flight!r})"
        )

    @property
    def degraded(self) -> bool:
        """Whether Redis is unreachable and the fallback serves the requests."""
        return self._down_until is not None

    @property
    def in_flight(self) -> int:
        """This process's requests sent through this budget and not yet answered."""
        return len(self._leases) + self._shared + self._local

    async def acquire(self) -> None:
        """Wait for a shared slot, the end of any shared pause, then the rate.

        Falls back to the local budget, without waiting on Redis longer than
        *timeout*, when Redis does not answer.
        """
        down = self._down_until
        if down is None or time.monotonic() >= down:
            try:
                await self._acquire_shared()
            except _Unreachable:
                pass
            else:
                return
        await self.fallback.acquire()
        self._local += 1

    def release(self, throttled: float | None = None) -> None:
        """Free the request's slot; a 429 may pause every process (see the class)."""
        pause = self._throttled(throttled)
        self._drop_one(throttled)
        if pause is not None and self._down_until is None:
            self._background(self._pause(pause))

    async def aclose(self) -> None:
        """Stop renewing leases, finish pending releases, close an owned client."""
        for task in (self._keeper, self._dispatcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._keeper = self._dispatcher = None
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.timeout * 2)
            for task in set(self._tasks):
                task.cancel()
        if self._owns_client:
            # Closing never fails the caller: a connection made on another
            # event loop, or a server gone, leaves nothing to close cleanly.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout):
                    await self._redis.aclose()

    async def __aenter__(self) -> RedisBudget:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- the shared budget ----------------------------------------------------

    async def _acquire_shared(self) -> None:
        # The requests of a process wait in one local queue, first come first
        # served; one dispatcher task asks Redis for several at a time.
        granted = asyncio.get_running_loop().create_future()
        self._pending.append(granted)
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(
                self._dispatch(), name=f"RedisBudget({self.name!r}) dispatcher"
            )
        try:
            lease, at = await granted
        except asyncio.CancelledError:
            if (
                granted.done()
                and not granted.cancelled()
                and granted.exception() is None
                and (lease := granted.result()[0])
            ):
                self._background(self._free(lease))  # granted as it was cancelled
            raise
        self._hold(lease)
        await self._sleep_holding(at - asyncio.get_running_loop().time())

    async def _dispatch(self) -> None:
        """Grant the queued requests, asking Redis for up to _BATCH at a time.

        Send slots are reserved at most _AHEAD before they come: a process
        whose event loop stalls wakes up late with a few requests, not with a
        backlog of reserved slots to send at once.
        """
        pending = self._pending
        try:
            await self._grant(pending, self.max_in_flight is not None)
        except _Unreachable:
            pass  # the waiters fall back to the local budget
        finally:
            while pending:  # left by an outage or aclose(): they go local
                waiter = pending.popleft()
                if not waiter.done():
                    waiter.set_exception(_Unreachable())

    async def _grant(
        self,
        pending: deque[asyncio.Future[tuple[str, float]]],
        bounded: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        spacing = self._spacing_us / 1e6
        poll = _FIRST_POLL
        while pending:
            n = min(len(pending), _BATCH)
            leases = [next(self._ids) for _ in range(n)] if bounded else []
            self._slot_freed.clear()
            status, wait, m = await self._ask(n, leases)
            if status == _PAUSED:
                await asyncio.sleep(wait)
                continue
            if status == _FULL:  # until one of ours frees, or a poll
                await _until_set(self._slot_freed, poll)
                poll = min(poll * 2, _LAST_POLL)
                continue
            poll = _FIRST_POLL
            start = loop.time() + wait
            for i in range(m):
                lease = leases[i] if bounded else ""
                while pending and pending[0].done():  # cancelled meanwhile
                    pending.popleft()
                if pending:
                    pending.popleft().set_result((lease, start + i * spacing))
                elif lease:
                    self._background(self._free(lease))
            ahead = start + (m - 1) * spacing - _AHEAD - loop.time()
            if ahead > 0:
                await asyncio.sleep(ahead)

    async def _ask(self, n: int, leases: list[str]) -> tuple[int, float, int]:
        """Run the acquire script: its status, the seconds to wait, how many."""
        args: list[int | str] = [
            self._spacing_us,
            self.max_in_flight or 0,
            self._lease_us,
            n,
            *leases,
        ]
        try:
            status, wait_us, granted = await self._call(
                lambda: self._acquire_script(keys=self._keys, args=args)
            )
        except BaseException:
            # The script may have leased slots that nobody holds.
            for lease in leases:
                self._background(self._free(lease))
            raise
        return int(status), int(wait_us) / 1e6, int(granted)

    def _drop_one(self, throttled: float | None = None) -> None:
        """Give back one slot this process holds, local ones first."""
        if self._local:
            self._local -= 1
            self.fallback.release(throttled)
        elif self._leases:
            lease = self._leases.pop()
            if not self._leases:
                self._idle.set()
            self._background(self._free(lease))
        elif self._shared:
            self._shared -= 1

    def _hold(self, lease: str) -> None:
        if not lease:
            self._shared += 1
            return
        self._leases.append(lease)
        self._idle.clear()
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.get_running_loop().create_task(
                self._keep(), name=f"RedisBudget({self.name!r}) leases"
            )

    async def _sleep_holding(self, wait: float) -> None:
        """Wait for the reserved send slot; a cancelled wait frees the lease."""
        if wait <= 0:
            return
        try:
            await asyncio.sleep(wait)
        except asyncio.CancelledError:
            self._drop_one()
            raise

    async def _keep(self) -> None:
        """Renew this process's leases while it holds any."""
        interval = self.lease / 3
        while self._leases:
            await _until_set(self._idle, interval)
            if not self._leases:
                return
            with contextlib.suppress(_Unreachable):
                await self._call(
                    lambda: self._renew_script(
                        keys=self._keys[2:], args=(self._lease_us, *self._leases)
                    )
                )

    async def _free(self, lease: str) -> None:
        with contextlib.suppress(_Unreachable):
            await self._call(lambda: self._redis.zrem(self._keys[2], lease))
        self._slot_freed.set()

    async def _pause(self, seconds: float) -> None:
        us = max(round(seconds * 1e6), 1)
        with contextlib.suppress(_Unreachable):
            await self._call(
                lambda: self._pause_script(keys=self._keys[1:2], args=(us,))
            )

    def _throttled(self, throttled: float | None) -> float | None:
        """Record an answer; the pause to share if 429s show the key throttled."""
        recent = self._recent
        if len(recent) == _WINDOW and recent[0]:
            self._recent_429 -= 1
        recent.append(throttled is not None)
        if throttled is None:
            return None
        self._recent_429 += 1
        return throttled if self._recent_429 * 10 >= len(recent) else None

    async def _call(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Make one Redis call within *timeout*; mark Redis down if it fails.

        At most a few calls at a time go to Redis (a burst of requests must
        not open a connection each); a call queued behind them is given up at
        once if Redis went down meanwhile.
        """
        async with self._gate:
            down = self._down_until
            if down is not None and time.monotonic() < down:
                raise _Unreachable
            try:
                async with asyncio.timeout(self.timeout):
                    result = await call()
            except Exception as error:  # any failure of Redis: use the fallback
                self._went_down(error)
                raise _Unreachable from error
        if self._down_until is not None:
            self._down_until = None
            logger.info(
                "RedisBudget %r: Redis answers again; the budget is shared again",
                self.name,
            )
        return result

    def _went_down(self, error: BaseException) -> None:
        if self._down_until is None:
            reason = type(error).__name__ if isinstance(error, TimeoutError) else error
            logger.warning(
                "RedisBudget %r: Redis did not answer (%s); this process uses a "
                "local budget until it does",
                self.name,
                reason or type(error).__name__,
            )
        self._down_until = time.monotonic() + self.reconnect_after

    def _background(self, call: Coroutine[Any, Any, None]) -> None:
        """Run *call* without waiting for it; aclose() waits for it."""
        task = asyncio.get_running_loop().create_task(call)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _until_set(event: asyncio.Event, seconds: float) -> None:
    """Wait until *event* is set, or *seconds* pass.

    Not `asyncio.timeout`: on Python 3.11 a cancellation that comes as it
    expires can be taken for the timeout, and lost.
    """
    if event.is_set():
        return
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait([waiter], timeout=seconds)
    finally:
        waiter.cancel()


def _client(url_or_client: object, timeout: float) -> aioredis.Redis:
    """The asyncio client for *url_or_client*, made with bounded timeouts from a URL."""
    if isinstance(url_or_client, aioredis.Redis):
        return url_or_client
    if not isinstance(url_or_client, str):
        raise InvalidRequestError(
            "url_or_client",
            "must be a Redis URL or a redis.asyncio.Redis client, not "
            f"{type(url_or_client).__module__}.{type(url_or_client).__qualname__}",
        )
    try:
        return aioredis.Redis.from_url(
            url_or_client,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One try per call: the budget falls back instead of retrying.
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError:
        # Not redis-py's message: it may quote the URL, and a password in it.
        raise InvalidRequestError(
            "url_or_client",
            "must be a redis://, rediss:// or unix:// URL, such as "
            "redis://localhost:6379/0",
        ) from None
