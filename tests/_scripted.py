"""A scripted Runs server on loopback for the watcher tests: runs follow a script."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import attrs
from aiohttp import web
from aiohttp.test_utils import TestServer

from openai_runs import RetryPolicy, RunsClient, WatchPolicy

FAST = WatchPolicy(
    initial=0.005,
    multiplier=2.0,
    maximum=0.02,
    jitter=0.0,
    min_poll_after=0.001,
    max_poll_after=0.05,
    retry=RetryPolicy(initial=0.001, maximum=0.005, jitter=0.001),
    cancel_grace=0.5,
)


@attrs.frozen
class Reply:
    """One answer: a run in *status*, or an error *code*, or a raw *body*."""

    status: str | None = "in_progress"
    code: int = 200
    headers: dict[str, str] = attrs.field(factory=dict)
    body: bytes | None = None
    delay: float = 0.0
    fields: dict[str, Any] = attrs.field(factory=dict)


def error(code: int, message: str = "nope", **headers: str) -> Reply:
    body = json.dumps({"error": {"message": message, "type": "x", "code": None}})
    return Reply(None, code, dict(headers), body.encode())


def run_json(run_id: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": run_id,
        "object": "thread.run",
        "created_at": 1_700_000_000,
        "thread_id": "thread_1",
        "assistant_id": "asst_1",
        "status": status,
        "expires_at": None,
        "completed_at": None,
        "failed_at": None,
        "cancelled_at": None,
        "tools": [],
        **fields,
    }


@attrs.define
class Script:
    """A run's answers: one reply per GET, the last one repeated.

    After a cancel, GETs follow *after_cancel* instead.
    """

    replies: list[Reply]
    cancel_reply: Reply = Reply("cancelling")
    after_cancel: list[Reply] = attrs.field(
        factory=lambda: [Reply("cancelling"), Reply("cancelled")]
    )
    gets: int = 0
    cancels: int = 0
    times: list[float] = attrs.field(factory=list)

    def next_reply(self) -> Reply:
        replies = self.after_cancel if self.cancels else self.replies
        index = self.gets - self._gets_at_cancel if self.cancels else self.gets
        return replies[min(index, len(replies) - 1)]

    _gets_at_cancel: int = 0


@attrs.define
class Server:
    """The scripts by run id, and what the server saw."""

    scripts: dict[str, Script]
    in_flight: int = 0
    peak: int = 0
    log: list[tuple[float, str]] = attrs.field(factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        base = "/v1/threads/{thread_id}/runs/{run_id}"
        app.router.add_get(base, self.get)
        app.router.add_post(base + "/cancel", self.cancel)
        return app

    async def get(self, request: web.Request) -> web.Response:
        run_id = request.match_info["run_id"]
        script = self.scripts.get(run_id)
        if script is None:
            return await self.answer(
                run_id, error(404, f"No run found with id '{run_id}'.")
            )
        reply = script.next_reply()
        script.gets += 1
        script.times.append(time.monotonic())
        return await self.answer(run_id, reply)

    async def cancel(self, request: web.Request) -> web.Response:
        run_id = request.match_info["run_id"]
        script = self.scripts[run_id]
        script.cancels += 1
        script._gets_at_cancel = script.gets
        return await self.answer(run_id, script.cancel_reply)

    async def answer(self, run_id: str, reply: Reply) -> web.Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.log.append((time.monotonic(), run_id))
        try:
            if reply.delay:
                await asyncio.sleep(reply.delay)
        finally:
            self.in_flight -= 1
        body = reply.body
        if body is None:
            assert reply.status is not None
            body = json.dumps(run_json(run_id, reply.status, **reply.fields)).encode()
        return web.Response(
            body=body,
            status=reply.code,
            headers=reply.headers,
            content_type="application/json",
        )


@contextlib.asynccontextmanager
async def serve(
    scripts: dict[str, Script], **client_options: Any
) -> AsyncIterator[tuple[RunsClient, Server]]:
    """Start the scripted server and a client for it; close both after."""
    server = Server(scripts)
    async with TestServer(server.app()) as test_server:
        client = RunsClient(
            api_key="sk-test",
            base_url=str(test_server.make_url("/v1")),
            **client_options,
        )
        try:
            yield client, server
        finally:
            await client.aclose()
            session = client._transport.session
            assert session is None or session.closed


def client_tasks() -> set[asyncio.Task[Any]]:
    """The tasks alive now, but for the test server's own ones.

    The server side of the loopback connection lives in the same loop: its
    request handlers, and (on a loaded machine) the loop's tasks that are
    still accepting connections the client has already given up on.
    """
    server_side = ("RequestHandler.", "BaseSelectorEventLoop._accept_connection")
    return {
        task
        for task in asyncio.all_tasks()
        if not getattr(task.get_coro(), "__qualname__", "").startswith(server_side)
    }


def run_of(*statuses: str | Reply, **kwargs: Any) -> Script:
    """A script from statuses (or replies), one per GET."""
    replies = [s if isinstance(s, Reply) else Reply(s) for s in statuses]
    return Script(replies, **kwargs)
