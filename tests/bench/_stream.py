"""The streaming figure: client CPU per event, and time to first token.

    python tests/bench/_stream.py [--quick]      # this scenario alone

A lean aiohttp server, in its own process, answers ``POST .../runs`` with
``stream: true`` by writing one pre-serialized event stream of a run as fast
as the socket takes it: the opening run and step events, a message of
``DELTAS`` text deltas, the closing events and ``[DONE]`` (the shapes of
``AssistantStreamEvent``). The clients read the same stream in the same
process, interleaved (the order rotates each repetition):

- ``openai_runs``: ``client.runs.stream(...)``, every event typed, snapshots kept;
- ``openai``: ``client.beta.threads.runs.stream(...)``, the official client;
- ``aiohttp + json``: one ``ClientSession``, lines split and each ``data``
  line decoded with ``json.loads``: the practical floor of a client that
  looks at the events;
- ``aiohttp bytes``: the body read and thrown away, the transport alone.

Figures: client CPU µs per event (``time.process_time`` over whole streams,
divided by the events), its ratio to ``aiohttp + json`` from the same
repetition, and the wall time from sending the request to the first text
delta in the caller's hands (time to first token), medians over repetitions.
"""

# ruff: noqa: PLC0415 - clients load their SDK only when they are measured
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import _payloads
import aiohttp
from aiohttp import web

HERE = Path(__file__).resolve().parent
THREAD = "thread_stream0000000000000000"
RUN = "run_stream000000000000000000"
STEP = "step_stream00000000000000000"
MESSAGE = "msg_stream000000000000000000"
DELTAS = 500
NAMES = ("openai_runs", "openai", "aiohttp + json", "aiohttp bytes")
FLOOR = "aiohttp + json"


def _event(name: str, data: Any) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"event: {name}\ndata: {text}\n\n".encode()


def stream_body(deltas: int = DELTAS) -> tuple[bytes, int]:
    """The bytes of one run's event stream, and how many events it has."""
    run = _payloads.run(THREAD, RUN, "queued")
    step = {
        "id": STEP,
        "object": "thread.run.step",
        "created_at": _payloads.CREATED,
        "assistant_id": _payloads.ASSISTANT,
        "thread_id": THREAD,
        "run_id": RUN,
        "type": "message_creation",
        "status": "in_progress",
        "step_details": {
            "type": "message_creation",
            "message_creation": {"message_id": MESSAGE},
        },
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "metadata": {},
        "usage": None,
    }
    message = {
        "id": MESSAGE,
        "object": "thread.message",
        "created_at": _payloads.CREATED,
        "thread_id": THREAD,
        "status": "in_progress",
        "incomplete_details": None,
        "completed_at": None,
        "incomplete_at": None,
        "role": "assistant",
        "content": [],
        "assistant_id": _payloads.ASSISTANT,
        "run_id": RUN,
        "attachments": [],
        "metadata": {},
    }
    words = [f"word{i} " for i in range(deltas)]
    events = [
        _event("thread.run.created", run),
        _event("thread.run.queued", run),
        _event("thread.run.in_progress", {**run, "status": "in_progress"}),
        _event("thread.run.step.created", step),
        _event("thread.run.step.in_progress", step),
        _event("thread.message.created", message),
        _event("thread.message.in_progress", message),
    ]
    for word in words:
        delta = {
            "id": MESSAGE,
            "object": "thread.message.delta",
            "delta": {
                "content": [{"index": 0, "type": "text", "text": {"value": word}}]
            },
        }
        events.append(_event("thread.message.delta", delta))
    text = {"type": "text", "text": {"value": "".join(words), "annotations": []}}
    done_message = {**message, "status": "completed", "content": [text]}
    done_step = {**step, "status": "completed"}
    done_run = _payloads.run(THREAD, RUN, "completed")
    events += [
        _event("thread.message.completed", done_message),
        _event("thread.run.step.completed", done_step),
        _event("thread.run.completed", done_run),
    ]
    return b"".join([*events, b"event: done\ndata: [DONE]\n\n"]), len(events)


# --- The server (its own process) ------------------------------------------------


def serve() -> None:
    """Serve the stream on a free port; print it; stop when stdin closes."""
    body, _ = stream_body()

    async def runs(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "x-request-id": "req_bench"}
        )
        await response.prepare(request)
        # Written in the pieces a live stream arrives in: a few events each.
        for start in range(0, len(body), 4096):
            await response.write(body[start : start + 4096])
        await response.write_eof()
        return response

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/threads/{thread_id}/runs", runs)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(json.dumps({"port": port}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())


# --- The clients -------------------------------------------------------------------

Reader = Callable[[], Awaitable[tuple[int, float]]]
"""Reads one stream; returns its events and the seconds to the first text."""


