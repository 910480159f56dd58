"""When a failed request is tried again, and how long to wait: one tenacity setup."""

from __future__ import annotations

import email.utils
import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Final

import attrs
import tenacity

from ._validation import check_duration
from .exceptions import (
    APIConnectionError,
    APIDecodeError,
    APIResponseError,
    APIStatusError,
    InsufficientQuotaError,
)

__all__ = ["RetryPolicy", "retry_delay", "retry_hint", "retrying"]

logger = logging.getLogger("openai_runs")

RETRY_STATUSES: Final = frozenset({408, 409, 429})


def _seconds_field(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    check_duration(f"RetryPolicy.{attribute.name}", value)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How transient failures are retried: exponential backoff with jitter.

    Connection errors, timeouts, 408, 409, 429 and 5xx are transient; so is
    any answer with `x-should-retry: true`, and none with
    `x-should-retry: false`. A 429 with code `insufficient_quota` never
    is. A server's hint (`retry-after-ms`, then `Retry-After` in seconds
    or as an HTTP date) replaces the backoff when it is at most
    *max_retry_after*; a longer hint is not slept on: the error is raised
    with the hint in its `retry_after`. A hint of 0 or less, or one that is
    not a number or a date, is no hint: the backoff applies (a `Retry-After: 0`
    taken at its word turns a retry loop into a hot loop).

    The client's policy also governs every watch, unless the watch's
    [WatchPolicy][openai_runs.WatchPolicy] sets its own `retry`.

    Attributes:
        initial: The first backoff, in seconds.
        maximum: The cap on one backoff, in seconds.
        jitter: Up to this many seconds of random extra wait.
        max_retry_after: The longest server hint that is honoured by sleeping.
    """

    initial: float = attrs.field(default=0.5, validator=_seconds_field)
    maximum: float = attrs.field(default=8.0, validator=_seconds_field)
    jitter: float = attrs.field(default=0.5, validator=_seconds_field)
    max_retry_after: float = attrs.field(default=60.0, validator=_seconds_field)


_LONGEST_HINT: Final = 86_400.0
"""A longer hint is read as this: a day is past any retry anyway."""


def retry_hint(headers: Mapping[str, str]) -> float | None:
    """Return the wait the server asked for, in seconds, or *None*.

    `retry-after-ms` first, then `Retry-After` in seconds or as an HTTP date.
    A hint of 0 or less (a date in the past included), NaN or text is no hint.
    """
    if (ms := headers.get("retry-after-ms")) is not None:
        seconds = _seconds(ms)
        if seconds is not None:
            return min(seconds / 1000, _LONGEST_HINT)
    if (value := headers.get("retry-after")) is not None:
        seconds = _seconds(value)
        if seconds is not None:
            return min(seconds, _LONGEST_HINT)
        try:
            when = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, OverflowError):
            return None
        wait = when - time.time()
        return min(wait, _LONGEST_HINT) if wait > 0 else None
    return None


def _seconds(value: str) -> float | None:
    """Parse a numeric hint; *None* for text, NaN and anything not above 0."""
    try:
        number = float(value)
    except ValueError:
        return None
    # float() accepts "nan" (asyncio.sleep(nan) never wakes up) and turns a
    # 400-digit number into inf; `not number > 0` is also true for NaN.
    if not number > 0:
        return None
    return number


def is_transient(exc: BaseException) -> bool:
    """Whether *exc* is worth another attempt (never true for cancellation)."""
    if isinstance(exc, APIConnectionError):
        return True
    if not isinstance(exc, APIResponseError) or isinstance(exc, InsufficientQuotaError):
        return False
    should = exc.headers.get("x-should-retry")
    if should == "true":
        return True
    if should == "false":
        return False
    if isinstance(exc, APIDecodeError):
        return exc.status_code >= 500
    assert isinstance(exc, APIStatusError)  # the only other kind
    return exc.status_code in RETRY_STATUSES or exc.status_code >= 500


_DECIDER = tenacity.AsyncRetrying()
"""What a decision's call state names as its controller; only the wait reads it."""


@functools.lru_cache(maxsize=32)
def _retry_wait(policy: RetryPolicy) -> Callable[[tenacity.RetryCallState], float]:
    """Build the tenacity wait for faults: the server's hint, else backoff."""
    # wait_exponential_jitter(initial=...) warns from tenacity 9.2 on, and its
    # replacement (multiplier=) is missing before: this sum means the same.
    backoff = tenacity.wait_exponential(
        multiplier=policy.initial, max=policy.maximum
    ) + tenacity.wait_random(0, policy.jitter)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, APIResponseError):
            hint = retry_hint(exc.headers)
            if hint is not None:
                return hint
        return backoff(state)

    return wait


def _should_retry(policy: RetryPolicy, exc: BaseException) -> bool:
    """Whether *exc* is transient and its hint, if any, short enough to sleep on."""
    if not is_transient(exc):
        return False
    if isinstance(exc, APIResponseError):
        hint = retry_hint(exc.headers)
        if hint is not None and hint > policy.max_retry_after:
            exc.retry_after = hint
            return False
    return True


def retry_delay(
    policy: RetryPolicy,
    failures: int,
    exc: BaseException,
    *,
    decode_errors: bool = False,
) -> float | None:
    """The one decision on a failure: seconds to wait before trying again, or *None*.

    The same rules as a request's own retries: what is transient (plus, with
    *decode_errors*, a 2xx body that is not the model, which a watch retries
    as a glitch bounded by its deadline), the server's hint, else the backoff.

    Args:
        policy: The backoff and the longest hint slept on.
        failures: Failures in a row so far, this one included (1 for the first).
        exc: What the attempt raised.
        decode_errors: Retry an `APIDecodeError` of a 2xx answer too.
    """
    if not _should_retry(policy, exc) and not (
        decode_errors and isinstance(exc, APIDecodeError)
    ):
        return None
    state = tenacity.RetryCallState(_DECIDER, None, (), {})
    state.attempt_number = failures
    state.set_exception((type(exc), exc, exc.__traceback__))
    return _retry_wait(policy)(state)


def retrying(policy: RetryPolicy, max_retries: int) -> tenacity.AsyncRetrying:
    """Build the tenacity controller for one request under *policy*."""

    def should_retry(exc: BaseException) -> bool:
        return _should_retry(policy, exc)

    def log_retry(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        logger.debug(
            "retrying in %.2fs after attempt %d: %s",
            state.upcoming_sleep,
            state.attempt_number,
            exc,
        )

    return tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception(should_retry),
        stop=tenacity.stop_after_attempt(max_retries + 1),
        wait=_retry_wait(policy),
        before_sleep=log_retry,
        reraise=True,
    )
