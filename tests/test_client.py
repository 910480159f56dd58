"""The client against a real HTTP server on loopback: what it sends, what it returns."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import subprocess
import sys
import textwrap
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

import openai_runs
from openai_runs import RetryPolicy, Run, RunsClient, RunStatus, RunStep
from openai_runs import exceptions as exc
from openai_runs._converter import request_converter
from openai_runs.auth import ApiKeyAuth, BearerAuth, TokenAuth
from openai_runs.models import (
    Attachment,
    CodeInterpreterTool,
    FileSearchOptions,
    FileSearchRankingOptions,
    FileSearchTool,
    FunctionCall,
    FunctionDefinition,
    FunctionTool,
    ImageUrl,
    ImageUrlContent,
    JsonSchemaFormat,
    MessageRequest,
    NamedToolChoice,
    NamedToolChoiceFunction,
    ResponseFormatJsonSchema,
    TextContent,
    ThreadRequest,
    ToolCallsDetails,
    ToolOutput,
    TruncationStrategy,
)

KEY = "sk-test-SECRET-0123456789"
FAST = RetryPolicy(initial=0.001, maximum=0.005, jitter=0.001)
INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"


def run_json(
    run_id: str = "run_1", status: str = "in_progress", **extra: Any
) -> dict[str, Any]:
    return {
        "id": run_id,
        "object": "thread.run",
        "created_at": 1_700_000_000,
        "thread_id": "thread_1",
        "assistant_id": "asst_1",
        "status": status,
        "required_action": None,
        "last_error": None,
        "expires_at": None,
        "started_at": 1_700_000_001,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "incomplete_details": None,
        "model": "gpt-4o",
        "instructions": "Be brief.",
        "tools": [{"type": "code_interpreter"}],
        "metadata": {},
        "usage": None,
        "temperature": 1.0,
        "top_p": 1.0,
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "response_format": "auto",
        **extra,
    }


def step_json(step_id: str, *, created_at: int = 1_700_000_002) -> dict[str, Any]:
    return {
        "id": step_id,
        "object": "thread.run.step",
        "created_at": created_at,
        "assistant_id": "asst_1",
        "thread_id": "thread_1",
        "run_id": "run_1",
        "type": "tool_calls",
        "status": "completed",
        "step_details": {
            "type": "tool_calls",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "f", "arguments": "{}", "output": "ok"},
                }
            ],
        },
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": created_at,
        "metadata": None,
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }


def error_json(
    message: str,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}


@attrs.frozen
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, dict[str, str], bytes | str | dict[str, Any]]


@attrs.define
class Server:
    """Records every request and answers from a queue (or 200 with a run)."""

    replies: deque[Reply | Callable[[web.Request], Reply]] = attrs.field(factory=deque)
    seen: list[Seen] = attrs.field(factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            Seen(
                request.method,
                request.raw_path.split("?")[0],
                request.raw_path.partition("?")[2],
                dict(request.headers),
                await request.read(),
            )
        )
        reply = self.replies.popleft() if self.replies else (200, {}, run_json())
        if callable(reply):
            reply = reply(request)
        status, headers, body = reply
        if isinstance(body, dict):
            body = json.dumps(body)
        headers = {"x-request-id": f"req_{len(self.seen)}", **headers}
        return web.Response(status=status, headers=headers, body=body)


@contextlib.asynccontextmanager
async def api(
    *replies: Any, **options: Any
) -> AsyncIterator[tuple[Server, RunsClient]]:
    server = Server(deque(replies))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    async with TestServer(app, host="127.0.0.1") as http:
        options.setdefault("api_key", KEY)
        options.setdefault("retry_policy", FAST)
        base_url = options.pop("base_url", str(http.make_url("/v1")))
        async with RunsClient(base_url=base_url, **options) as client:
            yield server, client


def ok(body: Any) -> Reply:
    return (200, {}, body)


def test_retrieve_sends_get_with_headers_and_parses_run() -> None:
    """retrieve GETs the run's path with the auth, beta and user-agent headers."""

    async def main() -> None:
        async with api(
            ok(run_json(status="completed", completed_at=1_700_000_009))
        ) as (server, client):
            run = await client.runs.retrieve("thread_1", "run_1")
        assert isinstance(run, Run)
        assert run.status is RunStatus.COMPLETED
        assert run.completed_at == 1_700_000_009
        (seen,) = server.seen
        assert (seen.method, seen.path, seen.query, seen.body) == (
            "GET",
            "/v1/threads/thread_1/runs/run_1",
            "",
            b"",
        )
        assert seen.headers["Authorization"] == f"Bearer {KEY}"
        assert seen.headers["OpenAI-Beta"] == "assistants=v2"
        assert seen.headers["User-Agent"] == f"openai-runs/{openai_runs.__version__}"
        assert "OpenAI-Organization" not in seen.headers

    asyncio.run(main())


