"""A `watch_many`'s record in its run store: claims and batched writes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .exceptions import InvalidRequestError, StoreError
from .models import Run
from .store import RunKey, RunStore, RunUpdate, describe_error, new_owner

if TYPE_CHECKING:
    from ._many import WatchResult
    from ._watch_core import OnStatus

__all__ = ["CLAIM_BATCH", "PROGRESS_DELAY", "RECHECK", "Journal"]

logger = logging.getLogger("openai_runs")

CLAIM_BATCH = 500
"""Runs `resume_many` claims in one transaction."""

RECHECK = 1.0
"""Seconds between looks at runs another worker holds, waiting for them to end."""

PROGRESS_DELAY = 0.5
"""Seconds a change of status may wait to be written, so that changes share a write."""


class Journal:
    """What one `watch_many` (one worker) writes to its store, and when.

    The scheduler never waits for the store. Runs read from the caller are
    queued and added (claimed) in batches; only the claimed ones are handed
    to the scheduler. Changes of status are coalesced and written within
    [PROGRESS_DELAY][]. A finished watch's result waits here until its end
    is recorded (the write is refused when another worker took the run
    over), and only then is it yielded: a run whose end is recorded is never
    reported again. One writer task does every write, one batch at a time;
    whatever comes in during a write goes into the next; the claims are
    renewed every third of the lease, with something to write or not.
    """

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.owner = new_owner()
        self.confirmed: deque[WatchResult] = deque()
        self.skipped = 0
        self.lost = 0
        self.error: BaseException | None = None
        self._start: Callable[[str, str, Any], None] = _unattached
        self._notify: Callable[[], None] = _nothing
        self._adds: list[RunKey] = []
        self._progress: dict[tuple[str, str], str] = {}
        self._finishes: list[WatchResult] = []
        self._wake = asyncio.Event()
        self._progress_timer: asyncio.TimerHandle | None = None
        self._batch: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._busy = False  # a batch with runs to add or ends to record is in flight
        self._renewed = time.monotonic()  # claims are made with a full lease
        self._closing = False

    def attach(
        self, start: Callable[[str, str, Any], None], notify: Callable[[], None]
    ) -> None:
        """Hand claimed runs to *start*; call *notify* when results are ready."""
        self._start = start
        self._notify = notify
        self._writer = asyncio.create_task(self._write())
        self._writer.add_done_callback(self._writer_done)

    def hook(self, on_status: OnStatus | None) -> OnStatus:
        """The caller's status hook, recording each change of status first."""

        def record_status(run: Run) -> Any:
            self._progress[run.thread_id, run.id] = str(run.status)
            if self._progress_timer is None:
                loop = asyncio.get_running_loop()
                self._progress_timer = loop.call_later(PROGRESS_DELAY, self._wake.set)
            return None if on_status is None else on_status(run)

        return record_status

    def offer(self, thread_id: str, run_id: str, key: Any) -> None:
        """Add a run read from the caller: watched once the store says it is ours."""
        if key is not None and not isinstance(key, str | int | float | bool):
            try:
                json.dumps(key)
            except (TypeError, ValueError):
                raise InvalidRequestError(
                    "runs",
                    f"with a store, a key must be a JSON value, not {key!r}",
                ) from None
        self._adds.append((thread_id, run_id, key))
        self._wake.set()

    def finish(self, results: deque[WatchResult]) -> None:
        """Take finished watches: they are yielded once their end is recorded."""
        self._finishes.extend(results)
        results.clear()
        self._wake.set()

    @property
    def idle(self) -> bool:
        """Nothing waits to be added, recorded or yielded."""
        return not (self._adds or self._finishes or self._busy or self.confirmed)

    def check(self) -> None:
        """Raise what stopped the writer, if anything did."""
        if self.error is not None:
            raise self.error

    async def claim_all(self) -> None:
        """Claim the store's open runs until none is left that others hold.

        Runs other workers hold are taken over when their leases lapse; it
        returns once every run in the store has ended or is ours.
        """
        store = self.store
        while True:
            claim = await store.claim(self.owner, CLAIM_BATCH)
            for thread_id, run_id, key in claim.runs:
                self._start(thread_id, run_id, key)
            if claim.runs:
                continue
            if not claim.waiting:
                return
            # Look again when the first lease lapses, or sooner: the runs
            # may end first, and then there is nothing to wait for.
            wait = store.lease if claim.retry_in is None else claim.retry_in
            await asyncio.sleep(min(max(wait, 0.01), store.lease, RECHECK))

    async def close(self) -> None:
        """Stop writing; give back what this worker holds and never reported."""
        self._closing = True
        if self._progress_timer is not None:
            self._progress_timer.cancel()
        writer = self._writer
        if writer is not None:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        if self._batch is not None:
            # A write in flight still lands: wait for it, to know which ends
            # it recorded.
            await asyncio.gather(self._batch, return_exceptions=True)
        reopen = [(r.thread_id, r.run_id) for r in self.confirmed]
        self.confirmed.clear()
        try:
            await self.store.release(self.owner, reopen)
        except StoreError as exc:
            if self.error is None:
                raise
            logger.warning("run store: could not release claims: %s", exc)

    async def _write(self) -> None:
        renew = self.store.lease / 3
        while True:
            if not (self._adds or self._finishes):
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(renew):
                        await self._wake.wait()
            self._batch = asyncio.create_task(self._commit())
            # Shielded: when watch_many closes, the write in flight still
            # lands, and close() waits for it.
            await asyncio.shield(self._batch)
            self._batch = None
            if self._busy:
                self._busy = False
                self._notify()  # results to yield, or the end of the work

    async def _commit(self) -> None:
        adds, self._adds = self._adds, []
        finishes, self._finishes = self._finishes, []
        progress, self._progress = self._progress, {}
        # Set here, not when the batch was made: ends offered since then are
        # in it too, and the scheduler must hear of them.
        self._busy = bool(adds or finishes)
        if self._progress_timer is not None:
            self._progress_timer.cancel()
            self._progress_timer = None
        if adds:
            claimed = await self.store.add(self.owner, adds)
            for (thread_id, run_id, key), ours in zip(adds, claimed, strict=True):
                if not ours:
                    self.skipped += 1
                elif not self._closing:
                    self._start(thread_id, run_id, key)
        ending = {(r.thread_id, r.run_id) for r in finishes}
        updates = [
            RunUpdate(thread_id=tid, run_id=rid, status=status)
            for (tid, rid), status in progress.items()
            if (tid, rid) not in ending
        ]
        first_end = len(updates)
        updates.extend(_ended(r) for r in finishes)
        now = time.monotonic()
        if now - self._renewed >= self.store.lease / 3:
            # Before the writes: a claim must not lapse while they wait.
            self._renewed = now
            await self.store.renew(self.owner)
        written = await self.store.record(self.owner, updates)
        for result, ours in zip(finishes, written[first_end:], strict=True):
            if ours:
                self.confirmed.append(result)
            else:
                self.lost += 1
                logger.warning(
                    "run %s: another worker took it over (this worker's lease "
                    "lapsed); its result is theirs to report",
                    result.run_id,
                )

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.error = exc
            self._notify()


def _ended(result: WatchResult) -> RunUpdate:
    final = result.final_run
    return RunUpdate(
        thread_id=result.thread_id,
        run_id=result.run_id,
        status=None if final is None else str(final.status),
        ended=True,
        run=final,
        error=None if result.error is None else describe_error(result.error),
    )


def _unattached(thread_id: str, run_id: str, key: Any) -> None:
    raise AssertionError("Journal.attach() was not called")  # pragma: no cover


def _nothing() -> None:  # pragma: no cover - replaced by attach()
    pass
