"""Watch thousands of runs at once: one scheduler over a heap of next polls."""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import math
import random
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Iterable
from typing import TYPE_CHECKING, Any

import attrs
import tenacity

from ._retry import retry_wait
from ._tools import ToolHandler
from ._watcher import OnStatus, PollPolicy, RunWatcher, is_retryable
from .exceptions import InvalidRequestError, RateLimitError, ToolCallError
from .models import Run

if TYPE_CHECKING:
    from ._client import RunsClient

__all__ = ["WatchResult", "watch_many"]

RunRef = tuple[str, str] | tuple[str, str, Any]
"""``(thread_id, run_id)``, or ``(thread_id, run_id, key)`` to tag the run."""

DEFAULT_MAX_IN_FLIGHT = 64

TICK = 0.025
"""Polls fall due on a grid of this many seconds, so they go out in batches.

A poll sent on its own costs about three times the CPU of one sent with
others (an event-loop wake-up and a socket round of its own); rounding each
next poll up to the grid costs at most this much latency and never sends a
poll before its interval or the server's hint.
"""


def _on_tick(when: float) -> float:
    return math.ceil(when / TICK) * TICK


@attrs.frozen(kw_only=True)
class WatchResult:
    """How one run's watch in :func:`watch_many` ended.

    Attributes:
        thread_id: The thread that was run.
        run_id: The run.
        key: The caller's tag (the third item of the tuple), or *None*.
        run: The final run (terminal, or ``requires_action`` without a tool
            handler), or *None* when the watch failed.
        error: What ended the watch when it failed: a
            :class:`~openai_runs.exceptions.WatchTimeoutError` (its ``run`` is
            the last run seen), a
            :class:`~openai_runs.exceptions.ToolCallError`, or a permanent
            API error; *None* otherwise.
    """

    thread_id: str
    run_id: str
    key: Any = None
    run: Run | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        """Whether the watch ended with a run rather than an error."""
        return self.error is None


async def watch_many(
    client: RunsClient,
    runs: Iterable[RunRef] | AsyncIterable[RunRef],
    *,
    timeout: float | None = None,
    cancel_on_timeout: bool = False,
    policy: PollPolicy | None = None,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    max_polls_per_second: float | None = None,
    on_status: OnStatus | None = None,
    tool_handler: ToolHandler | None = None,
    cancel_on_tool_error: bool = True,
) -> AsyncGenerator[WatchResult, None]:
    """Watch many runs; the implementation of :meth:`Runs.watch_many`.

    Its docstring says what each argument does; *client* polls.
    """
    if max_in_flight < 1:
        raise InvalidRequestError("max_in_flight", "must be 1 or more")
    if max_polls_per_second is not None and max_polls_per_second <= 0:
        raise InvalidRequestError("max_polls_per_second", "must be more than 0")
    scheduler = _Scheduler(
        client,
        policy=policy or PollPolicy(),
        timeout=timeout,
        cancel_on_timeout=cancel_on_timeout,
        max_in_flight=max_in_flight,
        on_status=on_status,
        tool_handler=tool_handler,
        cancel_on_tool_error=cancel_on_tool_error,
        spacing=None if max_polls_per_second is None else 1 / max_polls_per_second,
    )
    feeder = asyncio.create_task(scheduler.feed(runs))
    feeder.add_done_callback(lambda _: scheduler.notify())
    try:
        while True:
            while scheduler.results:
                yield scheduler.results.popleft()
            if feeder.done():
                feeder.result()  # a bad item in *runs* ends it all
                if not (scheduler.heap or scheduler.in_flight or scheduler.serving):
                    return
            await scheduler.step()
    finally:
        feeder.cancel()
        tasks = scheduler.in_flight | scheduler.serving
        for task in tasks:
            task.cancel()
        await asyncio.gather(feeder, *tasks, return_exceptions=True)


