"""The thread lock: which run holds a thread, and waiting until none does.

A thread has at most one active run; while it has one, the API refuses a new
run and a new message (`ThreadLockedError`). `runs.active` and
`runs.wait_idle` are built on these two functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Final

from ._validation import check_id, check_range
from .exceptions import BadRequestError, InvalidRequestError, WatchTimeoutError
from .models import RunStatus

if TYPE_CHECKING:
    from ._client import Runs
    from ._watch_core import WatchPolicy
    from .models import Run

__all__ = ["ACTIVE_STATUSES", "active_run", "wait_idle"]

ACTIVE_STATUSES: Final = frozenset(
    {
        RunStatus.QUEUED,
        RunStatus.IN_PROGRESS,
        RunStatus.REQUIRES_ACTION,
        RunStatus.CANCELLING,
    }
)
"""The statuses in which a run holds its thread's lock."""

# The newest runs are enough: the active run is the newest one, since no
# run can start while it is active. A few more cover a server that orders
# runs created in the same second loosely.
_NEWEST: Final = 5
# How often a run left in requires_action (which only a tool output, a
# cancel or its expiry ends) is looked at again.
_REQUIRES_ACTION_RECHECK: Final = 1.0


def _holds_lock(run: Run) -> bool:
    # A status added after this version counts as active unless the run
    # carries a terminal timestamp (Run.is_terminal): waiting too long beats
    # adding a message the API refuses.
    return run.status in ACTIVE_STATUSES or not run.is_terminal


async def active_run(runs: Runs, thread_id: str) -> tuple[Run | None, Run | None]:
    """Return the thread's active run (or *None*) and its newest run."""
    check_id("thread_id", thread_id)
    page = await runs.list(thread_id, limit=_NEWEST, order="desc")
    newest = page.data[0] if page.data else None
    for run in page.data:
        if _holds_lock(run):
            return run, newest
    return None, newest


async def wait_idle(
    runs: Runs,
    thread_id: str,
    *,
    cancel: bool,
    timeout: float | None,
    policy: WatchPolicy | None,
) -> Run | None:
    """Wait until *thread_id* has no active run; see `Runs.wait_idle`."""
    check_id("thread_id", thread_id)
    if timeout is not None:
        check_range("timeout", timeout, 0)
    if not isinstance(cancel, bool):
        raise InvalidRequestError("cancel", "must be True or False")
    deadline = None if timeout is None else time.monotonic() + timeout
    last: Run | None = None
    while True:
        active, newest = await active_run(runs, thread_id)
        if active is None:
            return newest
        last = active
        if cancel and active.status != RunStatus.CANCELLING:
            # A 400: it ended, or began cancelling, since it was listed.
            with contextlib.suppress(BadRequestError):
                last = await runs.cancel(thread_id, active.id)
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise WatchTimeoutError(
                f"thread {thread_id} still has the active run {last.id}", last
            )
        # Through the watch core (runs.watch): the cadence, hints, fault
        # retries and request budget of every other watch.
        last = await runs.watch(thread_id, active.id, timeout=left, policy=policy)
        if not last.is_terminal:
            # requires_action: nothing but a tool output, a cancel or expiry
            # moves it on; look again in a while.
            pause = _REQUIRES_ACTION_RECHECK
            if deadline is not None:
                pause = min(pause, max(deadline - time.monotonic(), 0))
            await asyncio.sleep(pause)
