"""A recording HTTP server on loopback, and JSON bodies like the API's, for client tests."""

from __future__ import annotations

import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
from aiohttp import web
from aiohttp.test_utils import TestServer

from openai_runs import RetryPolicy, RunsClient

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