def test_ids_are_accepted_as_keywords() -> None:
    """Every id may be passed by name as well as by position."""

    async def main() -> None:
        async with api(ok(run_json()), ok(step_json("step_1"))) as (server, client):
            await client.runs.retrieve(thread_id="thread_1", run_id="run_1")
            await client.runs.steps.retrieve(
                thread_id="thread_1", run_id="run_1", step_id="step_1"
            )
        assert [s.path for s in server.seen] == [
            "/v1/threads/thread_1/runs/run_1",
            "/v1/threads/thread_1/runs/run_1/steps/step_1",
        ]

    asyncio.run(main())


def test_update_posts_metadata_as_json() -> None:
    """update POSTs exactly {"metadata": ...} to the run's path."""

    async def main() -> None:
        async with api(ok(run_json(metadata={"k": "v"}))) as (server, client):
            run = await client.runs.update("thread_1", "run_1", metadata={"k": "v"})
        assert run.metadata == {"k": "v"}
        (seen,) = server.seen
        assert (seen.method, seen.path) == ("POST", "/v1/threads/thread_1/runs/run_1")
        assert seen.headers["Content-Type"] == "application/json"
        assert json.loads(seen.body) == {"metadata": {"k": "v"}}

    asyncio.run(main())


def test_cancel_posts_to_cancel_without_body() -> None:
    """cancel POSTs to .../cancel with no body and returns the cancelling run."""

    async def main() -> None:
        async with api(ok(run_json(status="cancelling"))) as (server, client):
            run = await client.runs.cancel("thread_1", "run_1")
        assert run.status is RunStatus.CANCELLING
        (seen,) = server.seen
        assert (seen.method, seen.path, seen.body) == (
            "POST",
            "/v1/threads/thread_1/runs/run_1/cancel",
            b"",
        )

    asyncio.run(main())


def test_steps_retrieve_sends_include_once_encoded() -> None:
    """steps.retrieve sends include[] as the spec names it, decoded once by the server."""

    async def main() -> None:
        async with api(
            lambda r: ok({**step_json("step_1"), "got": r.query.getall("include[]")})
        ) as (server, client):
            step = await client.runs.steps.retrieve(
                "thread_1", "run_1", "step_1", include=[INCLUDE]
            )
        assert isinstance(step, RunStep)
        assert step.extra == {"got": [INCLUDE]}
        assert isinstance(step.step_details, ToolCallsDetails)
        assert isinstance(step.step_details.tool_calls[0], FunctionCall)
        assert server.seen[0].query.startswith(
            "include%5B%5D=step_details.tool_calls%5B"
        )

    asyncio.run(main())


STEPS = [step_json(f"step_{i}", created_at=1_700_000_000 + i) for i in range(7)]


def paged(request: web.Request) -> Reply:
    """Serve STEPS (ascending) like the API: limit, order, after, before."""
    q = request.query
    items = STEPS if q.get("order", "desc") == "asc" else STEPS[::-1]
    ids = [s["id"] for s in items]
    if "after" in q:
        items = items[ids.index(q["after"]) + 1 :]
    if "before" in q:
        items = items[: ids.index(q["before"])]
        window = items[-int(q.get("limit", 20)) :]
        has_more = len(items) > len(window)
    else:
        window = items[: int(q.get("limit", 20))]
        has_more = len(items) > len(window)
    return ok(
        {
            "object": "list",
            "data": window,
            "first_id": window[0]["id"] if window else None,
            "last_id": window[-1]["id"] if window else None,
            "has_more": has_more,
        }
    )


def test_steps_list_awaited_is_the_first_page() -> None:
    """Awaiting steps.list fetches one page with limit, order and include[]."""

    async def main() -> None:
        async with api(paged) as (server, client):
            page = await client.runs.steps.list(
                "thread_1", "run_1", limit=3, order="asc", include=[INCLUDE]
            )
        assert [s.id for s in page.data] == ["step_0", "step_1", "step_2"]
        assert (page.first_id, page.last_id, page.has_more) == (
            "step_0",
            "step_2",
            True,
        )
        (seen,) = server.seen
        assert seen.path == "/v1/threads/thread_1/runs/run_1/steps"
        assert seen.query.startswith("limit=3&order=asc&include%5B%5D=")

    asyncio.run(main())


