"""Error answers become typed errors, with the API's details."""

from __future__ import annotations

import asyncio

import pytest
from _recorder import (
    api,
    error_json,
    ok,
    run_json,
)

import openai_runs
from openai_runs import exceptions as exc

STATUS_ERRORS = [
    (400, exc.BadRequestError),
    (401, exc.AuthenticationError),
    (403, exc.PermissionDeniedError),
    (404, exc.NotFoundError),
    (409, exc.ConflictError),
    (422, exc.UnprocessableEntityError),
    (429, exc.RateLimitError),
    (500, exc.InternalServerError),
    (503, exc.InternalServerError),
    (418, exc.APIStatusError),
]


@pytest.mark.parametrize(("status", "cls"), STATUS_ERRORS)
def test_error_status_maps_to_its_class_with_details(
    status: int, cls: type[exc.APIStatusError]
) -> None:
    """Each error status raises its class carrying status, type, code, param, message and request id."""
    body = error_json("Nope.", "invalid_request_error", "some_code", "run_id")

    async def main() -> None:
        async with api((status, {"x-request-id": "req_abc"}, body), max_retries=0) as (
            server,
            client,
        ):
            with pytest.raises(cls) as info:
                await client.runs.retrieve("thread_1", "run_1")
        error = info.value
        assert type(error) is cls
        assert isinstance(error, openai_runs.OpenAIRunsError)
        assert (error.status_code, error.request_id) == (status, "req_abc")
        assert (error.type, error.code, error.param, error.message) == (
            "invalid_request_error",
            "some_code",
            "run_id",
            "Nope.",
        )
        assert "req_abc" in str(error)
        assert len(server.seen) == 1

    asyncio.run(main())


def test_insufficient_quota_is_not_retried() -> None:
    """A 429 with code insufficient_quota fails at once as InsufficientQuotaError."""
    body = error_json(
        "You exceeded your quota.", "insufficient_quota", "insufficient_quota"
    )

    async def main() -> None:
        async with api((429, {}, body), ok(run_json())) as (server, client):
            with pytest.raises(exc.InsufficientQuotaError):
                await client.runs.retrieve("thread_1", "run_1")
        assert len(server.seen) == 1

    asyncio.run(main())


def test_non_json_body_is_a_decode_error_with_excerpt() -> None:
    """A 200 whose body is not JSON raises APIDecodeError keeping status and a bounded excerpt."""

    async def main() -> None:
        async with api(
            (200, {"x-request-id": "req_html"}, "<html>" + "x" * 2000), max_retries=0
        ) as (_server, client):
            with pytest.raises(exc.APIDecodeError) as info:
                await client.runs.retrieve("thread_1", "run_1")
        assert info.value.status_code == 200
        assert info.value.request_id == "req_html"
        assert info.value.excerpt.startswith("<html>")
        assert len(info.value.excerpt) == exc.EXCERPT_LIMIT

    asyncio.run(main())


def test_json_that_is_not_a_run_is_a_decode_error() -> None:
    """Valid JSON of the wrong shape raises APIDecodeError naming what is wrong."""

    async def main() -> None:
        async with api(ok({"id": 5}), max_retries=0) as (_server, client):
            with pytest.raises(exc.APIDecodeError, match="not a valid Run"):
                await client.runs.retrieve("thread_1", "run_1")

    asyncio.run(main())


def test_html_error_page_from_a_proxy_keeps_status_and_excerpt() -> None:
    """A 502 HTML page from a proxy is an InternalServerError with the page's start."""

    async def main() -> None:
        async with api((502, {}, "<html>Bad gateway</html>"), max_retries=0) as (
            _server,
            client,
        ):
            with pytest.raises(exc.InternalServerError) as info:
                await client.runs.retrieve("thread_1", "run_1")
        assert info.value.excerpt == "<html>Bad gateway</html>"
        assert "Bad gateway" in str(info.value)

    asyncio.run(main())
