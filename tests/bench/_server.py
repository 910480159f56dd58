"""The benchmark server: a lean aiohttp app with pre-serialized bodies.

Run as a script it binds 127.0.0.1 on a free port, prints the port and serves
until its stdin closes. Runs are registered in batches with their durations;
each then answers ``in_progress`` until its end (on the shared monotonic
clock), ``completed`` after, and counts the requests it was sent. The bodies
are serialized once, when a batch is registered, so a request costs the
server a dict lookup and a write: the client is what is measured.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import _payloads
from aiohttp import web

THREAD = "thread_bench0000000000000000"
STEPS_RUN = "run_steps000000000000000000"
STEP_COUNT = 250

JSON_HEADERS = {
    "Content-Type": "application/json",
    "openai-version": "2020-10-01",
    "openai-processing-ms": "23",
    "x-request-id": "req_6f0c1a4e9d3b2a7c8e5f1d0b9a8c7e6d",
}


class _Run:
    __slots__ = ("busy", "count", "done", "end")

    def __init__(self, end: float, busy: bytes, done: bytes) -> None:
        self.end = end
        self.busy = busy
        self.done = done
        self.count = 0


class BenchState:
    """The runs of the current batch, and the steps listing."""

    def __init__(self) -> None:
        self.runs: dict[str, _Run] = {}
        self.batch = 0
        self.busy_headers = dict(JSON_HEADERS)
        self.steps = [_payloads.step(THREAD, STEPS_RUN, i) for i in range(STEP_COUNT)]
        self.pages: dict[str, bytes] = {}

    def register(self, durations: list[float], hint_ms: int | None) -> dict[str, Any]:
        self.batch += 1
        self.busy_headers = dict(JSON_HEADERS)
        if hint_ms is not None:
            self.busy_headers["openai-poll-after-ms"] = str(hint_ms)
        now = time.monotonic()
        created = int(time.time())
        self.runs = {}
        ids, ends = [], []
        for i, duration in enumerate(durations):
            run_id = f"run_b{self.batch:05d}{i:018d}"
            end = now + duration
            self.runs[run_id] = _Run(
                end,
                _payloads.dumps(_payloads.run(THREAD, run_id, "in_progress", created)),
                _payloads.dumps(_payloads.run(THREAD, run_id, "completed", created)),
            )
            ids.append(run_id)
            ends.append(end)
        return {"thread_id": THREAD, "run_ids": ids, "ends": ends}


async def get_run(request: web.Request) -> web.Response:
    state: BenchState = request.app["state"]
    run = state.runs.get(request.match_info["run_id"])
    if run is None:
        return web.Response(
            status=404,
            body=b'{"error":{"message":"No run found","type":"invalid_request_error",'
            b'"param":null,"code":null}}',
            headers=JSON_HEADERS,
        )
    run.count += 1
    if time.monotonic() >= run.end:
        return web.Response(body=run.done, headers=JSON_HEADERS)
    return web.Response(body=run.busy, headers=state.busy_headers)


async def list_steps(request: web.Request) -> web.Response:
    state: BenchState = request.app["state"]
    key = request.query_string
    body = state.pages.get(key)
    if body is None:
        limit = int(request.query.get("limit", "20"))
        page = _payloads.steps_page(
            state.steps, limit=limit, after=request.query.get("after")
        )
        body = state.pages[key] = _payloads.dumps(page)
    return web.Response(body=body, headers=JSON_HEADERS)


async def register(request: web.Request) -> web.Response:
    state: BenchState = request.app["state"]
    data = await request.json()
    answer = state.register(data["durations"], data.get("hint_ms"))
    return web.json_response(answer)


async def stats(request: web.Request) -> web.Response:
    state: BenchState = request.app["state"]
    counts = [run.count for run in state.runs.values()]
    return web.json_response({"requests": sum(counts), "counts": counts})


def build_app() -> web.Application:
    app = web.Application()
    app["state"] = BenchState()
    app.router.add_get("/v1/threads/{thread_id}/runs/{run_id}", get_run)
    app.router.add_get("/v1/threads/{thread_id}/runs/{run_id}/steps", list_steps)
    app.router.add_post("/bench/runs", register)
    app.router.add_get("/bench/stats", stats)
    return app


async def main() -> None:
    runner = web.AppRunner(build_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    port = runner.addresses[0][1]
    print(json.dumps({"port": port}), flush=True)
    loop = asyncio.get_running_loop()
    # Serve until the parent closes our stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