def readers(url: str) -> tuple[dict[str, Reader], Callable[[], Awaitable[None]]]:
    """One reader per client, and a function that closes them all."""
    import openai

    import openai_runs

    ours = openai_runs.RunsClient(api_key="sk-bench", base_url=f"{url}/v1")
    theirs = openai.AsyncOpenAI(api_key="sk-bench", base_url=f"{url}/v1")
    session = aiohttp.ClientSession()
    post = f"{url}/v1/threads/{THREAD}/runs"
    body = {"assistant_id": _payloads.ASSISTANT, "stream": True}

    async def openai_runs_reader() -> tuple[int, float]:
        started, first, n = time.perf_counter(), 0.0, 0
        async with ours.runs.stream(THREAD, assistant_id=_payloads.ASSISTANT) as s:
            async for event in s:
                n += 1
                if not first and event.event == "thread.message.delta":
                    first = time.perf_counter() - started
        return n, first

    async def openai_reader() -> tuple[int, float]:
        started, first, n = time.perf_counter(), 0.0, 0
        async with theirs.beta.threads.runs.stream(
            thread_id=THREAD, assistant_id=_payloads.ASSISTANT
        ) as s:
            async for event in s:
                n += 1
                if not first and event.event == "thread.message.delta":
                    first = time.perf_counter() - started
        return n, first

    async def aiohttp_json_reader() -> tuple[int, float]:
        started, first, n = time.perf_counter(), 0.0, 0
        async with session.post(post, json=body) as response:
            pending = b""
            async for chunk in response.content.iter_any():
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if line.startswith(b"data: ") and line != b"data: [DONE]":
                        data = json.loads(line[6:])
                        n += 1
                        if not first and data["object"] == "thread.message.delta":
                            first = time.perf_counter() - started
        return n, first

    async def aiohttp_bytes_reader() -> tuple[int, float]:
        started, first, n = time.perf_counter(), 0.0, 0
        async with session.post(post, json=body) as response:
            async for chunk in response.content.iter_any():
                n += chunk.count(b"\n\n")
                if not first and b"thread.message.delta" in chunk:
                    first = time.perf_counter() - started
        return n - 1, first  # less [DONE]

    async def close() -> None:
        await ours.aclose()
        await theirs.close()
        await session.close()

    return {
        "openai_runs": openai_runs_reader,
        "openai": openai_reader,
        "aiohttp + json": aiohttp_json_reader,
        "aiohttp bytes": aiohttp_bytes_reader,
    }, close


async def measure(url: str, *, reps: int, streams: int) -> dict[str, Any]:
    """CPU µs per event and time to first token, per client."""
    _, events = stream_body()
    found, close = readers(url)
    cpu: dict[str, list[float]] = {name: [] for name in NAMES}
    ttft: dict[str, list[float]] = {name: [] for name in NAMES}
    try:
        for name in NAMES:  # warm up: connections, imports, caches
            n, _ = await found[name]()
            assert n == events, (name, n, events)
        for rep in range(reps):
            k = rep % len(NAMES)
            for name in [*NAMES[k:], *NAMES[:k]]:
                started = time.process_time()
                for _ in range(streams):
                    _, first = await found[name]()
                    ttft[name].append(first * 1000)
                used = time.process_time() - started
                cpu[name].append(used / (streams * events) * 1e6)
    finally:
        await close()
    out: dict[str, Any] = {}
    for name in NAMES:
        ratios = [a / b for a, b in zip(cpu[name], cpu[FLOOR], strict=True)]
        out[name] = {
            "cpu_us_per_event": statistics.median(cpu[name]),
            "ratio": statistics.median(ratios),
            "ttft_ms_p50": statistics.median(ttft[name]),
            "samples": [round(v, 2) for v in cpu[name]],
        }
    return {"events_per_stream": events, "streams": streams, "clients": out}


def start_server() -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, str(HERE / "_stream.py"), "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE,
    )
    assert server.stdout is not None
    port = json.loads(server.stdout.readline())["port"]
    return server, f"http://127.0.0.1:{port}"


def stream_section(*, quick: bool) -> dict[str, Any]:
    """The streaming figure, with its own server process."""
    server, url = start_server()
    try:
        return asyncio.run(
            measure(url, reps=3 if quick else 5, streams=4 if quick else 12)
        )
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)


def print_table(result: dict[str, Any]) -> None:
    print(
        f"\nstreaming: {result['events_per_stream']} events per stream "
        "(client CPU µs per event, ratio to aiohttp + json; time to first token)"
    )
    for name, r in result["clients"].items():
        print(
            f"  {name:<16} {r['cpu_us_per_event']:8.1f} µs ({r['ratio']:.2f}x)"
            f"  ttft {r['ttft_ms_p50']:.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    print_table(stream_section(quick=args.quick))


if __name__ == "__main__":
    main()