class _Scheduler:
    """The heap of next polls, and the few tasks for requests in flight.

    Only a request in flight, or a tool handler at work, has a task; a
    sleeping run is a heap entry and a :class:`RunWatcher` of a few hundred
    bytes.
    """

    def __init__(
        self,
        client: RunsClient,
        *,
        policy: PollPolicy,
        timeout: float | None,
        cancel_on_timeout: bool,
        max_in_flight: int,
        on_status: OnStatus | None,
        tool_handler: ToolHandler | None,
        cancel_on_tool_error: bool,
        spacing: float | None,
    ) -> None:
        self.client = client
        self.policy = policy
        self.timeout = timeout
        self.cancel_on_timeout = cancel_on_timeout
        self.max_in_flight = max_in_flight
        self.on_status = on_status
        self.tool_handler = tool_handler
        self.cancel_on_tool_error = cancel_on_tool_error
        self.spacing = spacing
        self.heap: list[tuple[float, int, RunWatcher, Any]] = []
        self.in_flight: set[asyncio.Task[float | None]] = set()
        # Tool handlers at work: not requests, so not bound by max_in_flight.
        self.serving: set[asyncio.Task[float | None]] = set()
        self.results: deque[WatchResult] = deque()
        # What step() sleeps on: a future set by notify(), or its timer at
        # `until`; a finished request wakes it only if that changes its plan.
        self.waiter: asyncio.Future[None] | None = None
        self.until = math.inf
        self.order = itertools.count()
        self.next_send = 0.0  # the polls-per-second cap: no send before this
        self.paused_until = 0.0  # the shared back-off after a 429
        # One tenacity controller decides for every run whether a fault is
        # retried and how long to wait; the heap does the waiting.
        self.retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(is_retryable),
            wait=retry_wait(policy.retry),
        )

    async def feed(self, runs: Iterable[RunRef] | AsyncIterable[RunRef]) -> None:
        """Read *runs* into the heap, each first poll spread over a cadence."""
        if isinstance(runs, AsyncIterable):
            async for ref in runs:
                self.add(ref)
        else:
            for ref in runs:
                self.add(ref)

    def add(self, ref: RunRef) -> None:
        given: object = ref  # a caller's iterable may hold anything
        if not isinstance(given, tuple | list) or len(given) not in (2, 3):
            raise InvalidRequestError(
                "runs", f"expected (thread_id, run_id[, key]), got {ref!r}"
            )
        watcher = RunWatcher(
            self.client,
            ref[0],
            ref[1],
            timeout=self.timeout,
            cancel_on_timeout=self.cancel_on_timeout,
            policy=self.policy,
            on_status=self.on_status,
            tool_handler=self.tool_handler,
            cancel_on_tool_error=self.cancel_on_tool_error,
        )
        watcher._begin()
        now = time.monotonic()
        spread = random.uniform(0, self.policy.initial)  # noqa: S311
        # Neither the spread nor the grid may take a poll past the deadline.
        first = min(_on_tick(now + spread), now + watcher._remaining())
        key = ref[2] if len(ref) == 3 else None
        heapq.heappush(self.heap, (first, next(self.order), watcher, key))
        if first < self.until:
            self.notify()

    def notify(self) -> None:
        """Wake :meth:`step` to send, yield or finish."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def step(self) -> None:
        """Send every poll that is due and allowed, then wait for news."""
        now = time.monotonic()
        while (
            self.heap
            and self.heap[0][0] <= now
            and len(self.in_flight) < self.max_in_flight
            and now >= self.next_send
        ):
            _, _, watcher, key = heapq.heappop(self.heap)
            if now < self.paused_until:
                # The shared back-off holds the run, but not past its deadline.
                until = min(self.paused_until, now + watcher._remaining())
                if until > now:
                    heapq.heappush(self.heap, (until, next(self.order), watcher, key))
                    continue
            if watcher._needs_tools():
                task = asyncio.create_task(self.serve(watcher))
                self.serving.add(task)
            else:
                task = asyncio.create_task(self.turn(watcher))
                self.in_flight.add(task)
            task.add_done_callback(
                functools.partial(self.done, watcher=watcher, key=key)
            )
            if self.spacing is not None and task in self.in_flight:
                self.next_send = max(self.next_send, now) + self.spacing
        if self.results:
            return
        self.until = math.inf
        if self.heap and len(self.in_flight) < self.max_in_flight:
            self.until = max(self.heap[0][0], self.next_send)
        loop = asyncio.get_running_loop()
        self.waiter = waiter = loop.create_future()
        # A timer handle and a future: cheaper per wake-up than asyncio.timeout
        # around an Event, which this loop used to pay for every poll.
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

    async def serve(self, watcher: RunWatcher) -> float | None:
        """Have *watcher*'s tool handler answer its run; submit at once after.

        A failed handler's cancel is a request: it waits for a slot, in
        :meth:`turn`, like any other.

        Raises:
            ToolCallError: The handler raised (and the run is not to be
                cancelled).
        """
        try:
            await watcher._serve_tools(cancel=False)
        except ToolCallError as exc:
            if not watcher.cancel_on_tool_error:
                raise
            watcher._tool_error = exc
        return 0.0

    async def turn(self, watcher: RunWatcher) -> float | None:
        """Send *watcher*'s next request; return the delay to its next one.

        Returns:
            Seconds until the next request, or *None* when the watch is over.

        Raises:
            WatchTimeoutError: The run's deadline passed.
            APIStatusError: A permanent fault.
            ToolCallError: The tool handler raised (the run now cancelled).
        """
        if (failed := watcher._tool_error) is not None:
            failed.run = await watcher._cancel_shielded() or failed.run
            raise failed
        try:
            run, poll_after_ms = await watcher._request()
        except Exception as exc:
            state = tenacity.RetryCallState(self.retrying, None, (), {})
            state.attempt_number = watcher._failures + 1
            state.set_exception((type(exc), exc, exc.__traceback__))
            if not self.retrying.retry(state):
                raise
            delay = self.retrying.wait(state)
            watcher.retries += 1
            watcher._failures += 1
            if isinstance(exc, RateLimitError):
                # One back-off for all: a 429 means the whole key is throttled.
                self.paused_until = max(self.paused_until, time.monotonic() + delay)
            return max(min(delay, watcher._remaining()), 0.0)
        watcher._failures = 0
        if watcher._observe(run):
            await watcher._report(run)
        return watcher._next_delay(run, poll_after_ms)

    def done(
        self, task: asyncio.Task[float | None], watcher: RunWatcher, key: Any
    ) -> None:
        self.in_flight.discard(task)
        self.serving.discard(task)
        if task.cancelled():
            self.notify()
            return
        ids = {"thread_id": watcher.thread_id, "run_id": watcher.run_id, "key": key}
        exc = task.exception()
        if isinstance(exc, Exception):
            self.results.append(WatchResult(**ids, error=exc))
            self.notify()
            return
        if exc is not None:  # pragma: no cover - KeyboardInterrupt and the like
            raise exc
        delay = task.result()
        if delay is None:
            self.results.append(WatchResult(**ids, run=watcher.run))
            self.notify()
            return
        now = time.monotonic()
        due = now + delay
        if delay > 0:
            due = min(_on_tick(due), now + max(watcher._remaining(), 0.0))
        heapq.heappush(self.heap, (due, next(self.order), watcher, key))
        # A sleeping step() needs waking only if this poll falls due before
        # its timer, or it slept for want of a free slot (no timer then).
        if due < self.until or self.until == math.inf:
            self.notify()
