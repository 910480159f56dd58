"""Starting a run again when it failed for a rate limit (an opt-in of create_and_poll).

A run that ends ``failed`` with ``last_error.code == "rate_limit_exceeded"``
is not a 429: every request succeeded, but the model's token or request
budget ran out while the run worked. Nothing about the request was wrong,
so the cure is the one callers hand-write: wait, then start a new run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Final

import tenacity

from ._validation import check_count, check_range
from .models import Run, RunStatus

__all__ = ["is_rate_limited", "restart_rate_limited"]

logger = logging.getLogger("openai_runs")

RATE_LIMIT_CODE: Final = "rate_limit_exceeded"
# The live API's message names the wait: "... Please try again in 6.5s." or
# "... in 120ms."; the same words as on a 429.
_TRY_AGAIN = re.compile(r"try again in (\d+(?:\.\d+)?)\s*(ms|s)\b", re.IGNORECASE)


def is_rate_limited(run: Run) -> bool:
    """Whether *run* failed because a rate limit ran out while it worked."""
    error = run.last_error
    return (
        run.status == RunStatus.FAILED
        and error is not None
        and error.code == RATE_LIMIT_CODE
    )


def suggested_wait(run: Run) -> float | None:
    """The wait the failed run's message asks for, in seconds, if it names one."""
    if run.last_error is None:
        return None
    match = _TRY_AGAIN.search(run.last_error.message)
    if match is None:
        return None
    value = float(match.group(1))
    return value / 1000 if match.group(2).lower() == "ms" else value


def _last_run(state: tenacity.RetryCallState) -> Run | None:
    """Out of restarts: the last failed run, as the caller gets it without them."""
    return state.outcome.result() if state.outcome else None


async def restart_rate_limited(
    attempt: Callable[[], Awaitable[Run]], *, restarts: int, backoff: float
) -> Run:
    """Run *attempt* (create and watch a run) until it does not fail for a rate limit.

    Between attempts it waits the time the run's error names, else *backoff*
    seconds doubled at each restart (at most eight times *backoff*), plus up
    to a tenth of that at random. After *restarts* restarts the last run is
    returned as it ended: failed.
    """
    check_count("rate_limit_restarts", restarts)
    check_range("rate_limit_backoff", backoff, 0)
    exponential = tenacity.wait_exponential(multiplier=backoff, max=8 * backoff)

    def wait(state: tenacity.RetryCallState) -> float:
        run = state.outcome.result() if state.outcome else None
        hint = suggested_wait(run) if isinstance(run, Run) else None
        base = exponential(state) if hint is None else hint
        return base + tenacity.wait_random(0, base / 10)(state)

    def log_restart(state: tenacity.RetryCallState) -> None:
        run = state.outcome.result() if state.outcome else None
        logger.info(
            "run %s failed for a rate limit; starting a new run in %.1fs",
            getattr(run, "id", "?"),
            state.upcoming_sleep,
        )

    retrying = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_result(is_rate_limited),
        stop=tenacity.stop_after_attempt(restarts + 1),
        wait=wait,
        before_sleep=log_restart,
        retry_error_callback=_last_run,
        reraise=True,
    )
    result: Run = await retrying(attempt)
    return result
