"""Clocks the emulator reads to decide where each run is in its script."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Anything with a `now()` that returns unix seconds and never goes back."""

    def now(self) -> float:
        """Return the current time in unix seconds."""
        ...


class SystemClock:
    """The real clock: wall-clock time that advances with `time.monotonic`.

    Anchoring to the monotonic clock keeps run phases steady if the system
    clock is adjusted while the emulator runs.
    """

    def __init__(self) -> None:
        self._wall = time.time()
        self._mono = time.monotonic()

    def now(self) -> float:
        """Return the current time in unix seconds."""
        return self._wall + (time.monotonic() - self._mono)


class ManualClock:
    """A clock that only moves when a test calls `advance`.

    Runs are evaluated lazily against the clock, so advancing it moves every
    run forward at once without any sleeping.

    It starts at the current time, so timestamps such as `expires_at` mean
    the same to a client as to the emulator; pass *start* for fixed ones.

    Args:
        start: The initial time in unix seconds (default: now).
    """

    def __init__(self, start: float | None = None) -> None:
        # A start in the past (the default was once 2023) put every run's
        # expires_at behind the client's wall clock, and a watch that caps
        # its deadline at expires_at ended at once.
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def now(self) -> float:
        """Return the current time in unix seconds."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by *seconds* and return the new time.

        Raises:
            ValueError: If *seconds* is negative.
        """
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: {seconds!r}")
        with self._lock:
            self._now += seconds
            return self._now