def test_steps_list_iterates_every_step_forwards() -> None:
    """Iterating steps.list yields every step once, paging with after=last_id."""

    async def main() -> None:
        async with api(paged, paged, paged, paged) as (server, client):
            ids = [
                s.id async for s in client.runs.steps.list("thread_1", "run_1", limit=3)
            ]
        assert ids == [f"step_{i}" for i in range(6, -1, -1)]
        assert [s.query for s in server.seen] == [
            "limit=3",
            "limit=3&after=step_4",
            "limit=3&after=step_1",
        ]

    asyncio.run(main())


def test_steps_list_from_before_pages_backwards_with_before_only() -> None:
    """Paging that starts from before goes on with before=first_id, never sending after."""

    async def main() -> None:
        async with api(paged, paged, paged) as (server, client):
            pager = client.runs.steps.list(
                "thread_1", "run_1", limit=2, order="asc", before="step_5"
            )
            ids = [s.id async for s in pager]
        assert sorted(ids) == [f"step_{i}" for i in range(5)]
        assert len(ids) == len(set(ids))
        assert all("after" not in s.query for s in server.seen)
        assert [s.query.rsplit("before=", 1)[1] for s in server.seen] == [
            "step_5",
            "step_3",
            "step_1",
        ]

    asyncio.run(main())


def test_steps_list_stops_on_a_cursor_that_does_not_move() -> None:
    """A server that repeats the same page with has_more does not loop forever."""
    page = {
        "object": "list",
        "data": [STEPS[0]],
        "first_id": "step_0",
        "last_id": "step_0",
        "has_more": True,
    }

    async def main() -> None:
        async with api(ok(page), ok(page), ok(page)) as (server, client):
            ids = [s.id async for s in client.runs.steps.list("thread_1", "run_1")]
        assert ids == ["step_0", "step_0"]
        assert len(server.seen) == 2

    asyncio.run(main())


def test_organization_project_headers_and_query_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Organization, project, default headers and default query go on every request."""
    monkeypatch.setenv("OPENAI_ORG_ID", "org_1")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_1")

    async def main() -> None:
        async with api(
            default_headers={"X-Extra": "1"},
            default_query={"api-version": "2025-01-01"},
        ) as (server, client):
            await client.runs.retrieve("thread_1", "run_1")
        (seen,) = server.seen
        assert seen.headers["OpenAI-Organization"] == "org_1"
        assert seen.headers["OpenAI-Project"] == "proj_1"
        assert seen.headers["X-Extra"] == "1"
        assert seen.query == "api-version=2025-01-01"

    asyncio.run(main())


def test_environment_supplies_key_and_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """OPENAI_API_KEY and OPENAI_BASE_URL are used when no argument is given."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")

    async def main() -> None:
        async with api() as (server, unused):
            monkeypatch.setenv("OPENAI_BASE_URL", unused.base_url)
            async with RunsClient() as client:
                await client.runs.retrieve("thread_1", "run_1")
        assert server.seen[0].headers["Authorization"] == "Bearer sk-env"

    asyncio.run(main())


def test_missing_key_is_a_clear_error_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a key or auth the constructor says how to provide one."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(exc.InvalidRequestError, match="OPENAI_API_KEY"):
        RunsClient()


@pytest.mark.parametrize(
    "options",
    [
        {"api_key": KEY + "\n"},
        {"api_key": KEY + "\r\nX-Injected: 1"},
        {"organization": "org_1\n"},
        {"default_headers": {"X-Trace": "a\x00b"}},
    ],
)
def test_unsendable_header_values_are_refused_at_construction(
    options: dict[str, Any],
) -> None:
    """A key or header with a control character is a typed error, the key unshown."""
    with pytest.raises(exc.InvalidRequestError, match="control character") as info:
        RunsClient(**{"api_key": KEY, **options})
    assert KEY not in str(info.value)


@pytest.mark.parametrize(
    "base_url",
    [
        "api.example.com/v1",
        "ftp://example.com/v1",
        "http://",
        "http://h/v1?x=1",
        "http://[::1",
        "http://127.0.0.1:99999/v1",
    ],
)
def test_unusable_base_url_is_refused_at_construction(base_url: str) -> None:
    """A base URL that is not absolute http(s), or has a query, fails at once."""
    with pytest.raises(exc.InvalidRequestError, match="base_url"):
        RunsClient(api_key=KEY, base_url=base_url)


@pytest.mark.parametrize("scheme", [BearerAuth, ApiKeyAuth])
def test_auth_schemes_refuse_a_key_with_a_newline(scheme: Any) -> None:
    """A key read from a file with its newline fails when the scheme is built."""
    with pytest.raises(exc.InvalidRequestError, match="api_key") as info:
        scheme(KEY + "\n")
    assert KEY not in str(info.value)


