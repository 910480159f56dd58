"""Watch thousands of runs at once: one scheduler over a heap of watch machines."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable
from typing import Any

import attrs

from . import _observe
from ._budget import DEFAULT_MAX_IN_FLIGHT
from ._journal import Journal
from ._watch_core import Finish, Send, Serve, Settings, Sleep, WatchMachine
from ._watcher import Clock, WatchClient, report, send, serve
from .exceptions import InvalidRequestError, OpenAIRunsError
from .models import Run
from .store import RunStore

__all__ = ["RunRef", "WatchResult", "watch_many"]

RunRef = Run | tuple[str, str] | tuple[str, str, Any]
"""A [Run][openai_runs.Run], `(thread_id, run_id)`, or `(thread_id, run_id, key)`."""

TICK = 0.025
"""Sleeps end on a grid of this many seconds, so polls go out in batches.

A poll sent on its own costs about three times the CPU of one sent with
others (an event-loop wake-up and a socket round of its own); rounding each
wake-up up to the grid costs at most this much latency, never takes a watch
past its deadline, and never sends a poll before its interval or hint.
"""


def _on_tick(when: float) -> float:
    return math.ceil(when / TICK) * TICK


@attrs.frozen(kw_only=True)
class WatchResult:
    """How one run's watch in `watch_many` ended.

    Attributes:
        thread_id: The thread that was run.
        run_id: The run.
        key: The caller's tag (the third item of the tuple), or *None*.
        run: The final run (terminal, or `requires_action` without a tool
            handler), or *None* when the watch failed.
        error: What ended the watch when it failed: a
            [WatchTimeoutError][openai_runs.exceptions.WatchTimeoutError] (its
            `run` is the last run seen), a
            [ToolCallError][openai_runs.exceptions.ToolCallError], or a
            permanent API error; *None* otherwise.
    """

    thread_id: str
    run_id: str
    key: Any = None
    run: Run | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        """Whether the watch ended with a run rather than an error.

        A `failed` run is `ok`: the watch did its job and saw how the run
        ended. Check `final_run.status` for how the run itself went.
        """
        return self.error is None

    @property
    def final_run(self) -> Run | None:
        """The last run seen, from `run` or from the error (*None* if never seen)."""
        if self.run is not None:
            return self.run
        return getattr(self.error, "run", None)


@attrs.define(eq=False, slots=True)
class _Watch:
    machine: WatchMachine
    key: Any


async def watch_many(
    client: WatchClient,
    runs: Iterable[RunRef] | AsyncIterable[RunRef],
    settings: Settings,
    *,
    clock: Clock = time.monotonic,
    store: RunStore | None = None,
    resume: bool = False,
) -> AsyncGenerator[WatchResult, None]:
    """Watch many runs; the implementation of `Runs.watch_many` and `resume_many`.

    Their docstrings say what the arguments do; *client* polls. With a
    *store*, the runs are recorded there (see [Journal][]); with *resume*,
    *runs* is ignored and the store's open runs are claimed instead.
    """
    scheduler = _Scheduler(client, settings, clock)
    journal = None if store is None else _recorded_in(store, scheduler)
    results = scheduler.results if journal is None else journal.confirmed
    feeder = asyncio.create_task(
        journal.claim_all() if resume and journal else scheduler.feed(runs)
    )
    feeder.add_done_callback(lambda _: scheduler.notify())
    try:
        while True:
            if journal is not None:
                journal.check()
                if scheduler.results:
                    journal.finish(scheduler.results)
            while results:
                yield results.popleft()
            if feeder.done():
                feeder.result()  # a bad item in *runs* ends it all
                if not (scheduler.heap or scheduler.working) and (
                    journal is None or journal.idle
                ):
                    return
            await scheduler.step()
    finally:
        scheduler.closing = True
        feeder.cancel()
        tasks = scheduler.working
        for task in tasks:
            task.cancel()
        await asyncio.gather(feeder, *tasks, return_exceptions=True)
        for _, _, watch in scheduler.heap:
            if watch.machine.trace is not None:
                watch.machine.trace.close()
        if journal is not None:
            await journal.close()


def _recorded_in(store: RunStore, scheduler: _Scheduler) -> Journal:
    """Have *scheduler*'s runs claimed in, and recorded to, *store*."""
    journal = Journal(store)
    settings = scheduler.settings
    scheduler.settings = attrs.evolve(
        settings, on_status=journal.hook(settings.on_status)
    )
    journal.attach(scheduler.start, scheduler.notify)
    scheduler.admit = journal.offer
    return journal


