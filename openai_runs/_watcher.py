"""Watch one run: the driver of the watch state machine for a single task."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Protocol, Self, Unpack

import attrs

from . import _observe, _wheel
from ._retry import RetryPolicy
from ._tools import serve_tool_calls
from ._watch_core import (
    Finish,
    RunCalls,
    Send,
    Serve,
    Settings,
    Sleep,
    WatchMachine,
    WatchOptions,
)
from .exceptions import APITimeoutError, ToolCallError
from .models import Run

__all__ = ["RunWatcher", "WatchClient", "WatchState"]

logger = logging.getLogger("openai_runs")

Clock = Callable[[], float]


class WatchClient(Protocol):
    """What a watch needs of a client: its Runs calls and its retry policy."""

    @property
    def runs(self) -> RunCalls: ...

    @property
    def retry_policy(self) -> RetryPolicy: ...


@attrs.frozen(kw_only=True)
class WatchState:
    """A watch saved as plain data, to go on with it after a restart.

    Turn it into a dict with `openai_runs.converter.unstructure(state)` and
    back with `converter.structure(data, WatchState)`.

    Attributes:
        thread_id: The thread that was run.
        run_id: The watched run.
        deadline: When the watch gives up, in Unix seconds (wall clock, since
            the monotonic clock does not survive a restart).
        polls: Polls made so far.
        retries: Transient faults retried so far.
        status: The last status seen, if any.
    """

    thread_id: str
    run_id: str
    deadline: float
    polls: int = 0
    retries: int = 0
    status: str | None = None


async def send(
    runs: RunCalls, machine: WatchMachine, action: Send, clock: Clock
) -> bool:
    """Send the request *action* names and feed the answer to *machine*.

    Returns:
        Whether the run's status changed.
    """
    tid, rid, timeout = machine.thread_id, machine.run_id, action.timeout
    # With telemetry on, the watch is the parent of the request (one check off).
    trace = machine.trace
    entered = None if trace is None else trace.enter(machine.failures)
    try:
        # The whole call, waiting for the client's budget included, ends by
        # the deadline: a run past it needs no request slot to be reported.
        async with asyncio.timeout(timeout):
            poll_after_ms = None
            if action.call == "retrieve":
                response = await runs.retrieve_response(
                    tid, rid, timeout=timeout, max_retries=0
                )
                run, poll_after_ms = response.parsed, response.poll_after_ms
            elif action.call == "submit":
                run = await runs.submit_tool_outputs(
                    tid,
                    rid,
                    tool_outputs=machine.outputs,
                    timeout=timeout,
                    max_retries=0,
                )
            else:
                run = await runs.cancel(tid, rid, timeout=timeout, max_retries=0)
    except TimeoutError:
        fault = APITimeoutError(f"watch {rid}: no answer to the {action.call} in time")
        machine.on_fault(action.call, fault, clock())
        return False
    except Exception as exc:  # noqa: BLE001 - the machine decides what it means
        machine.on_fault(action.call, exc, clock())
        return False
    finally:
        if trace is not None:
            trace.leave(entered)
    return machine.on_run(action.call, run, clock(), poll_after_ms=poll_after_ms)


async def serve(
    settings: Settings, machine: WatchMachine, action: Serve, clock: Clock
) -> None:
    """Have the tool handler answer *action*'s run and feed the outputs to *machine*."""
    handler = settings.tool_handler
    assert handler is not None
    if machine.trace is not None:
        handler = machine.trace.tools(handler)
    try:
        async with asyncio.timeout(max(action.until - clock(), 0.0)):
            outputs = await serve_tool_calls(
                handler,
                action.run,
                limit=settings.policy.max_tool_calls,
            )
    except TimeoutError:
        machine.on_serve_timeout(clock())
    except ToolCallError as exc:
        machine.on_tool_error(exc, clock())
    else:
        machine.on_outputs(outputs, clock())