def test_azure_preset_uses_prefix_api_version_and_api_key_header() -> None:
    """RunsClient.azure puts /openai before the path, api-version in the query, the key in api-key."""

    async def main() -> None:
        async with api() as (server, plain):
            endpoint = plain.base_url.removesuffix("/v1")
            async with RunsClient.azure(
                endpoint=endpoint, api_version="2024-05-01-preview", api_key=KEY
            ) as client:
                await client.runs.retrieve("thread_1", "run_1")
        (seen,) = server.seen
        assert seen.path == "/openai/threads/thread_1/runs/run_1"
        assert seen.query == "api-version=2024-05-01-preview"
        assert seen.headers["api-key"] == KEY
        assert "Authorization" not in seen.headers

    asyncio.run(main())


def test_token_auth_fetches_once_and_refreshes_before_expiry() -> None:
    """A token provider is called once while its token is fresh, again near expiry."""
    calls: list[int] = []

    async def provider() -> tuple[str, float]:
        calls.append(1)
        lifetime = 3600 if len(calls) == 1 else 10
        return f"tok{len(calls)}", time.time() + lifetime

    async def main() -> None:
        auth = TokenAuth(provider, refresh_margin=60)
        async with api(auth=auth, api_key=None) as (server, client):
            await asyncio.gather(
                *(client.runs.retrieve("thread_1", "run_1") for _ in range(3))
            )
            auth._expires_on = time.time() + 30  # within the margin: due for refresh
            await client.runs.retrieve("thread_1", "run_1")
        assert len(calls) == 2
        assert [s.headers["Authorization"] for s in server.seen] == [
            "Bearer tok1"
        ] * 3 + ["Bearer tok2"]
        assert "tok" not in repr(auth)

    asyncio.run(main())


BAD_CALLS: list[tuple[str, Callable[[RunsClient], Any], str]] = [
    ("empty thread id", lambda c: c.runs.retrieve("", "run_1"), "thread_id"),
    ("slash in run id", lambda c: c.runs.retrieve("thread_1", "run/../x"), "run_id"),
    ("dot-dot id", lambda c: c.runs.cancel("thread_1", ".."), "run_id"),
    ("question mark", lambda c: c.runs.retrieve("thread_1?x=1", "run_1"), "thread_id"),
    ("hash", lambda c: c.runs.retrieve("thread_1", "run#1"), "run_id"),
    ("space", lambda c: c.runs.retrieve("thread 1", "run_1"), "thread_id"),
    ("CRLF", lambda c: c.runs.retrieve("thread_1\r\nX: y", "run_1"), "thread_id"),
    ("percent", lambda c: c.runs.retrieve("thread_%2F", "run_1"), "thread_id"),
    ("non-string id", lambda c: c.runs.retrieve(123, "run_1"), "thread_id"),
    (
        "empty step id",
        lambda c: c.runs.steps.retrieve("thread_1", "run_1", ""),
        "step_id",
    ),
    (
        "17 metadata keys",
        lambda c: c.runs.update("t", "r", metadata={str(i): "v" for i in range(17)}),
        "metadata",
    ),
    (
        "long key",
        lambda c: c.runs.update("t", "r", metadata={"k" * 65: "v"}),
        "metadata",
    ),
    (
        "long value",
        lambda c: c.runs.update("t", "r", metadata={"k": "v" * 513}),
        "metadata",
    ),
    (
        "non-string value",
        lambda c: c.runs.update("t", "r", metadata={"k": 1}),
        "metadata",
    ),
    ("limit 0", lambda c: c.runs.steps.list("t", "r", limit=0).first_page(), "limit"),
    (
        "limit 101",
        lambda c: c.runs.steps.list("t", "r", limit=101).first_page(),
        "limit",
    ),
    (
        "limit bool",
        lambda c: c.runs.steps.list("t", "r", limit=True).first_page(),
        "limit",
    ),
    (
        "unknown order",
        lambda c: c.runs.steps.list("t", "r", order="up").first_page(),
        "order",
    ),
    (
        "unknown include",
        lambda c: c.runs.steps.list("t", "r", include=["x"]).first_page(),
        "include",
    ),
    (
        "include as str",
        lambda c: c.runs.steps.retrieve("t", "r", "s", include=INCLUDE),
        "include",
    ),
    (
        "unsafe cursor",
        lambda c: c.runs.steps.list("t", "r", after="a/b").first_page(),
        "after",
    ),
]