class _Scheduler:
    """The heap of sleeping watches, and a task for each request or handler at work.

    A sleeping run is a heap entry and a machine of a few hundred bytes;
    only a request in flight or a tool handler at work has a task. The
    client's budget bounds the requests; the scheduler starts no more request
    tasks than its `max_in_flight` lets through at once, and leaves the other
    due runs on the heap (a task waiting for the budget costs a coroutine
    stack, a future and timers: 10,000 runs due at once were ~3 KiB a run).
    """

    def __init__(self, client: WatchClient, settings: Settings, clock: Clock) -> None:
        self.client = client
        self.runs = client.runs
        self.settings = settings
        self.clock = clock
        self.heap: list[tuple[float, int, _Watch]] = []
        self.working: set[asyncio.Task[None]] = set()
        self.results: deque[WatchResult] = deque()
        self.closing = False
        # What step() sleeps on: a future set by notify(), or its timer at
        # `until`; a finished request wakes it only if that changes its plan.
        self.waiter: asyncio.Future[None] | None = None
        self.until = math.inf
        self.order = itertools.count()
        # Request tasks at work, and how many the budget lets through at once
        # (None: no bound, every due run gets its task).
        self.sending = 0
        budget = getattr(client, "budget", None)
        self.max_sending: int | None = getattr(
            budget, "max_in_flight", DEFAULT_MAX_IN_FLIGHT
        )
        # Where a run read from the caller goes: straight to the heap, or
        # first to the store to be claimed.
        self.admit: Callable[[str, str, Any], None] = self.start

    async def feed(self, runs: Iterable[RunRef] | AsyncIterable[RunRef]) -> None:
        """Read *runs* into the heap, each first poll spread over a cadence."""
        if isinstance(runs, AsyncIterable):
            async for ref in runs:
                self.add(ref)
        else:
            for ref in runs:
                self.add(ref)

    def add(self, ref: RunRef) -> None:
        """Take one item of the caller's *runs*."""
        given: object = ref  # a caller's iterable may hold anything
        key = None
        if isinstance(given, Run):
            thread_id, run_id = given.thread_id, given.id
        elif isinstance(given, tuple | list) and len(given) in (2, 3):
            thread_id, run_id = given[0], given[1]
            key = given[2] if len(given) == 3 else None
        else:
            raise InvalidRequestError(
                "runs", f"expected a Run or (thread_id, run_id[, key]), got {ref!r}"
            )
        self.admit(thread_id, run_id, key)

    def start(self, thread_id: str, run_id: str, key: Any) -> None:
        """Start watching a run: its first poll goes on the heap."""
        now = self.clock()
        machine = WatchMachine(
            thread_id,
            run_id,
            settings=self.settings,
            retry=self.client.retry_policy,
            now=now,
        )
        if _observe.hooks is not None:
            base_url = getattr(self.client, "base_url", None)
            machine.trace = _observe.hooks.watch(
                "watch_many", base_url, thread_id, run_id
            )
        spread = random.uniform(0, self.settings.policy.initial)  # noqa: S311
        # Neither the spread nor the grid may take a poll past the deadline.
        first = min(_on_tick(now + spread), machine.deadline)
        self.push(first, _Watch(machine, key))

    def push(self, due: float, watch: _Watch) -> None:
        heapq.heappush(self.heap, (due, next(self.order), watch))
        # A sleeping step() needs waking only if this falls due before its
        # timer.
        if due < self.until:
            self.notify()

    def notify(self) -> None:
        """Wake [step][] to send, yield or finish."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def advance(self, watch: _Watch, now: float) -> None:
        """Do what *watch*'s machine says next: report, sleep, send or serve."""
        machine = watch.machine
        action = machine.next(now)
        if isinstance(action, Finish):
            self.results.append(
                WatchResult(
                    thread_id=machine.thread_id,
                    run_id=machine.run_id,
                    key=watch.key,
                    run=action.run if action.error is None else None,
                    error=action.error,
                )
            )
            machine.ended = now
            if machine.trace is not None:
                machine.trace.close()
            self.notify()
        elif isinstance(action, Sleep):
            self.push(min(_on_tick(action.until), machine.limit), watch)
        else:
            sends = isinstance(action, Send)
            self.sending += sends
            task = asyncio.create_task(self.work(watch, action))
            self.working.add(task)
            task.add_done_callback(lambda t: self.done(t, watch, sends=sends))

    def full(self) -> bool:
        """Whether as many requests are at work as the budget lets through."""
        return self.max_sending is not None and self.sending >= self.max_sending

    async def step(self) -> None:
        """Advance every watch that is due, then wait for news."""
        now = self.clock()
        heap = self.heap
        while heap and heap[0][0] <= now and not self.full():
            _, _, watch = heapq.heappop(heap)
            self.advance(watch, now)
        if self.results:
            return
        # Full: a request that ends (done) wakes this up; no timer needed.
        self.until = heap[0][0] if heap and not self.full() else math.inf
        loop = asyncio.get_running_loop()
        self.waiter = waiter = loop.create_future()
        # A timer handle and a future: cheaper per wake-up than asyncio.timeout
        # around an Event.
        timer = None
        if self.until != math.inf:
            timer = loop.call_later(max(self.until - now, 0.0), self.notify)
        try:
            await waiter
        finally:
            self.waiter = None
            self.until = -math.inf  # awake: everything is news until it sleeps
            if timer is not None:
                timer.cancel()

    async def work(self, watch: _Watch, action: Send | Serve) -> None:
        """Send the request or serve the tools; report a change of status."""
        machine = watch.machine
        if isinstance(action, Serve):
            await serve(self.settings, machine, action, self.clock)
            return
        if await send(self.runs, machine, action, self.clock):
            assert machine.run is not None
            try:
                await report(self.settings, machine.run)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # watch_many itself is closing
                # The hook raised CancelledError of its own accord: a failure
                # of the hook, reported for its run like any other.
                machine.fail(
                    OpenAIRunsError("the on_status hook raised CancelledError")
                )
            except Exception as exc:  # noqa: BLE001 - reported for its run
                machine.fail(exc)

    def done(self, task: asyncio.Task[None], watch: _Watch, *, sends: bool) -> None:
        self.working.discard(task)
        if sends:
            if self.full():
                self.notify()  # a slot frees: due runs left on the heap may go
            self.sending -= 1
        if self.closing:
            if watch.machine.trace is not None:
                watch.machine.trace.close()  # never finished: watch_many closed
            return
        if task.cancelled():
            # Nothing but watch_many's own close cancels a task; if anything
            # else did, the run still gets its one result.
            watch.machine.fail(OpenAIRunsError("the watch was cancelled"))
        elif (exc := task.exception()) is not None:
            if not isinstance(exc, Exception):  # pragma: no cover - KeyboardInterrupt
                raise exc
            watch.machine.fail(exc)
        self.advance(watch, self.clock())
