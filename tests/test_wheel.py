"""The timer wheel per-task watches sleep on: batched on a grid, never early, never late past a bound."""

from __future__ import annotations

import asyncio
import math
import random

from openai_runs import _wheel


def test_sleeps_end_together_on_the_grid_never_early() -> None:
    """Fifty sleeps of scattered lengths (100-180 ms) each end at the first grid
    point at or after their time, so the ones in one slot wake in one batch;
    none ends before its time."""

    async def main() -> list[tuple[float, float]]:
        loop = asyncio.get_running_loop()
        rng = random.Random(7)

        async def one(delay: float) -> tuple[float, float]:
            asked = loop.time() + delay
            await _wheel.sleep(delay)
            return asked, loop.time()

        return await asyncio.gather(*(one(rng.uniform(0.1, 0.18)) for _ in range(50)))

    for asked, woke in asyncio.run(main()):
        grid = math.ceil(asked / _wheel.TICK) * _wheel.TICK
        assert woke >= asked
        assert woke >= grid - 1e-6  # at its grid point, not at its own time


def _on_wheel() -> int:
    """Sleeps now waiting in a slot of this loop's wheel."""
    wheel = _wheel._wheels.get(asyncio.get_running_loop())
    return 0 if wheel is None else sum(len(s) for s in wheel.slots.values())


def test_a_sleep_is_not_rounded_past_its_limit() -> None:
    """A sleep whose grid point could fall past its limit (a deadline) is an
    exact timer, not a slot of the wheel; one with room is a slot."""

    async def main() -> tuple[int, int]:
        limited = asyncio.create_task(_wheel.sleep(0.1, limit=0.1005))
        await asyncio.sleep(0)
        on_wheel_limited = _on_wheel()
        await limited
        roomy = asyncio.create_task(_wheel.sleep(0.1, limit=1.0))
        await asyncio.sleep(0)
        on_wheel_roomy = _on_wheel()
        await roomy
        return on_wheel_limited, on_wheel_roomy

    assert asyncio.run(main()) == (0, 1)


def test_a_short_sleep_is_exact() -> None:
    """A sleep shorter than SHORTEST (a quick retry) is an exact timer, not a
    slot of the wheel."""

    async def main() -> int:
        short = asyncio.create_task(_wheel.sleep(_wheel.SHORTEST / 2))
        await asyncio.sleep(0)
        waiting = _on_wheel()
        await short
        return waiting

    assert asyncio.run(main()) == 0


def test_a_cancelled_sleep_leaves_the_others_to_end() -> None:
    """Cancelling one sleep of a slot does not disturb the others in it."""

    async def main() -> list[bool]:
        sleeps = [asyncio.create_task(_wheel.sleep(0.1)) for _ in range(3)]
        await asyncio.sleep(0)
        sleeps[1].cancel()
        await asyncio.gather(*sleeps, return_exceptions=True)
        return [t.cancelled() for t in sleeps]

    assert asyncio.run(main()) == [False, True, False]