@pytest.mark.parametrize(
    ("call", "param"),
    [(c, p) for _, c, p in BAD_CALLS],
    ids=[n for n, _, _ in BAD_CALLS],
)
def test_bad_input_is_refused_before_sending(
    call: Callable[[RunsClient], Any], param: str
) -> None:
    """Each bad argument raises a typed ValueError naming it, and nothing is sent."""

    async def main() -> None:
        async with api() as (server, client):
            with pytest.raises(exc.InvalidRequestError) as info:
                await call(client)
        assert isinstance(info.value, ValueError)
        assert info.value.param == param
        assert server.seen == []

    asyncio.run(main())


def test_metadata_at_its_limits_is_sent() -> None:
    """Metadata of exactly 16 keys, 64-char keys and 512-char values is allowed."""
    metadata = {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}

    async def main() -> None:
        async with api() as (server, client):
            await client.runs.update("thread_1", "run_1", metadata=metadata)
        assert json.loads(server.seen[0].body) == {"metadata": metadata}

    asyncio.run(main())


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
            assert time.monotonic() - started < 0.9

    asyncio.run(main())


def test_cancellation_during_retry_sleep_is_not_swallowed() -> None:
    """Cancelling a call while it sleeps before a retry propagates at once."""

    async def main() -> None:
        policy = RetryPolicy(initial=5, maximum=5, jitter=0)
        async with api((500, {}, "x"), ok(run_json()), retry_policy=policy) as (
            server,
            client,
        ):
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await client.runs.retrieve("thread_1", "run_1")
            assert time.monotonic() - started < 1
            assert len(server.seen) == 1
        assert asyncio.all_tasks() == {asyncio.current_task()}

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


def test_api_key_never_appears_in_reprs_errors_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The key is absent from client and auth reprs, error messages and debug logs."""
    caplog.set_level(logging.DEBUG, logger="openai_runs")

    async def main() -> str:
        async with api(
            (401, {}, error_json("Incorrect API key provided")),
            (500, {}, "x"),
            (500, {}, "x"),
            (500, {}, "x"),
        ) as (_server, client):
            texts = [repr(client), repr(BearerAuth(KEY)), repr(ApiKeyAuth(KEY))]
            for _ in range(2):
                try:
                    await client.runs.retrieve("thread_1", "run_1")
                except exc.OpenAIRunsError as error:
                    texts += [str(error), repr(error), repr(error.headers)]
        return "\n".join(texts)

    text = asyncio.run(main())
    assert KEY not in text
    assert KEY not in caplog.text
    assert "req_1" in caplog.text  # one debug line per request, with its id
    assert "retrying" in caplog.text


class _Loopback(AbstractResolver):
    """Resolves every host to 127.0.0.1, to stand in for api.openai.com."""

    async def resolve(
        self, host: str, port: int = 0, family: int = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=0,
            )
        ]

    async def close(self) -> None:
        pass


def test_404_on_hosted_openai_says_the_api_may_be_retired() -> None:
    """When nothing has succeeded against api.openai.com, a 404 names the base-URL setting."""

    async def main() -> None:
        async with api(
            (404, {}, error_json("Not found")), (404, {}, error_json("Not found"))
        ) as (_server, plain):
            port = plain.base_url.split(":")[2].split("/")[0]
            connector = aiohttp.TCPConnector(resolver=_Loopback())
            async with aiohttp.ClientSession(connector=connector) as session:
                base = f"http://api.openai.com:{port}/v1"
                async with RunsClient(
                    api_key=KEY, base_url=base, session=session
                ) as client:
                    with pytest.raises(exc.NotFoundError, match=r"retired.*base_url"):
                        await client.runs.retrieve("thread_1", "run_1")
                # Against any other server a 404 is just a 404.
                with pytest.raises(exc.NotFoundError) as info:
                    await plain.runs.retrieve("thread_1", "run_1")
                assert "retired" not in str(info.value)

    asyncio.run(main())


# --- The rest of the Runs API -------------------------------------------------


WEATHER = FunctionTool(
    function=FunctionDefinition(
        name="get_weather",
        description="Weather in a city.",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string", "default": None}},
        },
    )
)


def test_create_sends_every_field_typed_and_without_nulls() -> None:
    """create POSTs each set field as the API names it, nested models without nulls."""

    async def main() -> None:
        async with api(ok(run_json(status="queued"))) as (server, client):
            run = await client.runs.create(
                "thread_1",
                assistant_id="asst_1",
                model="gpt-4o",
                reasoning_effort="low",
                instructions="Be brief.",
                additional_instructions="Really.",
                additional_messages=[
                    MessageRequest(
                        role="user",
                        content=[
                            TextContent(text="hi"),
                            ImageUrlContent(image_url=ImageUrl(url="https://x/y.png")),
                        ],
                        attachments=[
                            Attachment(file_id="file_1", tools=[CodeInterpreterTool()])
                        ],
                        metadata={"m": "1"},
                    )
                ],
                tools=[
                    CodeInterpreterTool(),
                    FileSearchTool(
                        file_search=FileSearchOptions(
                            max_num_results=5,
                            ranking_options=FileSearchRankingOptions(
                                score_threshold=0.5
                            ),
                        )
                    ),
                    WEATHER,
                ],
                metadata={"k": "v"},
                temperature=0.2,
                top_p=0.9,
                max_prompt_tokens=1000,
                max_completion_tokens=500,
                truncation_strategy=TruncationStrategy(
                    type="last_messages", last_messages=4
                ),
                tool_choice=NamedToolChoice(
                    type="function",
                    function=NamedToolChoiceFunction(name="get_weather"),
                ),
                parallel_tool_calls=False,
                response_format=ResponseFormatJsonSchema(
                    json_schema=JsonSchemaFormat(
                        name="answer", schema={"type": "object"}
                    )
                ),
                include=[INCLUDE],
            )
        assert run.status is RunStatus.QUEUED
        (seen,) = server.seen
        assert (seen.method, seen.path) == ("POST", "/v1/threads/thread_1/runs")
        assert seen.query.startswith("include%5B%5D=")
        assert json.loads(seen.body) == {
            "assistant_id": "asst_1",
            "model": "gpt-4o",
            "reasoning_effort": "low",
            "instructions": "Be brief.",
            "additional_instructions": "Really.",
            "additional_messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "hi"},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                    ],
                    "attachments": [
                        {"file_id": "file_1", "tools": [{"type": "code_interpreter"}]}
                    ],
                    "metadata": {"m": "1"},
                }
            ],
            "tools": [
                {"type": "code_interpreter"},
                {
                    "type": "file_search",
                    "file_search": {
                        "max_num_results": 5,
                        "ranking_options": {"score_threshold": 0.5},
                    },
                },
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "Weather in a city.",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string", "default": None}},
                        },
                    },
                },
            ],
            "metadata": {"k": "v"},
            "temperature": 0.2,
            "top_p": 0.9,
            "max_prompt_tokens": 1000,
            "max_completion_tokens": 500,
            "truncation_strategy": {"type": "last_messages", "last_messages": 4},
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": False,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": {"type": "object"}},
            },
        }

    asyncio.run(main())


def test_create_with_only_the_assistant_sends_only_it() -> None:
    """Unset options are not sent, so the assistant's own settings apply."""

    async def main() -> None:
        async with api(ok(run_json(status="queued"))) as (server, client):
            await client.runs.create(
                "thread_1",
                assistant_id="asst_1",
                tool_choice="required",
                response_format="auto",
            )
        assert json.loads(server.seen[0].body) == {
            "assistant_id": "asst_1",
            "tool_choice": "required",
            "response_format": "auto",
        }
        assert server.seen[0].query == ""

    asyncio.run(main())


