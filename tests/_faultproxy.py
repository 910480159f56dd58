"""A fault-injecting aiohttp proxy between the SDK and the emulator.

The emulator's own faults (latency, error statuses with ``Retry-After``, a
dropped connection, a malformed or truncated body) answer inside a well-formed
HTTP exchange. This proxy breaks the exchange itself, the ways networks and
gateways do: a reset in the middle of the body, a server that accepts and never
answers, a body that stops half-way, a slow trickle, the wrong
``Content-Type``, a gateway's HTML 502/504 page, valid JSON that is not a run,
and a huge page of steps.

Faults are named (see :data:`FAULTS`). Queue them for the next requests with
:meth:`FaultProxy.plan`, or draw them at random, seeded, with
:meth:`FaultProxy.mix`. Every request and every fault injected is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

FAULTS = (
    "reset_request",  # the connection is dropped before any answer
    "reset_body",  # headers and half the body, then a TCP reset
    "hang",  # the request is accepted and never answered
    "half_body",  # Content-Length promises more than is sent, then a clean close
    "trickle",  # the body comes a few bytes at a time, slower than any timeout
    "wrong_content_type",  # the right JSON, labelled text/html
    "html_502",  # a gateway's HTML page, no request id
    "html_504",
    "not_a_run",  # valid JSON of the wrong shape, with the upstream's request id
    "huge_steps",  # a 100-step page with file-search result content
    "cut_stream",  # the body passed on as it comes, reset after `cut_after` events
    "drop_answer",  # forwarded, so the server acts, then a reset instead of its answer
)

HOP_BY_HOP = frozenset(
    {"connection", "content-length", "content-encoding", "transfer-encoding"}
)

GATEWAY_PAGE = (
    "<html><head><title>{status} {reason}</title></head><body>"
    "<center><h1>{status} {reason}</h1></center><hr><center>nginx</center>"
    "</body></html>"
)


class FaultProxy:
    """Forwards every request to *upstream*, breaking some on the way.

    Args:
        upstream: The origin to forward to, such as ``http://127.0.0.1:PORT``.
        trickle_pause: Seconds between the 8-byte pieces of a ``trickle``.
        hang_for: Seconds a ``hang`` holds the request before dropping it.

    Attributes:
        requests: Requests received.
        injected: Faults injected, by name.
    """

    def __init__(
        self,
        upstream: str,
        *,
        trickle_pause: float = 0.05,
        hang_for: float = 30.0,
        cut_after: int = 6,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.cut_after = cut_after
        self.trickle_pause = trickle_pause
        self.hang_for = hang_for
        self.requests = 0
        self.injected: Counter[str] = Counter()
        self._planned: deque[str] = deque()
        self._weights: dict[str, float] = {}
        self._rate = 0.0
        self._random = random.Random(0)
        self._closing = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._server: TestServer | None = None

    # -- choosing faults ------------------------------------------------------

    def plan(self, *faults: str) -> None:
        """Apply *faults* to the next requests, one each, in order."""
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}")
        self._planned.extend(faults)

    def mix(self, weights: Mapping[str, float], *, rate: float, seed: int) -> None:
        """Break a share *rate* of requests with faults drawn by *weights*."""
        self._weights = dict(weights)
        self._rate = rate
        self._random = random.Random(seed)

    def calm(self) -> None:
        """Stop injecting: forget the plan and the mix."""
        self._planned.clear()
        self._rate = 0.0

    def _draw(self) -> str | None:
        if self._planned:
            return self._planned.popleft()
        if self._rate and self._random.random() < self._rate:
            names = list(self._weights)
            weights = [self._weights[n] for n in names]
            return self._random.choices(names, weights)[0]
        return None

    # -- serving --------------------------------------------------------------

    @property
    def url(self) -> str:
        """The proxy's origin; append the emulator's prefix (``/v1``)."""
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._session = aiohttp.ClientSession()
        # A short shutdown: a handler still waiting (a "hang") must not hold
        # the test up once the client has gone.
        self._server = TestServer(app, host="127.0.0.1", shutdown_timeout=0.1)
        await self._server.start_server()

    async def close(self) -> None:
        """Release hanging requests, stop listening, close the upstream session."""
        self._closing.set()
        if self._server is not None:
            await self._server.close()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with self._session.request(
            request.method,
            self.upstream + request.raw_path,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as upstream:
            body = await upstream.read()
            kept = {
                k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP
            }
            return upstream.status, kept, body

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        fault = self._draw()
        if fault is not None:
            self.injected[fault] += 1
        if fault == "reset_request":
            _drop(request, reset=True)
            raise asyncio.CancelledError
        if fault == "hang":
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.hang_for):
                    await self._closing.wait()
            _drop(request, reset=True)
            raise asyncio.CancelledError
        if fault in ("html_502", "html_504"):
            status = 502 if fault == "html_502" else 504
            reason = "Bad Gateway" if status == 502 else "Gateway Time-out"
            page = GATEWAY_PAGE.format(status=status, reason=reason)
            return web.Response(status=status, text=page, content_type="text/html")
        if fault == "cut_stream":
            return await self._cut_stream(request)
        try:
            status, headers, body = await self._forward(request)
        except aiohttp.ClientError:  # the upstream dropped us: a gateway's 502
            page = GATEWAY_PAGE.format(status=502, reason="Bad Gateway")
            return web.Response(status=502, text=page, content_type="text/html")
        if fault == "drop_answer":
            _drop(request, reset=True)
            raise asyncio.CancelledError
        if fault == "not_a_run":
            body = json.dumps({"object": "list", "data": [1, 2, 3]}).encode()
        elif fault == "huge_steps":
            body = json.dumps(huge_steps_page()).encode()
        elif fault == "wrong_content_type":
            headers["Content-Type"] = "text/html; charset=utf-8"
        if fault in ("reset_body", "half_body", "trickle"):
            return await self._stream(request, fault, status, headers, body)
        return web.Response(status=status, headers=headers, body=body)

    async def _stream(
        self,
        request: web.Request,
        fault: str,
        status: int,
        headers: dict[str, str],
        body: bytes,
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(body)
        with contextlib.suppress(ConnectionResetError):  # the client gave up first
            await response.prepare(request)
            if fault == "trickle":
                for start in range(0, len(body), 8):
                    await response.write(body[start : start + 8])
                    await asyncio.sleep(self.trickle_pause)
                await response.write_eof()
                return response
            await response.write(body[: len(body) // 2])
            await asyncio.sleep(0.01)  # let the half reach the client first
        if fault == "trickle":
            return response
        _drop(request, reset=fault == "reset_body")
        raise asyncio.CancelledError

    async def _cut_stream(self, request: web.Request) -> web.StreamResponse:
        """Pass a server-sent event stream on as it comes; reset it mid-way."""
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with self._session.request(
            request.method,
            self.upstream + request.raw_path,
            headers=headers,
            data=await request.read(),
        ) as upstream:
            kept = {
                k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP
            }
            response = web.StreamResponse(status=upstream.status, headers=kept)
            await response.prepare(request)
            events, pending = 0, b""
            async for chunk in upstream.content.iter_any():
                *complete, pending = (pending + chunk).split(b"\n\n")
                for event in complete:
                    await response.write(event + b"\n\n")
                    events += 1
                    if events >= self.cut_after:
                        await asyncio.sleep(0.01)  # let them reach the client
                        _drop(request, reset=True)
                        raise asyncio.CancelledError
            await response.write_eof()
            return response


def _drop(request: web.Request, *, reset: bool) -> None:
    """Close the client's connection: abruptly (RST) or cleanly (FIN)."""
    transport = request.transport
    if transport is None:
        return
    if reset:
        transport.abort()
    else:
        transport.close()


