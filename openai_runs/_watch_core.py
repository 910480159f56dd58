"""The watch state machine: every rule of watching one run, and no I/O.

A driver (one watch, many watches, a stream) asks [WatchMachine.next][] what
to do, does it, and reports what happened back (`on_run`, `on_fault`,
`on_outputs`, `on_tool_error`). Times are the driver's monotonic clock, so a
test drives the machine with plain numbers.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, TypedDict

import attrs

from ._retry import RetryPolicy, retry_delay
from ._validation import check_duration
from .exceptions import (
    BadRequestError,
    InvalidRequestError,
    ToolCallError,
    WatchTimeoutError,
)
from .models import Run, RunStatus, ToolOutput

if TYPE_CHECKING:
    from ._http import Response
    from ._observe import WatchTrace
    from ._tools import ToolHandler

__all__ = [
    "Finish",
    "OnStatus",
    "Phase",
    "PollPolicy",
    "RunCalls",
    "Send",
    "Serve",
    "Sleep",
    "WatchMachine",
    "WatchOptions",
    "WatchPolicy",
]

logger = logging.getLogger("openai_runs")

OnStatus = Callable[[Run], Awaitable[None] | None]
"""A status hook: a plain function or a coroutine function taking the run."""

_LONGEST_HINT_MS = 86_400_000
"""A longer `openai-poll-after-ms` is read as a day (then clamped by the policy)."""

_positive = attrs.validators.gt(0.0)
_not_negative = attrs.validators.ge(0.0)


def _finite(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    check_duration(f"WatchPolicy.{attribute.name}", value)


@attrs.frozen(kw_only=True)
class WatchPolicy:
    """How a watch polls, retries and gives up: the rarely changed knobs.

    The poll *cadence* while the run is busy starts at *initial*, grows by
    *multiplier* up to *maximum*, plus up to *jitter* (a fraction) of random
    extra, and starts again whenever the status changes. An
    `openai-poll-after-ms` header, read on every response and clamped to
    [*min_poll_after*, *max_poll_after*], replaces the cadence for the sleep
    that follows it. Transient faults are retried with *retry* (the client's
    [RetryPolicy][openai_runs.RetryPolicy] when *None*), honouring
    `Retry-After`; a busy run is not a fault.

    Attributes:
        initial: The first poll interval, in seconds (0.25).
        multiplier: How the interval grows while the status stays (1.5).
        maximum: The cap on the interval, in seconds (5).
        jitter: Random extra, as a fraction of each interval (0.1).
        min_poll_after: The shortest server hint obeyed, in seconds (0.1).
        max_poll_after: The longest server hint obeyed, in seconds (30).
        retry: The backoff for transient faults; the client's when *None*.
        request_timeout: Seconds for one request (30), never past the deadline.
        deadline: The default *timeout* of a watch, in seconds (900).
        cancel_grace: How long a cancel may take (15 s): a timed cancel, the
            cancel after a tool error, or on the caller's cancel. The cancel
            is retried within it.
        expiry_slack: How long past the run's lifetime (`expires_at -
            created_at`, both on the server's clock, counted from the first
            poll) a watch goes on, in seconds (60). Server and local clocks
            are never compared.
        max_tool_calls: How many tool calls of one run a tool handler serves
            at once (8).
        cancel_on_caller_cancel: When the awaiting task is cancelled, cancel
            the run on the server too (False).
        cancel_on_tool_error: When the tool handler raises, cancel the run
            before raising [ToolCallError][openai_runs.exceptions.ToolCallError]
            (True: the run could only wait until it expired, and an active run
            keeps its thread locked).
    """

    initial: float = attrs.field(default=0.25, validator=[_finite, _positive])
    multiplier: float = attrs.field(
        default=1.5, validator=[_finite, attrs.validators.ge(1.0)]
    )
    maximum: float = attrs.field(default=5.0, validator=[_finite, _positive])
    jitter: float = attrs.field(default=0.1, validator=[_finite, _not_negative])
    min_poll_after: float = attrs.field(default=0.1, validator=[_finite, _not_negative])
    max_poll_after: float = attrs.field(default=30.0, validator=[_finite, _positive])
    retry: RetryPolicy | None = None
    request_timeout: float = attrs.field(default=30.0, validator=[_finite, _positive])
    deadline: float = attrs.field(default=900.0, validator=[_finite, _positive])
    cancel_grace: float = attrs.field(default=15.0, validator=[_finite, _not_negative])
    expiry_slack: float = attrs.field(default=60.0, validator=[_finite, _not_negative])
    max_tool_calls: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    cancel_on_caller_cancel: bool = False
    cancel_on_tool_error: bool = True


PollPolicy = WatchPolicy
"""The name of [WatchPolicy][openai_runs.WatchPolicy] before 0.2, kept as an alias."""


class WatchOptions(TypedDict, total=False):
    """The options of every watch: `runs.watch`, `poll`, `watch_many`, `*_and_poll`.

    Attributes:
        timeout: Seconds for the whole watch, requests, tool calls and sleeps
            included, on the monotonic clock; the policy's *deadline* (900)
            if *None*.
        cancel_on_timeout: At the deadline, cancel the run and poll through
            `cancelling` for up to the policy's *cancel_grace*, so that the
            error carries how the run ended.
        policy: The [WatchPolicy][openai_runs.WatchPolicy]; defaults if *None*.
        on_status: Called (and awaited if it is a coroutine function) with
            the run at each change of status.
        tool_handler: Answers each tool call at `requires_action`; see
            [ToolHandler][openai_runs.ToolHandler]. Its time counts against
            the deadline.
    """

    timeout: float | None
    cancel_on_timeout: bool
    policy: WatchPolicy | None
    on_status: OnStatus | None
    tool_handler: ToolHandler | None


WATCH_OPTIONS = frozenset(WatchOptions.__annotations__)


@attrs.frozen
class Settings:
    """[WatchOptions][openai_runs.WatchOptions], checked, with their defaults."""

    timeout: float
    cancel_on_timeout: bool
    policy: WatchPolicy
    on_status: OnStatus | None
    tool_handler: ToolHandler | None

    @classmethod
    def of(cls, options: WatchOptions) -> Settings:
        """Check *options* (a typo is a TypeError, as for any keyword)."""
        if not options:
            return _DEFAULT_SETTINGS  # frozen: one for every watch with no options
        unknown = set(options) - WATCH_OPTIONS
        if unknown:
            raise TypeError(f"unexpected watch option(s): {', '.join(sorted(unknown))}")
        # The default policy is built once: its 14 checked fields cost more
        # than the rest of a watch's setup.
        policy = options.get("policy") or _DEFAULT_POLICY
        if not isinstance(policy, WatchPolicy):
            raise InvalidRequestError(
                "policy", f"must be a WatchPolicy, not {policy!r}"
            )
        timeout = options.get("timeout")
        return cls(
            timeout=policy.deadline
            if timeout is None
            else check_duration("timeout", timeout),
            cancel_on_timeout=bool(options.get("cancel_on_timeout", False)),
            policy=policy,
            on_status=options.get("on_status"),
            tool_handler=options.get("tool_handler"),
        )


_DEFAULT_POLICY = WatchPolicy()
_DEFAULT_SETTINGS = Settings(
    timeout=_DEFAULT_POLICY.deadline,
    cancel_on_timeout=False,
    policy=_DEFAULT_POLICY,
    on_status=None,
    tool_handler=None,
)


class RunCalls(Protocol):
    """The calls a watch makes: what `client.runs` offers."""

    async def retrieve_response(
        self,
        thread_id: str,
        run_id: str,
        *,
        timeout: float | None = ...,
        max_retries: int | None = ...,
    ) -> Response[Run]: ...

    async def submit_tool_outputs(
        self,
        thread_id: str,
        run_id: str,
        *,
        tool_outputs: Sequence[ToolOutput],
        timeout: float | None = ...,
        max_retries: int | None = ...,
    ) -> Run: ...

    async def cancel(
        self,
        thread_id: str,
        run_id: str,
        *,
        timeout: float | None = ...,
        max_retries: int | None = ...,
    ) -> Run: ...


class Phase(enum.Enum):
    """Where a watch is."""

    POLLING = "polling"
    SERVING_TOOLS = "serving tools"
    SUBMITTING = "submitting"
    CANCELLING = "cancel grace"
    DONE = "done"


Call = Literal["retrieve", "submit", "cancel"]


@attrs.frozen
class Sleep:
    """Do nothing until *until* (the driver's clock)."""

    until: float


@attrs.frozen
class Send:
    """Send *call* now, within *timeout* seconds (waiting for the budget included)."""

    call: Call
    timeout: float


@attrs.frozen
class Serve:
    """Have the tool handler answer *run*'s calls, by *until* at the latest."""

    run: Run
    until: float


@attrs.frozen
class Finish:
    """The watch is over: *run* is the answer, or *error* is raised."""

    run: Run | None
    error: Exception | None


Action = Sleep | Send | Serve | Finish

_CancelFor = Literal["timeout", "tool error", "caller"]


class WatchMachine:
    """One run's watch: phases, cadence, hints, faults, tools, deadline, cancel.

    Attributes:
        run: The last run seen.
        polls: Retrieves sent.
        retries: Faults retried.
        last_error: The last fault retried (cleared by an answer).
        phase: Where the watch is.
    """

    __slots__ = (
        "_answered",
        "_cancel_for",
        "_cancel_sent_ok",
        "_failures",
        "_grace_until",
        "_interval",
        "_next_at",
        "_outputs",
        "_refused",
        "_result",
        "_retry",
        "_tool_error",
        "cancel_on_timeout",
        "deadline",
        "ended",
        "last_error",
        "phase",
        "policy",
        "polls",
        "retries",
        "run",
        "run_id",
        "serves_tools",
        "started",
        "thread_id",
        "timeout",
        "trace",
    )

    def __init__(
        self,
        thread_id: str,
        run_id: str,
        *,
        settings: Settings,
        retry: RetryPolicy,
        now: float,
    ) -> None:
        policy = settings.policy
        self.thread_id = thread_id
        self.run_id = run_id
        self.policy = policy
        self._retry = policy.retry or retry
        self.timeout = settings.timeout
        self.cancel_on_timeout = settings.cancel_on_timeout
        self.serves_tools = settings.tool_handler is not None
        self.started = now
        self.ended: float | None = None
        self.deadline = now + settings.timeout
        self.phase = Phase.POLLING
        self.run: Run | None = None
        self.polls = 0
        self.retries = 0
        self.last_error: Exception | None = None
        self._failures = 0
        self._interval = policy.initial
        self._next_at = now
        self._outputs: list[ToolOutput] | None = None
        self._answered: set[str] = set()
        self._refused: tuple[list[str], BadRequestError] | None = None
        self._cancel_for: _CancelFor | None = None
        self._cancel_sent_ok: bool | None = None
        self._grace_until = 0.0
        self._tool_error: ToolCallError | None = None
        self._result: Finish | None = None
        # Set by the driver while telemetry is on (openai_runs._observe).
        self.trace: WatchTrace | None = None

    def __repr__(self) -> str:
        status = None if self.run is None else str(self.run.status)
        return f"<WatchMachine {self.run_id} {self.phase.value} status={status}>"

    @property
    def limit(self) -> float:
        """The time by which the watch must take its next step: deadline or grace."""
        return self._grace_until if self.phase is Phase.CANCELLING else self.deadline

    @property
    def failures(self) -> int:
        """Faults in a row: the next request is a resend when this is above 0."""
        return self._failures

    @property
    def outputs(self) -> list[ToolOutput]:
        """The tool outputs waiting to be submitted."""
        assert self._outputs is not None
        return self._outputs

    # --- What to do next ---------------------------------------------------

    def next(self, now: float) -> Action:  # noqa: PLR0911 - one return a rule
        """Say what the driver does now."""
        if self._result is not None:
            return self._result
        if self.phase is Phase.CANCELLING:
            return self._next_in_grace(now)
        if now >= self.deadline:
            if not self.cancel_on_timeout:
                return self._finish(error=self._timeout_error())
            self._begin_cancel("timeout", now)
            return self._next_in_grace(now)
        if self._outputs is not None:
            return self._send_at("submit", now, self.deadline)
        if self._needs_tools():
            self.phase = Phase.SERVING_TOOLS
            assert self.run is not None
            return Serve(self.run, self.deadline)
        return self._send_at("retrieve", now, self.deadline)

    def _next_in_grace(self, now: float) -> Action:
        if now >= self._grace_until:
            return self._finish_cancel()
        call: Call = "cancel" if self._cancel_sent_ok is False else "retrieve"
        return self._send_at(call, now, self._grace_until)

    def _send_at(self, call: Call, now: float, limit: float) -> Sleep | Send:
        if now < self._next_at:
            return Sleep(min(self._next_at, limit))
        if call == "retrieve":
            self.polls += 1
        return Send(call, min(self.policy.request_timeout, limit - now))

    def _needs_tools(self) -> bool:
        run = self.run
        return (
            self.serves_tools
            and run is not None
            and run.status == RunStatus.REQUIRES_ACTION
            and not self._answered.issuperset(c.id for c in run.tool_calls)
            # Outputs the server refused: poll to learn why before serving again.
            and (
                self._refused is None
                or self._refused[0] != [c.id for c in run.tool_calls]
            )
        )

    # --- What happened -----------------------------------------------------

    def on_run(  # noqa: PLR0912 - the transition table of an answer
        self, call: Call, run: Run, now: float, *, poll_after_ms: int | None = None
    ) -> bool:
        """Take an answer (a run) to *call*; return whether its status changed."""
        self._failures = 0
        self.last_error = None
        if call == "cancel":
            self._cancel_sent_ok = True
        elif call == "submit":
            self._answered.update(o.tool_call_id for o in self.outputs)
            self._outputs = None
            self.phase = Phase.POLLING
        changed = self.run is None or self.run.status != run.status
        first = self.run is None
        self.run = run
        if self.trace is not None:
            self.trace.saw(self, changed)
        if changed:
            self._interval = self.policy.initial
        if first:
            self._cap_at_expiry(run, now)
        if run.is_terminal:
            if self._cancel_for in ("timeout", "tool error"):
                self._finish(error=self._cancel_error(ended=True))
            else:
                self._finish(run=run)
            return changed
        if self.phase is Phase.CANCELLING:
            if self._cancel_for != "timeout" and self._cancel_sent_ok:
                # The cancel landed: after a tool error or the caller's cancel
                # nothing more is worth waiting for; a timed cancel polls on
                # to report how the run ended.
                self._finish_cancel()
            else:
                self._next_at = now + self._delay(poll_after_ms)
            return changed
        if run.status == RunStatus.REQUIRES_ACTION:
            ids = [call.id for call in run.tool_calls]
            if not self.serves_tools or not ids:
                # The caller must act (submit outputs, or a required_action of
                # a type this version does not serve): hand the run back.
                self._finish(run=run)
                return changed
            if self._refused is not None and self._refused[0] == ids:
                self._finish(error=self._refused[1])
                return changed
            if not self._answered.issuperset(ids):
                self._next_at = now  # new calls: serve them at once
                return changed
            # Every call was answered and accepted: a stale read, or a server
            # slow to move on. Poll at the cadence; never serve a call twice.
        self._next_at = now + self._delay(poll_after_ms)
        return changed

    def on_fault(self, call: Call, exc: Exception, now: float) -> None:
        """Take a failed *call*: retry it, or end the watch."""
        if call == "submit" and isinstance(exc, BadRequestError):
            # Most often the run left requires_action while the handler
            # worked (it expired, or was cancelled): a poll tells how it
            # ended. If it still waits on the same calls, the poll raises this.
            self._refused = ([o.tool_call_id for o in self.outputs], exc)
            self._outputs = None
            self.phase = Phase.POLLING
            self._next_at = now
            return
        if call == "cancel" and isinstance(exc, BadRequestError):
            # "Cannot cancel run with status ...": the run ended before the
            # cancel landed; a poll tells how.
            self._cancel_sent_ok = None
            self._next_at = now
            return
        if self.phase is not Phase.CANCELLING and now >= self.deadline:
            return  # cut short by the deadline: next() says what follows
        self._failures += 1
        delay = retry_delay(self._retry, self._failures, exc, decode_errors=True)
        if delay is None:
            if self.phase is Phase.CANCELLING:
                self.last_error = exc
                self._finish_cancel()
            else:
                self._finish(error=exc)
            return
        self.retries += 1
        self.last_error = exc
        if self._failures == 2 or self._failures % 10 == 0:
            logger.warning(
                "watch %s: %d failures in a row, retrying in %.2fs: %s",
                self.run_id,
                self._failures,
                delay,
                exc,
            )
        else:
            logger.debug("watch %s: retrying in %.2fs: %s", self.run_id, delay, exc)
        self._next_at = now + delay

    def on_outputs(self, outputs: list[ToolOutput], now: float) -> None:
        """Take the tool handler's outputs: submit them next."""
        self._outputs = outputs
        self.phase = Phase.SUBMITTING
        self._next_at = now

    def on_tool_error(self, exc: ToolCallError, now: float) -> None:
        """Take the tool handler's failure: cancel the run first, if so configured."""
        self._tool_error = exc
        if self.policy.cancel_on_tool_error:
            self._begin_cancel("tool error", now)
        else:
            self._finish(error=exc)

    def on_serve_timeout(self, now: float) -> None:
        """The deadline passed while the tool handler worked."""
        self.phase = Phase.POLLING
        self._next_at = now
        logger.debug("watch %s: deadline passed in the tool handler", self.run_id)

    def on_caller_cancel(self, now: float) -> bool:
        """The caller cancelled the watch; return whether to cancel the run."""
        run = self.run
        if (
            not self.policy.cancel_on_caller_cancel
            or self._result is not None
            or (run is not None and run.is_terminal)
        ):
            return False
        self._begin_cancel("caller", now)
        return True

    def fail(self, exc: Exception) -> None:
        """End the watch with *exc* (a status hook raised)."""
        self._finish(error=exc)

    # --- Rules -------------------------------------------------------------

    def _delay(self, poll_after_ms: int | None) -> float:
        policy = self.policy
        if poll_after_ms is not None and poll_after_ms > 0:
            seconds = min(poll_after_ms, _LONGEST_HINT_MS) / 1000
            return min(max(seconds, policy.min_poll_after), policy.max_poll_after)
        delay = self._interval * (1 + random.uniform(0, policy.jitter))  # noqa: S311
        self._interval = min(self._interval * policy.multiplier, policy.maximum)
        return delay

    def _cap_at_expiry(self, run: Run, now: float) -> None:
        # The run's lifetime on the server's own clock; local and server
        # clocks are never compared (a skewed local clock timed out every
        # watch after one poll when expires_at was read against time.time()).
        if run.expires_at is None or run.created_at is None:
            return
        lifetime = run.expires_at - run.created_at
        if 0 < lifetime < self.timeout:
            self.deadline = min(
                self.deadline, now + lifetime + self.policy.expiry_slack
            )

    def _begin_cancel(self, why: _CancelFor, now: float) -> None:
        self.phase = Phase.CANCELLING
        self._cancel_for = why
        self._cancel_sent_ok = False
        self._grace_until = now + self.policy.cancel_grace
        self._next_at = now
        self._failures = 0
        logger.debug("watch %s: cancelling the run (%s)", self.run_id, why)

    def _finish(
        self, *, run: Run | None = None, error: Exception | None = None
    ) -> Finish:
        self.phase = Phase.DONE
        self._result = Finish(run if error is None else self.run, error)
        if self.trace is not None:
            self.trace.finish(self, error)
        return self._result

    def _finish_cancel(self) -> Finish:
        if self._cancel_for == "caller":
            return self._finish(run=self.run)
        return self._finish(error=self._cancel_error(ended=False))

    def _cancel_error(self, *, ended: bool) -> Exception:
        landed = self._cancel_sent_ok is True
        if self._cancel_for == "tool error":
            error = self._tool_error
            assert error is not None
            error.cancel_landed = landed
            if self.run is not None:
                error.run = self.run
            return error
        run = self.run
        if ended and run is not None:
            how = f"and ended {run.status} after the timed cancel"
        elif landed:
            how = "and was still ending when the cancel's grace ran out"
        else:
            how = "and the timed cancel did not land"
        return WatchTimeoutError(
            f"run {self.run_id} did not end within {self.timeout:g}s {how}",
            run,
            last_error=None if landed else self.last_error,
            cancel_landed=landed,
        )

    def _timeout_error(self) -> WatchTimeoutError:
        message = f"run {self.run_id} did not end within {self.timeout:g}s"
        if self.deadline < self.started + self.timeout - 1e-9:
            message = (
                f"run {self.run_id} did not end within its lifetime plus "
                f"{self.policy.expiry_slack:g}s"
            )
        if self.run is None and self.last_error is not None:
            message += f"; no poll succeeded, the last failure: {self.last_error}"
        elif self.last_error is not None:
            message += f"; the last failure: {self.last_error}"
        return WatchTimeoutError(message, self.run, last_error=self.last_error)
