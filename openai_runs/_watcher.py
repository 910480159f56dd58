"""Watch one run to its end: cadence, fault retries, deadline, timed cancel."""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Self

import attrs
import tenacity

from ._retry import RetryPolicy, is_transient, retry_wait
from ._tools import ToolHandler, serve_tool_calls
from .exceptions import (
    APIDecodeError,
    APITimeoutError,
    BadRequestError,
    InvalidRequestError,
    OpenAIRunsError,
    ToolCallError,
    WatchTimeoutError,
)
from .models import Run, RunStatus, ToolOutput

if TYPE_CHECKING:
    from ._client import RunsClient

__all__ = ["PollPolicy", "RunWatcher", "WatchState"]

logger = logging.getLogger("openai_runs")

OnStatus = Callable[[Run], Awaitable[None] | None]
"""A status hook: a plain function or a coroutine function taking the run."""

_positive = attrs.validators.gt(0.0)
_not_negative = attrs.validators.ge(0.0)


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How a watch polls: four separate knobs, as the best pollers keep them.

    1. The *cadence* while the run is busy: the first interval, growing by
       *multiplier* up to *maximum*, plus up to *jitter* (a fraction) of
       random extra. It starts again from *initial* whenever the status
       changes. An ``openai-poll-after-ms`` header, read on every response and
       clamped to [*min_poll_after*, *max_poll_after*], replaces the cadence
       for the sleep that follows it.
    2. The *error retry* of transient faults (:class:`RetryPolicy`), which
       honours ``Retry-After``; a busy run is not a fault.
    3. The *per-request timeout*.
    4. The default *deadline* of the whole watch, so no run is polled forever.

    Attributes:
        initial: The first poll interval, in seconds (0.25).
        multiplier: How the interval grows while the status stays (1.5).
        maximum: The cap on the interval, in seconds (5).
        jitter: Random extra, as a fraction of each interval (0.1).
        min_poll_after: The shortest server hint obeyed, in seconds (0.1).
        max_poll_after: The longest server hint obeyed, in seconds (30).
        retry: The backoff for transient faults.
        request_timeout: Seconds for one request (30), never past the deadline.
        deadline: The default *timeout* of a watch, in seconds (900).
        cancel_grace: How long a timed or caller cancel may take, in seconds (15).
        expiry_slack: How long past the run's ``expires_at`` a watch goes on,
            in seconds (60).
        max_tool_calls: How many tool calls of one run a tool handler serves
            at once (8).
    """

    initial: float = attrs.field(default=0.25, validator=_positive)
    multiplier: float = attrs.field(default=1.5, validator=attrs.validators.ge(1.0))
    maximum: float = attrs.field(default=5.0, validator=_positive)
    jitter: float = attrs.field(default=0.1, validator=_not_negative)
    min_poll_after: float = attrs.field(default=0.1, validator=_not_negative)
    max_poll_after: float = attrs.field(default=30.0, validator=_positive)
    retry: RetryPolicy = RetryPolicy()
    request_timeout: float = attrs.field(default=30.0, validator=_positive)
    deadline: float = attrs.field(default=900.0, validator=_positive)
    cancel_grace: float = attrs.field(default=15.0, validator=_not_negative)
    expiry_slack: float = attrs.field(default=60.0, validator=_not_negative)
    max_tool_calls: int = attrs.field(default=8, validator=attrs.validators.ge(1))


@attrs.frozen(kw_only=True)
class WatchState:
    """A watch saved as plain data, to go on with it after a restart.

    Turn it into a dict with ``openai_runs.converter.unstructure(state)`` and
    back with ``converter.structure(data, WatchState)``.

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


def is_retryable(exc: BaseException) -> bool:
    """Whether a poll that raised *exc* is worth another try within the deadline.

    Like :func:`is_transient`, plus a 2xx body that is not a run: while a watch
    polls, a malformed body is a glitch, bounded by the deadline. Never true
    for ``CancelledError``, ``KeyboardInterrupt`` or ``SystemExit``.
    """
    return is_transient(exc) or isinstance(exc, APIDecodeError)