BAD_CREATES: list[tuple[str, dict[str, Any], str]] = [
    ("temperature NaN", {"temperature": float("nan")}, "temperature"),
    ("temperature a string", {"temperature": "hot"}, "temperature"),
    ("prompt tokens a float", {"max_prompt_tokens": 300.5}, "max_prompt_tokens"),
    ("a tool dict without its function", {"tools": [{"type": "function"}]}, "tools"),
    ("tools as a string", {"tools": "code_interpreter"}, "tools"),
    ("a tool_choice of the wrong shape", {"tool_choice": {"bogus": 1}}, "tool_choice"),
    (
        "a truncation without type",
        {"truncation_strategy": {"x": 1}},
        "truncation_strategy",
    ),
    (
        "system role",
        {"additional_messages": [MessageRequest(role="system", content="x")]},
        "messages",
    ),
    (
        "message metadata",
        {
            "additional_messages": [
                MessageRequest(role="user", content="x", metadata={"k": "v" * 600})
            ]
        },
        "metadata",
    ),
    ("run metadata", {"metadata": {str(i): "v" for i in range(17)}}, "metadata"),
    ("unsafe assistant", {"assistant_id": "asst/../x"}, "assistant_id"),
]

# Policy that drifts between OpenAI, Azure and compatible servers: sent as
# given, for the server to judge.
SERVER_JUDGES: list[tuple[str, dict[str, Any]]] = [
    ("temperature above 2", {"temperature": 2.5}),
    ("negative top_p", {"top_p": -0.1}),
    ("prompt tokens below 256", {"max_prompt_tokens": 100}),
    ("21 tools", {"tools": [{"type": "code_interpreter"}] * 21}),
    (
        "max_num_results 51",
        {"tools": [{"type": "file_search", "file_search": {"max_num_results": 51}}]},
    ),
    (
        "score over 1",
        {
            "tools": [
                FileSearchTool(
                    file_search=FileSearchOptions(
                        ranking_options=FileSearchRankingOptions(score_threshold=2)
                    )
                )
            ]
        },
    ),
    (
        "last_messages 0",
        {"truncation_strategy": {"type": "last_messages", "last_messages": 0}},
    ),
    ("a new tool_choice string", {"tool_choice": "always"}),
    ("a new response_format string", {"response_format": "json"}),
    ("a new tool type", {"tools": [{"type": "web_search", "web_search": {}}]}),
]