async def report(settings: Settings, run: Run) -> None:
    """Call the status hook with *run*."""
    if settings.on_status is not None:
        result = settings.on_status(run)
        if inspect.isawaitable(result):
            await result


class RunWatcher:
    """Polls a run until it ends, or until it needs the caller.

    Made by `client.runs.watch(thread_id, run_id, ...)` (or directly, as
    `RunWatcher(client, thread_id, run_id, ...)`). `await watcher` (or
    `await watcher.wait()`) returns the run once it is terminal (`completed`,
    `failed`, `cancelled`, `expired`, `incomplete`) or `requires_action`
    (which is not an end: the run waits for tool outputs). Given a
    *tool_handler*, the watcher serves `requires_action` itself: it answers
    the tool calls (concurrently, up to the policy's *max_tool_calls*),
    submits the outputs in one request in the API's order, and watches on; a
    call id the server accepted is never served again. `async for run in
    watcher` yields the run at each change of status. A status this version
    does not know keeps the normal cadence and ends the watch only when the
    run carries a terminal timestamp.

    Transient faults (connection errors, timeouts, 429, 5xx, malformed
    bodies) are retried within the deadline, honouring `Retry-After`, and
    logged at WARNING when they repeat; permanent ones (401, 403, 404, 400)
    end the watch with their typed error. Every request goes through the
    client's budget. A watcher is used once.

    Args:
        client: The client to poll with (anything with its `runs` calls and
            `retry_policy`).
        thread_id: The thread that was run.
        run_id: The run to watch.
        clock: The monotonic clock, for tests.
        sleep: The sleep, for tests; by default the watch sleeps on a timer
            wheel shared by every watch of the event loop (a 25 ms grid, so
            thousands of watches wake, and poll, in batches; never early,
            never past the deadline).
        **options: The [WatchOptions][openai_runs.WatchOptions]: *timeout*,
            *cancel_on_timeout*, *policy*, *on_status*, *tool_handler*.

    Raises:
        InvalidRequestError: *timeout* is negative, NaN or infinite.
        TypeError: An unknown option.
    """

    __slots__ = (
        "_client",
        "_clock",
        "_machine",
        "_settings",
        "_sleep",
        "run_id",
        "thread_id",
    )

    def __init__(
        self,
        client: WatchClient,
        thread_id: str,
        run_id: str,
        *,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        **options: Unpack[WatchOptions],
    ) -> None:
        self._settings = Settings.of(options)
        self._client = client
        self.thread_id = thread_id
        self.run_id = run_id
        self._clock = clock
        self._sleep = sleep
        self._machine: WatchMachine | None = None

    def __repr__(self) -> str:
        status = None if self.run is None else str(self.run.status)
        return f"<RunWatcher {self.run_id} status={status} polls={self.polls}>"

    @property
    def timeout(self) -> float:
        """Seconds the whole watch may take."""
        return self._settings.timeout

    @property
    def run(self) -> Run | None:
        """The last state of the run seen, or *None* before the first poll."""
        return None if self._machine is None else self._machine.run

    @property
    def polls(self) -> int:
        """Polls sent so far."""
        return 0 if self._machine is None else self._machine.polls

    @property
    def retries(self) -> int:
        """Transient faults retried so far."""
        return 0 if self._machine is None else self._machine.retries

    @property
    def last_error(self) -> Exception | None:
        """The last transient fault retried, until an answer comes."""
        return None if self._machine is None else self._machine.last_error

    @property
    def elapsed(self) -> float:
        """Seconds the watch took, or has taken so far (0 before it starts)."""
        machine = self._machine
        if machine is None:
            return 0.0
        ended = self._clock() if machine.ended is None else machine.ended
        return ended - machine.started

    def state(self) -> WatchState:
        """Save this watch as plain data; see [resume][openai_runs.RunWatcher.resume].

        Returns:
            The ids, the deadline in Unix seconds, the counters, the status.
        """
        machine = self._machine
        remaining = (
            self.timeout if machine is None else machine.deadline - self._clock()
        )
        return WatchState(
            thread_id=self.thread_id,
            run_id=self.run_id,
            deadline=time.time() + remaining,
            polls=self.polls,
            retries=self.retries,
            status=None if self.run is None else str(self.run.status),
        )

    @classmethod
    def resume(
        cls, client: WatchClient, state: WatchState, **options: Unpack[WatchOptions]
    ) -> Self:
        """Go on with a watch saved by [state][openai_runs.RunWatcher.state].

        The first poll is reported as a change of status, since this process
        has not seen the run yet.

        Args:
            client: The client to poll with.
            state: The saved watch.
            **options: As for [RunWatcher][openai_runs.RunWatcher]; a
                *timeout* here is ignored: the saved deadline holds.

        Returns:
            A watcher whose deadline and counters are the saved ones; a
            deadline already past ends it at its first step.
        """
        options["timeout"] = max(state.deadline - time.time(), 0.0)
        watcher = cls(client, state.thread_id, state.run_id, **options)
        machine = watcher._start()
        machine.polls = state.polls
        machine.retries = state.retries
        return watcher

    def __await__(self) -> Generator[None, None, Run]:
        return self.wait().__await__()

    async def wait(self) -> Run:
        """Poll until the run ends or needs the caller, and return it.

        Returns:
            The run: terminal, or `requires_action` when there is no
            *tool_handler*.

        Raises:
            WatchTimeoutError: The deadline passed; its `run` is the last
                run seen (after a timed cancel, how the run ended), its
                `last_error` the last fault retried.
            ToolCallError: The tool handler raised.
            APIStatusError: A permanent fault, such as 401 or 404, or tool
                outputs the API refused.
        """
        async for _ in self:
            pass
        assert self.run is not None  # the loop above ends only after a poll
        return self.run

    def __aiter__(self) -> AsyncIterator[Run]:
        return self._changes()

    def _start(self) -> WatchMachine:
        if self._machine is None:
            self._machine = WatchMachine(
                self.thread_id,
                self.run_id,
                settings=self._settings,
                retry=self._client.retry_policy,
                now=self._clock(),
            )
            if _observe.hooks is not None:
                self._machine.trace = _observe.hooks.watch(
                    "watch",
                    getattr(self._client, "base_url", None),
                    self.thread_id,
                    self.run_id,
                )
        return self._machine

    async def _changes(self) -> AsyncIterator[Run]:
        """Yield the run at each change of status until the watch ends."""
        machine = self._start()
        runs = self._client.runs
        clock = self._clock
        try:
            while True:
                action = machine.next(clock())
                if isinstance(action, Finish):
                    if action.error is not None:
                        raise action.error
                    return
                if isinstance(action, Sleep):
                    now = clock()
                    if self._sleep is None:
                        await _wheel.sleep(
                            action.until - now, limit=machine.limit - now
                        )
                    else:
                        await self._sleep(max(action.until - now, 0.0))
                elif isinstance(action, Serve):
                    await serve(self._settings, machine, action, clock)
                elif await send(runs, machine, action, clock):
                    assert machine.run is not None
                    await report(self._settings, machine.run)
                    yield machine.run
        except asyncio.CancelledError:
            if machine.on_caller_cancel(clock()):
                await asyncio.shield(asyncio.ensure_future(self._cancel_run(machine)))
            raise
        finally:
            machine.ended = clock()
            if machine.trace is not None:
                machine.trace.close()

    async def _cancel_run(self, machine: WatchMachine) -> None:
        """Cancel the run on the server, retried within the grace (caller cancel)."""
        runs, clock = self._client.runs, self._clock
        while not isinstance(action := machine.next(clock()), Finish):
            if isinstance(action, Sleep):
                await asyncio.sleep(max(action.until - clock(), 0.0))
            elif isinstance(action, Send):
                await send(runs, machine, action, clock)
        logger.debug("watch %s: cancelled on the caller's cancel", self.run_id)