class RunWatcher:
    """Polls a run until it ends, or until it needs the caller.

    ``await watcher.wait()`` returns the run once it is terminal
    (``completed``, ``failed``, ``cancelled``, ``expired``, ``incomplete``)
    or ``requires_action`` (which is not an end: the run waits for tool
    outputs). Given a *tool_handler*, the watcher serves ``requires_action``
    itself: it answers the tool calls (concurrently, up to the policy's
    *max_tool_calls*), submits the outputs in one request in the API's
    order, and watches on. ``async for run in watcher`` yields the run at
    each change of status. A status this version does not know keeps the
    normal cadence and ends the watch only when the run carries a terminal
    timestamp.

    Transient faults (connection errors, timeouts, 429, 5xx, malformed
    bodies) are retried, honouring ``Retry-After``; permanent ones (401, 403,
    404, 400) end the watch with their typed error. A watcher is used once.

    Args:
        client: The client to poll with.
        thread_id: The thread that was run.
        run_id: The run to watch.
        timeout: Seconds for the whole watch, requests and sleeps included,
            on the monotonic clock; the policy's *deadline* (900) if *None*.
            Also capped at the run's ``expires_at`` plus the policy's
            *expiry_slack*.
        cancel_on_timeout: At the deadline, cancel the run and poll through
            ``cancelling`` for up to the policy's *cancel_grace*, so that
            the error carries how the run ended.
        policy: The poll policy; :class:`PollPolicy` defaults if *None*.
        on_status: Called (and awaited if it is a coroutine function) with
            the run at each change of status.
        cancel_on_caller_cancel: When the awaiting task is cancelled, cancel
            the run on the server too (shielded, within *cancel_grace*).
        tool_handler: Answers each tool call at ``requires_action``; see
            :class:`~openai_runs.ToolHandler` and
            :func:`~openai_runs.tool_registry`. Its time counts against the
            deadline: a handler still working at the deadline is cancelled
            and the watch times out as it would while polling. A run that
            ends while the handler works (it expired, or was cancelled) is
            reported as it ended.
        cancel_on_tool_error: When the handler raises, cancel the run before
            raising :class:`~openai_runs.exceptions.ToolCallError` (the
            default: the run could only wait until it expired, and an active
            run keeps its thread locked).
        clock: The monotonic clock, for tests.
        sleep: The sleep, for tests.

    Raises:
        InvalidRequestError: *timeout* is negative.

    Attributes:
        polls: Polls sent so far.
        retries: Transient faults retried so far.
    """

    __slots__ = (
        "_cancel_sent",
        "_client",
        "_clock",
        "_deadline",
        "_ended",
        "_failures",
        "_grace",
        "_interval",
        "_outputs",
        "_refused",
        "_run",
        "_sleep",
        "_started",
        "_tool_error",
        "cancel_on_caller_cancel",
        "cancel_on_timeout",
        "cancel_on_tool_error",
        "on_status",
        "policy",
        "polls",
        "retries",
        "run_id",
        "thread_id",
        "timeout",
        "tool_handler",
    )

    def __init__(
        self,
        client: RunsClient,
        thread_id: str,
        run_id: str,
        *,
        timeout: float | None = None,
        cancel_on_timeout: bool = False,
        policy: PollPolicy | None = None,
        on_status: OnStatus | None = None,
        cancel_on_caller_cancel: bool = False,
        tool_handler: ToolHandler | None = None,
        cancel_on_tool_error: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.policy = policy or PollPolicy()
        if timeout is not None and timeout < 0:
            raise InvalidRequestError("timeout", "must be 0 or more seconds")
        self._client = client
        self.thread_id = thread_id
        self.run_id = run_id
        self.timeout = self.policy.deadline if timeout is None else timeout
        self.cancel_on_timeout = cancel_on_timeout
        self.cancel_on_caller_cancel = cancel_on_caller_cancel
        self.on_status = on_status
        self.tool_handler = tool_handler
        self.cancel_on_tool_error = cancel_on_tool_error
        self._clock = clock
        self._sleep = sleep
        self._deadline: float | None = None
        self._started: float | None = None
        self._ended: float | None = None
        self._interval = self.policy.initial
        self._run: Run | None = None
        self._grace = False
        self._cancel_sent = False
        self._failures = 0
        self._outputs: list[ToolOutput] | None = None
        self._refused: tuple[list[str], BadRequestError] | None = None
        # watch_many: a handler's error whose cancel waits for a request slot.
        self._tool_error: ToolCallError | None = None
        self.polls = 0
        self.retries = 0

    def __repr__(self) -> str:
        status = None if self._run is None else str(self._run.status)
        return f"<RunWatcher {self.run_id} status={status} polls={self.polls}>"

    @property
    def run(self) -> Run | None:
        """The last state of the run seen, or *None* before the first poll."""
        return self._run

    @property
    def elapsed(self) -> float:
        """Seconds the watch took, or has taken so far (0 before it starts)."""
        if self._started is None:
            return 0.0
        ended = self._clock() if self._ended is None else self._ended
        return ended - self._started

    def state(self) -> WatchState:
        """Save this watch as plain data; see :meth:`resume`.

        Returns:
            The ids, the deadline in Unix seconds, the counters, the status.
        """
        remaining = self.timeout if self._deadline is None else self._remaining()
        return WatchState(
            thread_id=self.thread_id,
            run_id=self.run_id,
            deadline=time.time() + remaining,
            polls=self.polls,
            retries=self.retries,
            status=None if self._run is None else str(self._run.status),
        )

    @classmethod
    def resume(
        cls,
        client: RunsClient,
        state: WatchState,
        *,
        cancel_on_timeout: bool = False,
        policy: PollPolicy | None = None,
        on_status: OnStatus | None = None,
        cancel_on_caller_cancel: bool = False,
        tool_handler: ToolHandler | None = None,
        cancel_on_tool_error: bool = True,
    ) -> Self:
        """Go on with a watch saved by :meth:`state`, keeping its deadline.

        The first poll is reported as a change of status, since this process
        has not seen the run yet.

        Args:
            client: The client to poll with.
            state: The saved watch.
            cancel_on_timeout: As for :class:`RunWatcher`.
            policy: As for :class:`RunWatcher`.
            on_status: As for :class:`RunWatcher`.
            cancel_on_caller_cancel: As for :class:`RunWatcher`.
            tool_handler: As for :class:`RunWatcher`.
            cancel_on_tool_error: As for :class:`RunWatcher`.

        Returns:
            A watcher whose deadline and counters are the saved ones; a
            deadline already past ends it at its first step.
        """
        watcher = cls(
            client,
            state.thread_id,
            state.run_id,
            timeout=max(state.deadline - time.time(), 0.0),
            cancel_on_timeout=cancel_on_timeout,
            policy=policy,
            on_status=on_status,
            cancel_on_caller_cancel=cancel_on_caller_cancel,
            tool_handler=tool_handler,
            cancel_on_tool_error=cancel_on_tool_error,
        )
        watcher.polls = state.polls
        watcher.retries = state.retries
        return watcher

    async def wait(self) -> Run:
        """Poll until the run ends or needs the caller, and return it.

        Returns:
            The run: terminal, or ``requires_action`` when there is no
            *tool_handler*.

        Raises:
            WatchTimeoutError: The deadline passed; its ``run`` is the last
                run seen (after a timed cancel, how the run ended).
            ToolCallError: The tool handler raised.
            APIStatusError: A permanent fault, such as 401 or 404, or tool
                outputs the API refused.
        """
        async for _ in self:
            pass
        assert self._run is not None  # the loop above returns only after a poll
        return self._run

    def __aiter__(self) -> AsyncIterator[Run]:
        return self._changes()

    async def _changes(self) -> AsyncIterator[Run]:
        """Yield the run at each change of status until the watch ends."""
        self._begin()
        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(is_retryable),
            wait=self._clamped(retry_wait(self.policy.retry)),
            sleep=self._sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )
        try:
            while True:
                if self._needs_tools():
                    await self._serve_tools()
                answer: tuple[Run, int | None] = await retrying(self._request)
                run, poll_after_ms = answer
                self._failures = 0
                if self._observe(run):
                    await self._report(run)
                    yield run
                delay = self._next_delay(run, poll_after_ms)
                if delay is None:
                    return
                await self._sleep(delay)
        except asyncio.CancelledError:
            if self.cancel_on_caller_cancel and not (
                self._run and self._run.is_terminal
            ):
                await self._cancel_shielded()
            raise
        finally:
            self._ended = self._clock()

    # --- The steps, shared with watch_many's scheduler ----------------------

    async def _report(self, run: Run) -> None:
        """Call the status hook with *run*."""
        if self.on_status is not None:
            result = self.on_status(run)
            if inspect.isawaitable(result):
                await result

    def _needs_tools(self) -> bool:
        """Whether the run waits on tool calls the handler has not answered."""
        run = self._run
        return (
            self.tool_handler is not None
            and run is not None
            and run.status == RunStatus.REQUIRES_ACTION
            and self._outputs is None
            and self._tool_error is None
            and not self._grace
            and self._remaining() > 0
        )

    async def _serve_tools(self, *, cancel: bool = True) -> None:
        """Have the handler answer the run's tool calls, within the deadline.

        Args:
            cancel: Cancel the run, if so configured, before raising
                :class:`ToolCallError`; watch_many sends that cancel itself.

        Raises:
            ToolCallError: The handler raised (the run cancelled first, if
                so configured).
        """
        run = self._run
        assert run is not None
        assert self.tool_handler is not None
        try:
            async with asyncio.timeout(self._remaining()):
                self._outputs = await serve_tool_calls(
                    self.tool_handler, run, limit=self.policy.max_tool_calls
                )
        except TimeoutError:
            # The next request takes the deadline's path: raise or cancel.
            self._deadline = self._clock()
            logger.debug("watch %s: deadline passed in the tool handler", self.run_id)
        except ToolCallError as exc:
            if cancel and self.cancel_on_tool_error:
                exc.run = await self._cancel_shielded() or run
            raise

    async def _submit(self) -> Run | None:
        """Submit the handler's outputs; *None* if the run no longer takes them."""
        assert self._outputs is not None
        outputs = self._outputs
        try:
            run = await self._client.runs.submit_tool_outputs(
                self.thread_id,
                self.run_id,
                tool_outputs=outputs,
                timeout=self._request_timeout(),
                max_retries=0,
            )
        except BadRequestError as exc:
            # Most often the run left requires_action while the handler
            # worked (it expired, or was cancelled): a poll tells how it ended.
            # If it still waits on the same calls, _next_delay raises this.
            self._refused = ([o.tool_call_id for o in outputs], exc)
            run = None
        self._outputs = None
        return run

    def _begin(self) -> None:
        self._started = self._clock()
        self._deadline = self._started + self.timeout

    def _remaining(self) -> float:
        assert self._deadline is not None
        return self._deadline - self._clock()

    def _clamped(
        self, wait: Callable[[tenacity.RetryCallState], float]
    ) -> Callable[[tenacity.RetryCallState], float]:
        return lambda state: max(min(wait(state), self._remaining()), 0.0)

    def _count_retry(self, state: tenacity.RetryCallState) -> None:
        self.retries += 1
        self._failures += 1
        logger.debug(
            "watch %s: retrying in %.2fs: %s",
            self.run_id,
            state.upcoming_sleep,
            state.outcome.exception() if state.outcome else None,
        )

    async def _request(self) -> tuple[Run, int | None]:
        """Send the watch's next request: a poll, or at the deadline a cancel.

        Returns:
            The run and its ``openai-poll-after-ms`` hint.

        Raises:
            WatchTimeoutError: The deadline (or the cancel's grace) passed.
        """
        if self._remaining() <= 0:
            if not self.cancel_on_timeout or self._grace:
                raise WatchTimeoutError(
                    f"run {self.run_id} did not end within {self.timeout:g}s",
                    self._run,
                )
            self._grace = True
            self._deadline = self._clock() + self.policy.cancel_grace
            logger.debug("watch %s: deadline passed, cancelling", self.run_id)
        if self._grace and not self._cancel_sent:
            try:
                cancelled = await self._client.runs.cancel(
                    self.thread_id,
                    self.run_id,
                    timeout=self._request_timeout(),
                    max_retries=0,
                )
            except BadRequestError:
                # "Cannot cancel run with status …": the run ended before the
                # cancel landed; the poll below tells how.
                self._cancel_sent = True
            else:
                self._cancel_sent = True
                return cancelled, None
        if self._outputs is not None and not self._grace:
            submitted = await self._submit()
            if submitted is not None:
                return submitted, None
        self.polls += 1
        response = await self._client.runs.retrieve_response(
            self.thread_id, self.run_id, timeout=self._request_timeout(), max_retries=0
        )
        return response.parsed, response.poll_after_ms

    def _request_timeout(self) -> float:
        remaining = self._remaining()
        if remaining <= 0:
            raise APITimeoutError(f"watch {self.run_id}: no time left for a request")
        return min(self.policy.request_timeout, remaining)

    def _observe(self, run: Run) -> bool:
        """Record *run*; return whether its status changed."""
        changed = self._run is None or self._run.status != run.status
        self._run = run
        if changed:
            self._interval = self.policy.initial
        if run.expires_at is not None and not self._grace:
            until_expiry = run.expires_at - time.time() + self.policy.expiry_slack
            assert self._deadline is not None
            self._deadline = min(self._deadline, self._clock() + until_expiry)
        return changed

    def _next_delay(self, run: Run, poll_after_ms: int | None) -> float | None:
        """Seconds until the next poll, or *None* when the watch is over.

        Raises:
            WatchTimeoutError: The run ended during a timed cancel's grace.
        """
        if run.is_terminal:
            if self._grace:
                raise WatchTimeoutError(
                    f"run {self.run_id} did not end within {self.timeout:g}s "
                    f"and ended {run.status} after the timed cancel",
                    run,
                )
            return None
        if run.status == RunStatus.REQUIRES_ACTION and not self._grace:
            # The one place requires_action is handled: without a tool
            # handler the caller must submit tool outputs, so the watch hands
            # the run back; with one, the next step serves the calls.
            if self.tool_handler is None:
                return None
            if self._refused is not None:
                answered, error = self._refused
                if answered == [call.id for call in run.tool_calls]:
                    raise error
            return 0.0
        policy = self.policy
        if poll_after_ms is not None:
            delay = min(
                max(poll_after_ms / 1000, policy.min_poll_after), policy.max_poll_after
            )
        else:
            delay = self._interval * (1 + random.uniform(0, policy.jitter))  # noqa: S311
            self._interval = min(self._interval * policy.multiplier, policy.maximum)
        return max(min(delay, self._remaining()), 0.0)

    async def _cancel_shielded(self) -> Run | None:
        """Cancel the run on the server, shielded from the caller's cancel.

        Returns:
            The run the cancel answered with, or *None* if it failed.
        """

        async def cancel() -> Run | None:
            try:
                async with asyncio.timeout(self.policy.cancel_grace):
                    return await self._client.runs.cancel(
                        self.thread_id, self.run_id, max_retries=0
                    )
            except (TimeoutError, OpenAIRunsError) as exc:
                logger.debug(
                    "watch %s: cancel on the way out failed: %s", self.run_id, exc
                )
                return None

        return await asyncio.shield(asyncio.ensure_future(cancel()))