@pytest.mark.parametrize(
    "options", [o for _, o in SERVER_JUDGES], ids=[n for n, _ in SERVER_JUDGES]
)
def test_drifting_policy_is_left_to_the_server(options: dict[str, Any]) -> None:
    """Ranges, tool counts and allowed strings are not checked: sent as the API's JSON."""

    async def main() -> None:
        async with api(ok(run_json(status="queued"))) as (server, client):
            await client.runs.create("thread_1", assistant_id="asst_1", **options)
        sent = json.loads(server.seen[0].body)
        expected = json.loads(json.dumps(request_converter.unstructure(options)))
        assert sent == {"assistant_id": "asst_1", **expected}

    asyncio.run(main())


@pytest.mark.parametrize(
    ("options", "param"),
    [(o, p) for _, o, p in BAD_CREATES],
    ids=[n for n, _, _ in BAD_CREATES],
)
def test_bad_create_is_refused_before_sending(
    options: dict[str, Any], param: str
) -> None:
    """Each out-of-range create option raises InvalidRequestError naming it; nothing is sent."""

    async def main() -> None:
        async with api() as (server, client):
            with pytest.raises(exc.InvalidRequestError) as info:
                await client.runs.create(
                    "thread_1", **{"assistant_id": "asst_1", **options}
                )
        assert info.value.param == param
        assert server.seen == []

    asyncio.run(main())


def test_create_thread_and_run_posts_the_thread() -> None:
    """create_thread_and_run POSTs /threads/runs with the thread and tool resources."""

    async def main() -> None:
        async with api(ok(run_json(status="queued"))) as (server, client):
            await client.runs.create_thread_and_run(
                assistant_id="asst_1",
                thread=ThreadRequest(
                    messages=[MessageRequest(role="user", content="hello")],
                    metadata={"t": "1"},
                ),
                tools=[WEATHER],
                tool_resources={"code_interpreter": {"file_ids": ["file_1"]}},
            )
        (seen,) = server.seen
        assert (seen.method, seen.path) == ("POST", "/v1/threads/runs")
        body = json.loads(seen.body)
        assert body["thread"] == {
            "messages": [{"role": "user", "content": "hello"}],
            "metadata": {"t": "1"},
        }
        assert body["tool_resources"] == {"code_interpreter": {"file_ids": ["file_1"]}}
        assert body["tools"][0]["function"]["name"] == "get_weather"

    asyncio.run(main())


def test_create_thread_and_run_checks_the_thread() -> None:
    """The thread's metadata is checked before sending."""

    async def main() -> None:
        async with api() as (server, client):
            with pytest.raises(exc.InvalidRequestError):
                await client.runs.create_thread_and_run(
                    assistant_id="a", thread=ThreadRequest(metadata={"k" * 70: "v"})
                )
        assert server.seen == []

    asyncio.run(main())


RUNS = [run_json(f"run_{i}", created_at=1_700_000_000 + i) for i in range(5)]


def paged_runs(request: web.Request) -> Reply:
    q = request.query
    items = RUNS if q.get("order", "desc") == "asc" else RUNS[::-1]
    ids = [r["id"] for r in items]
    if "after" in q:
        items = items[ids.index(q["after"]) + 1 :]
    window = items[: int(q.get("limit", 20))]
    return ok(
        {
            "object": "list",
            "data": window,
            "first_id": window[0]["id"] if window else None,
            "last_id": window[-1]["id"] if window else None,
            "has_more": len(items) > len(window),
        }
    )


