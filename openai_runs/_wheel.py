"""One shared timer wheel per event loop, for the sleeps of per-task watches.

Thousands of `runs.poll` / `runs.watch` tasks each sleeping with
`asyncio.sleep` cost a timer handle each in the loop's heap (pushed and
popped, O(log n) each) and wake one by one. Here a sleep is a future in a
slot of a 25 ms grid (the grid `watch_many` sleeps on): one loop timer per
slot wakes every watch due in it together, so their polls go out in one
batch. A sleep ends at the first grid point at or after its time: never
early, at most one tick late, and never past the bound it is given. A sleep
shorter than `SHORTEST` (a quick retry, a test's cadence) is exact: a tick
late would be a large share of it.
"""

from __future__ import annotations

import asyncio
import math
import weakref

__all__ = ["SHORTEST", "TICK", "sleep"]

TICK = 0.025
"""The grid, in seconds: as `watch_many`'s."""

SHORTEST = 4 * TICK
"""Shorter sleeps are not rounded: at most a quarter late, on the wheel."""


class _Wheel:
    """The slots of one loop: grid index to the futures waiting for it."""

    __slots__ = ("loop", "slots")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.slots: dict[int, list[asyncio.Future[None]]] = {}

    def wait(self, when: float) -> asyncio.Future[None]:
        """A future done at the grid point at or after *when* (loop time)."""
        index = math.ceil(when / TICK)
        future = self.loop.create_future()
        waiting = self.slots.get(index)
        if waiting is None:
            self.slots[index] = [future]
            self.loop.call_at(index * TICK, self.fire, index)
        else:
            waiting.append(future)
        return future

    def fire(self, index: int) -> None:
        for future in self.slots.pop(index, ()):
            if not future.done():  # a cancelled sleep stays until its slot
                future.set_result(None)


_wheels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Wheel] = (
    weakref.WeakKeyDictionary()
)


async def sleep(delay: float, *, limit: float = math.inf) -> None:
    """Sleep *delay* seconds, rounded up to the grid but not past *limit* seconds.

    A sleep shorter than `SHORTEST`, or one the grid would take past *limit*
    (a deadline), sleeps exactly *delay* instead.
    """
    loop = asyncio.get_running_loop()
    now = loop.time()
    when = now + max(delay, 0.0)
    if delay < SHORTEST or math.ceil(when / TICK) * TICK > now + limit:
        await asyncio.sleep(delay)
        return
    wheel = _wheels.get(loop)
    if wheel is None:
        wheel = _wheels[loop] = _Wheel(loop)
    await wheel.wait(when)
