"""Timing helpers for tests that assert short real intervals on a loaded machine."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import attrs


@attrs.define
class LoopLag:
    """The worst lateness of a 5 ms sleep while the block ran, in seconds.

    On a loaded machine the loop itself wakes late (another process holds the
    core); a watch cannot end before its loop wakes, so deadlines are asserted
    against the margin plus this measured lag, never a bare wall-clock window.
    """

    worst: float = 0.0


@contextlib.asynccontextmanager
async def loop_lag() -> AsyncIterator[LoopLag]:
    """Measure the event loop's worst lateness while the block runs."""
    lag = LoopLag()
    loop = asyncio.get_running_loop()

    async def meter() -> None:
        while True:
            asked = loop.time()
            await asyncio.sleep(0.005)
            lag.worst = max(lag.worst, loop.time() - asked - 0.005)

    task = asyncio.create_task(meter())
    try:
        yield lag
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