def test_list_runs_pages_like_steps() -> None:
    """runs.list is one page when awaited and every run when iterated."""

    async def main() -> None:
        async with api(*[paged_runs] * 4) as (server, client):
            page = await client.runs.list("thread_1", limit=2, order="asc")
            ids = [
                r.id async for r in client.runs.list("thread_1", limit=2, order="asc")
            ]
        assert [r.id for r in page.data] == ["run_0", "run_1"]
        assert page.has_more
        assert ids == [f"run_{i}" for i in range(5)]
        assert server.seen[0].path == "/v1/threads/thread_1/runs"
        assert [s.query for s in server.seen[1:]] == [
            "limit=2&order=asc",
            "limit=2&order=asc&after=run_1",
            "limit=2&order=asc&after=run_3",
        ]

    asyncio.run(main())


def test_submit_tool_outputs_posts_them_in_order() -> None:
    """submit_tool_outputs POSTs every output in one request, in the order given."""

    async def main() -> None:
        async with api(ok(run_json(status="queued"))) as (server, client):
            run = await client.runs.submit_tool_outputs(
                "thread_1",
                "run_1",
                tool_outputs=[
                    ToolOutput(tool_call_id="call_2", output="b"),
                    ToolOutput(tool_call_id="call_1", output="a"),
                ],
            )
        assert run.status is RunStatus.QUEUED
        (seen,) = server.seen
        assert seen.path == "/v1/threads/thread_1/runs/run_1/submit_tool_outputs"
        assert json.loads(seen.body) == {
            "tool_outputs": [
                {"tool_call_id": "call_2", "output": "b"},
                {"tool_call_id": "call_1", "output": "a"},
            ]
        }

    asyncio.run(main())


@pytest.mark.parametrize(
    "outputs",
    [
        [{"tool_call_id": "c"}],
        "not a list",
        [ToolOutput(tool_call_id="", output="x")],
        [ToolOutput(tool_call_id="c", output=1)],
    ],
)
def test_bad_tool_outputs_are_refused(outputs: list[Any]) -> None:
    """Tool outputs that are not ToolOutputs with an id and a string are refused unsent."""

    async def main() -> None:
        async with api() as (server, client):
            with pytest.raises(exc.InvalidRequestError):
                await client.runs.submit_tool_outputs(
                    "thread_1", "run_1", tool_outputs=outputs
                )
        assert server.seen == []

    asyncio.run(main())


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": "2"}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
    ],
)
def test_bad_per_call_options_are_refused_before_sending(
    options: dict[str, Any], param: str
) -> None:
    """A per-call timeout or retry count that makes no sense is a typed error, unsent."""

    async def main() -> None:
        async with api() as (server, client):
            with pytest.raises(exc.InvalidRequestError) as info:
                await client.runs.retrieve("thread_1", "run_1", **options)
        assert info.value.param == param
        assert server.seen == []

    asyncio.run(main())


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": "2"}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
    ],
)
def test_bad_client_options_are_refused_at_construction(
    options: dict[str, Any], param: str
) -> None:
    """A client's timeout or retry count of the wrong type is a typed error too."""
    with pytest.raises(exc.InvalidRequestError) as info:
        RunsClient(api_key="sk-x", **options)
    assert info.value.param == param


def test_a_closed_client_refuses_calls_and_opens_no_session() -> None:
    """After aclose, a call is a typed error, not a new session that leaks."""

    async def main() -> None:
        async with api() as (server, client):
            await client.runs.retrieve("thread_1", "run_1")
            await client.aclose()
            with pytest.raises(openai_runs.OpenAIRunsError, match="closed"):
                await client.runs.retrieve("thread_1", "run_1")
        assert len(server.seen) == 1

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


# A hook on the public converter is global state: it is registered in a
# process of its own, so no other test sees it.
_USER_HOOK = textwrap.dedent(
    """
    import asyncio

    from openai_runs import Run, RunsClient, RunStatus, converter
    from openai_runs.testing import Emulator, RunScript

    converter.register_structure_hook(RunStatus | str, lambda value, _: "mine")
    converter.register_structure_hook(Run, lambda value, _: "not a run")


    async def main() -> None:
        async with Emulator() as emu:
            created = emu.create_run(script=RunScript.endless())
            assert converter.structure(created, Run) == "not a run"
            async with RunsClient(base_url=emu.url, api_key=emu.api_key) as client:
                run = await client.runs.retrieve(created["thread_id"], created["id"])
                assert isinstance(run, Run), run
                assert run.status is RunStatus.IN_PROGRESS, run.status
                page = await client.runs.list(created["thread_id"])
                assert page.data[0].status is RunStatus.IN_PROGRESS
        print("isolated")


    asyncio.run(main())
    """
)


def test_a_hook_on_the_public_converter_does_not_change_client_parsing() -> None:
    """A user's hook on openai_runs.converter applies to their structure calls only."""
    result = subprocess.run(
        [sys.executable, "-c", _USER_HOOK],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "isolated"