def huge_steps_page(n: int = 100) -> dict[str, Any]:
    """A page of *n* file-search steps, each with result content (~1.5 MB)."""
    text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 50
    steps = [
        {
            "id": f"step_{i:03d}",
            "object": "thread.run.step",
            "created_at": 1_700_000_000 + i,
            "assistant_id": "asst_1",
            "thread_id": "thread_1",
            "run_id": "run_1",
            "type": "tool_calls",
            "status": "completed",
            "cancelled_at": None,
            "completed_at": 1_700_000_100 + i,
            "expired_at": None,
            "failed_at": None,
            "last_error": None,
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            "metadata": {},
            "step_details": {
                "type": "tool_calls",
                "tool_calls": [
                    {
                        "id": f"call_{i:03d}",
                        "type": "file_search",
                        "file_search": {
                            "ranking_options": {
                                "ranker": "default_2024_08_21",
                                "score_threshold": 0.0,
                            },
                            "results": [
                                {
                                    "file_id": f"file_{i}_{j}",
                                    "file_name": f"doc_{j}.pdf",
                                    "score": 0.9 - j / 10,
                                    "content": [{"type": "text", "text": text}],
                                }
                                for j in range(5)
                            ],
                        },
                    }
                ],
            },
        }
        for i in range(n)
    ]
    return {
        "object": "list",
        "data": steps,
        "first_id": steps[0]["id"],
        "last_id": steps[-1]["id"],
        "has_more": False,
    }


@contextlib.asynccontextmanager
async def fault_proxy(upstream: str, **options: Any) -> AsyncIterator[FaultProxy]:
    """Run a :class:`FaultProxy` in front of *upstream* for the block."""
    proxy = FaultProxy(upstream, **options)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
