"""Retries of transient failures: budget, backoff, the server's hints."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from _recorder import (
    api,
    error_json,
    ok,
    run_json,
)
from _timing import loop_lag, retry_sleep_logged

from openai_runs import RetryPolicy
from openai_runs import exceptions as exc
from openai_runs._retry import retry_hint


def test_transient_errors_are_retried_until_success() -> None:
    """500, 409 and 429 are retried within max_retries; the third attempt succeeds."""

    async def main() -> None:
        async with api(
            (500, {}, "oops"), (429, {}, error_json("slow")), ok(run_json())
        ) as (server, client):
            run = await client.runs.retrieve("thread_1", "run_1")
        assert run.id == "run_1"
        assert len(server.seen) == 3

    asyncio.run(main())


@pytest.mark.parametrize(
    ("max_retries", "per_call", "attempts"),
    [(2, None, 3), (1, None, 2), (2, 0, 1), (0, 3, 4)],
)
def test_retry_budget_from_client_or_call(
    max_retries: int, per_call: int | None, attempts: int
) -> None:
    """The client's max_retries, or a per-call override, bounds the attempts."""

    async def main() -> None:
        replies = [(503, {}, "down")] * 5
        async with api(*replies, max_retries=max_retries) as (server, client):
            with pytest.raises(exc.InternalServerError):
                await client.runs.retrieve("thread_1", "run_1", max_retries=per_call)
        assert len(server.seen) == attempts

    asyncio.run(main())


@pytest.mark.parametrize(
    "headers",
    [{"retry-after-ms": "150"}, {"retry-after": "0.15"}],
)
def test_retry_hint_is_honoured(headers: dict[str, str]) -> None:
    """retry-after-ms, or Retry-After in seconds, sets the wait before the retry."""

    async def main() -> None:
        async with api((429, headers, error_json("slow")), ok(run_json())) as (
            server,
            client,
        ):
            started = time.monotonic()
            await client.runs.retrieve("thread_1", "run_1")
            waited = time.monotonic() - started
        assert len(server.seen) == 2
        assert 0.15 <= waited < 2

    asyncio.run(main())


@pytest.mark.parametrize("headers", [{"retry-after-ms": "nan"}, {"retry-after": "NaN"}])
def test_nan_retry_hint_falls_back_to_backoff(headers: dict[str, str]) -> None:
    """A NaN hint is ignored for the backoff; sleeping on it would never wake up."""

    async def main() -> None:
        async with api((503, headers, "busy"), ok(run_json())) as (server, client):
            async with asyncio.timeout(5):
                await client.runs.retrieve("thread_1", "run_1")
        assert len(server.seen) == 2

    asyncio.run(main())


def test_retry_after_http_date_in_the_past_retries_at_once() -> None:
    """Retry-After as an HTTP date is understood; a past date means no wait."""

    async def main() -> None:
        headers = {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}
        async with api((503, headers, "busy"), ok(run_json())) as (server, client):
            await client.runs.retrieve("thread_1", "run_1")
        assert len(server.seen) == 2

    asyncio.run(main())


def test_hint_over_the_cap_is_surfaced_not_slept_on() -> None:
    """A Retry-After above max_retry_after raises at once with the hint on the error."""

    async def main() -> None:
        async with api(
            (429, {"retry-after": "120"}, error_json("slow")), ok(run_json())
        ) as (server, client):
            with pytest.raises(exc.RateLimitError) as info:
                await client.runs.retrieve("thread_1", "run_1")
        assert info.value.retry_after == 120
        assert len(server.seen) == 1

    asyncio.run(main())


@pytest.mark.parametrize(
    ("status", "should", "attempts"), [(500, "false", 1), (400, "true", 2)]
)
def test_x_should_retry_overrides_the_status(
    status: int, should: str, attempts: int
) -> None:
    """x-should-retry: false stops a retry of a 5xx; true retries a 400."""

    async def main() -> None:
        async with api(
            (status, {"x-should-retry": should}, error_json("x")), ok(run_json())
        ) as (server, client):
            with contextlib.suppress(exc.APIStatusError):
                await client.runs.retrieve("thread_1", "run_1")
        assert len(server.seen) == attempts

    asyncio.run(main())


def test_cancellation_during_retry_sleep_is_not_swallowed() -> None:
    """Cancelling a call while it sleeps before a retry propagates at once."""

    async def main() -> None:
        policy = RetryPolicy(initial=5, maximum=5, jitter=0)
        async with (
            loop_lag() as lag,
            api((500, {}, "x"), ok(run_json()), retry_policy=policy) as (
                server,
                client,
            ),
        ):
            with retry_sleep_logged(5) as sleeping:
                task = asyncio.create_task(client.runs.retrieve("thread_1", "run_1"))
                # The 500 answered, however slowly: the call is in its sleep.
                async with asyncio.timeout(10):
                    await sleeping.wait()
            cancelled = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert time.monotonic() - cancelled < 0.1 + lag.worst
            assert len(server.seen) == 1
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "0"}, None),
        ({"retry-after": "-3"}, None),
        ({"retry-after-ms": "0"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
        ({"retry-after": "Mon, 01 Jan 10000000000000000000 00:00:00 GMT"}, None),
        ({"retry-after": "9" * 400}, 86_400.0),
        ({"retry-after-ms": "9" * 400}, 86_400.0),
        ({"retry-after": "1.5"}, 1.5),
    ],
)
def test_hostile_retry_hints_are_no_hint_or_capped(
    headers: dict[str, str], expected: float | None
) -> None:
    """A hint of 0 or less, past, NaN or out of any range never escapes as an error."""
    assert retry_hint(headers) == expected


@pytest.mark.parametrize("field", ["initial", "maximum", "jitter", "max_retry_after"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, "1"])
def test_a_retry_policy_refuses_values_no_sleep_can_take(
    field: str, bad: object
) -> None:
    """NaN, infinite, negative or non-number backoffs are refused when built."""
    with pytest.raises(exc.InvalidRequestError, match=field):
        RetryPolicy(**{field: bad})  # type: ignore[arg-type]
