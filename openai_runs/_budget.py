"""What a key may send: requests in flight, per second, and the shared 429 pause."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Protocol, runtime_checkable

from ._validation import check_count, check_duration
from .exceptions import InvalidRequestError

__all__ = ["Budget", "LocalBudget"]

DEFAULT_MAX_IN_FLIGHT = 64

_WINDOW = 100
"""How many recent answers decide whether a 429 pauses the whole key."""


@runtime_checkable
class Budget(Protocol):
    """What every request of a client asks before it is sent, and tells after.

    A [RunsClient][openai_runs.RunsClient] holds one budget and consults it
    for every request it sends: plain calls, each watch, each
    `watch_many`. Pass the same budget to several clients to share its limits.
    [LocalBudget][openai_runs.LocalBudget] is the default; a budget shared
    between processes (Redis) implements the same two methods.
    """

    async def acquire(self) -> None:
        """Wait until one more request may be sent, then count it as sent."""

    def release(self, throttled: float | None = None) -> None:
        """Count a request as answered.

        Args:
            throttled: The answer was a 429 that asked to wait this many
                seconds (its hint, or the retry backoff without one); *None*
                for any other answer, or no answer.
        """


class LocalBudget:
    """A budget for the requests of one event loop: the default of every client.

    1. At most *max_in_flight* requests wait for an answer at once; more
       wait their turn, first come first served.
    2. At most *max_requests_per_second* requests start in any second,
       spaced evenly.
    3. A 429 pauses every request for as long as the server asked, when 429s
       are a sign that the key is throttled: at least one in ten of the last
       hundred answers (so the first answer, if it is a 429). A sparse 429 among
       many good answers delays only its own request, by its own
       `Retry-After`; pausing every request for each such 429 would keep a
       busy client paused for good.

    Args:
        max_in_flight: The most requests waiting for an answer at once
            (64, about the connections aiohttp keeps per host); *None* for
            no bound.
        max_requests_per_second: The most requests started per second;
            *None* (the default) for no cap.

    Raises:
        InvalidRequestError: A limit is not a positive number.
    """

    __slots__ = (
        "_in_flight",
        "_next_send",
        "_paused_until",
        "_recent",
        "_recent_429",
        "_spacing",
        "_waiters",
        "max_in_flight",
        "max_requests_per_second",
    )

    def __init__(
        self,
        *,
        max_in_flight: int | None = DEFAULT_MAX_IN_FLIGHT,
        max_requests_per_second: float | None = None,
    ) -> None:
        if max_in_flight is not None:
            check_count("max_in_flight", max_in_flight)
            if max_in_flight < 1:
                raise InvalidRequestError("max_in_flight", "must be 1 or more")
        if max_requests_per_second is not None:
            check_duration(
                "max_requests_per_second", max_requests_per_second, positive=True
            )
        self.max_in_flight = max_in_flight
        self.max_requests_per_second = max_requests_per_second
        self._spacing = (
            None if max_requests_per_second is None else 1 / max_requests_per_second
        )
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._next_send = 0.0
        self._paused_until = 0.0
        self._recent: deque[bool] = deque(maxlen=_WINDOW)
        self._recent_429 = 0

    def __repr__(self) -> str:
        return (
            f"LocalBudget(max_in_flight={self.max_in_flight!r}, "
            f"max_requests_per_second={self.max_requests_per_second!r})"
        )

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered."""
        return self._in_flight

    @property
    def paused_for(self) -> float:
        """Seconds left of the shared 429 pause (0 when none)."""
        return max(self._paused_until - time.monotonic(), 0.0)

    async def acquire(self) -> None:
        """Wait for a free slot, the end of any pause, then the rate cap."""
        limit = self.max_in_flight
        if limit is not None and (self._in_flight >= limit or self._waiters):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # release() hands its slot over: _in_flight stays
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self.release()  # handed a slot while being cancelled
                elif waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
        else:
            self._in_flight += 1
        try:
            # After the slot: a slot handed over while a 429 paused the key
            # waits out the pause too.
            # A loop, not an Event: a 429 seen meanwhile may push the end out.
            while (wait := self._paused_until - time.monotonic()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
        except asyncio.CancelledError:
            self.release()
            raise
        if self._spacing is not None:
            now = time.monotonic()
            at = max(now, self._next_send)
            self._next_send = at + self._spacing
            if at > now:
                try:
                    await asyncio.sleep(at - now)
                except asyncio.CancelledError:
                    self.release()
                    raise

    def release(self, throttled: float | None = None) -> None:
        """Free the request's slot; a 429 may pause the key (see the class)."""
        recent = self._recent
        if len(recent) == _WINDOW and recent[0]:
            self._recent_429 -= 1
        recent.append(throttled is not None)
        if throttled is not None:
            self._recent_429 += 1
            if self._recent_429 * 10 >= len(recent):
                until = time.monotonic() + throttled
                self._paused_until = max(self._paused_until, until)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the waiter
                return
        self._in_flight -= 1
