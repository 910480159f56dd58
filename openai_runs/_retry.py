"""When a failed request is tried again, and how long to wait: one tenacity setup."""

from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Final

import attrs
import tenacity

from .exceptions import (
    APIConnectionError,
    APIDecodeError,
    APIResponseError,
    APIStatusError,
    InsufficientQuotaError,
)

__all__ = ["RetryPolicy", "retry_hint", "retry_wait", "retrying"]

logger = logging.getLogger("openai_runs")

RETRY_STATUSES: Final = frozenset({408, 409, 429})


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How transient failures are retried: exponential backoff with jitter.

    Connection errors, timeouts, 408, 409, 429 and 5xx are transient; so is
    any answer with ``x-should-retry: true``, and none with
    ``x-should-retry: false``. A 429 with code ``insufficient_quota`` never
    is. A server's hint (``retry-after-ms``, then ``Retry-After`` in seconds
    or as an HTTP date) replaces the backoff when it is at most
    *max_retry_after*; a longer hint is not slept on: the error is raised
    with the hint in its ``retry_after``.

    Attributes:
        initial: The first backoff, in seconds.
        maximum: The cap on one backoff, in seconds.
        jitter: Up to this many seconds of random extra wait.
        max_retry_after: The longest server hint that is honoured by sleeping.
    """

    initial: float = 0.5
    maximum: float = 8.0
    jitter: float = 0.5
    max_retry_after: float = 60.0


def retry_hint(headers: Mapping[str, str]) -> float | None:
    """Return the wait the server asked for, in seconds, or *None*."""
    if (ms := headers.get("retry-after-ms")) is not None:
        seconds = _seconds(ms)
        if seconds is not None:
            return seconds / 1000
    if (value := headers.get("retry-after")) is not None:
        seconds = _seconds(value)
        if seconds is not None:
            return seconds
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(when.timestamp() - time.time(), 0.0)
    return None


def _seconds(value: str) -> float | None:
    """Parse a numeric hint; *None* for text and NaN, which no sleep can take."""
    try:
        number = float(value)
    except ValueError:
        return None
    # float() accepts "nan": asyncio.sleep(nan) never wakes up.
    return None if math.isnan(number) else max(number, 0.0)


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


def retry_wait(policy: RetryPolicy) -> Callable[[tenacity.RetryCallState], float]:
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


def retrying(policy: RetryPolicy, max_retries: int) -> tenacity.AsyncRetrying:
    """Build the tenacity controller for one request under *policy*."""

    def should_retry(exc: BaseException) -> bool:
        if not is_transient(exc):
            return False
        if isinstance(exc, APIResponseError):
            hint = retry_hint(exc.headers)
            if hint is not None and hint > policy.max_retry_after:
                exc.retry_after = hint
                return False
        return True

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
        wait=retry_wait(policy),
        before_sleep=log_retry,
        reraise=True,
    )
