"""The HTTP layer: connections, timeouts, sessions, redirects, headers."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import pytest
from _recorder import (
    FAST,
    KEY,
    api,
    run_json,
)
from _timing import loop_lag
from aiohttp import web
from aiohttp.test_utils import TestServer

import openai_runs
from openai_runs import RunsClient
from openai_runs import exceptions as exc


def test_connection_refused_is_a_connection_error() -> None:
    """A port with no server gives APIConnectionError after the retries."""

    async def main() -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        async with RunsClient(
            api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1", retry_policy=FAST
        ) as client:
            with pytest.raises(exc.APIConnectionError) as info:
                await client.runs.retrieve("thread_1", "run_1")
        assert "GET /threads/thread_1/runs/run_1" in str(info.value)

    asyncio.run(main())


def test_slow_answer_is_a_timeout_error() -> None:
    """An answer slower than the timeout raises APITimeoutError."""

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.json_response(run_json())

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", slow)
        async with (
            loop_lag() as lag,
            TestServer(app, host="127.0.0.1") as http,
            RunsClient(
                api_key=KEY,
                base_url=str(http.make_url("/v1")),
                timeout=0.05,
                max_retries=1,
                retry_policy=FAST,
            ) as client,
        ):
            started = time.monotonic()
            with pytest.raises(exc.APITimeoutError):
                await client.runs.retrieve("thread_1", "run_1")
            # Well before the answer, however late a loaded machine's loop wakes.
            assert time.monotonic() - started < 0.9 + lag.worst

    asyncio.run(main())


def test_caller_owned_session_is_never_closed() -> None:
    """A session passed in stays open after the client closes."""

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            async with api(session=session) as (_server, client):
                await client.runs.retrieve("thread_1", "run_1")
            assert not session.closed

    asyncio.run(main())


def test_response_headers_come_with_the_model() -> None:
    """retrieve_response gives the run with its request id and poll hint."""

    async def main() -> None:
        async with api(
            (200, {"openai-poll-after-ms": "750", "x-request-id": "req_9"}, run_json())
        ) as (_server, client):
            response = await client.runs.retrieve_response("thread_1", "run_1")
        assert response.parsed.id == "run_1"
        assert (response.status_code, response.request_id, response.poll_after_ms) == (
            200,
            "req_9",
            750,
        )

    asyncio.run(main())


def test_redirects_are_not_followed_with_credentials() -> None:
    """A redirect is an error: the key never follows it to another origin."""
    other: list[web.Request] = []

    async def elsewhere(request: web.Request) -> web.Response:
        other.append(request)
        return web.json_response(run_json())

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", elsewhere)
        async with TestServer(app, host="127.0.0.1") as target:
            location = str(target.make_url("/steal"))
            async with api((307, {"Location": location}, "")) as (_server, client):
                with pytest.raises(exc.APIStatusError) as info:
                    await client.runs.retrieve("thread_1", "run_1")
        assert info.value.status_code == 307
        assert other == []

    asyncio.run(main())


def test_a_closed_caller_session_is_a_typed_error() -> None:
    """A caller's session closed under the client gives a typed error, not RuntimeError."""

    async def main() -> None:
        session = aiohttp.ClientSession()
        await session.close()
        async with api(session=session) as (server, client):
            with pytest.raises(openai_runs.OpenAIRunsError, match="session"):
                await client.runs.retrieve("thread_1", "run_1")
        assert server.seen == []

    asyncio.run(main())
