"""Hostile and bad input: arbitrary arguments and bodies, path injection, secrets, TLS.

Arguments either become a well-formed request, checked at a loopback server
that records the raw path, or raise :class:`InvalidRequestError` with nothing
sent. Bodies either parse or raise :class:`APIDecodeError`. Nothing else
(``KeyError``, ``TypeError``, ``AttributeError``, ``UnicodeError``) escapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import ssl
import subprocess
import time
import traceback
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import aiohttp
import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from openai_runs import Response, RetryPolicy, Run, RunsClient, RunStep, WatchPolicy
from openai_runs import exceptions as exc
from openai_runs._client import _parse
from openai_runs._http import DEFAULT_MAX_RESPONSE_BYTES
from openai_runs._json import MAX_DEPTH
from openai_runs.auth import ApiKeyAuth, BearerAuth, TokenAuth
from openai_runs.models import FunctionDefinition, FunctionTool, Page, as_datetime
from openai_runs.testing import Emulator, RunScript

KEY = "sk-hostile-SECRET-abcdef0123456789"
INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"
RUN = {
    "id": "run_1",
    "object": "thread.run",
    "created_at": 1_700_000_000,
    "thread_id": "thread_1",
    "assistant_id": "asst_1",
    "status": "completed",
    "required_action": None,
    "last_error": None,
    "expires_at": None,
    "started_at": 1_700_000_001,
    "cancelled_at": None,
    "failed_at": None,
    "completed_at": 1_700_000_002,
    "incomplete_details": None,
    "model": "gpt-4o",
    "instructions": "",
    "tools": [{"type": "file_search"}],
    "metadata": {},
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    "temperature": 1.0,
    "top_p": 1.0,
    "max_prompt_tokens": None,
    "max_completion_tokens": None,
    "truncation_strategy": {"type": "auto", "last_messages": None},
    "response_format": "auto",
    "tool_choice": "auto",
    "parallel_tool_calls": True,
}
STEP = {
    "id": "step_1",
    "object": "thread.run.step",
    "created_at": 1_700_000_000,
    "assistant_id": "asst_1",
    "thread_id": "thread_1",
    "run_id": "run_1",
    "type": "tool_calls",
    "status": "completed",
    "cancelled_at": None,
    "completed_at": 1_700_000_001,
    "expired_at": None,
    "failed_at": None,
    "last_error": None,
    "usage": None,
    "metadata": {},
    "step_details": {
        "type": "tool_calls",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "file_search",
                "file_search": {
                    "results": [
                        {
                            "file_id": "file_1",
                            "file_name": "a.pdf",
                            "score": 0.5,
                            "content": [{"type": "text", "text": "hi"}],
                        }
                    ]
                },
            }
        ],
    },
}
PAGE = {
    "object": "list",
    "data": [STEP],
    "first_id": "step_1",
    "last_id": "step_1",
    "has_more": False,
}

NASTY_IDS = [
    "..",
    ".",
    "../runs",
    "run/../../admin",
    "run_1/cancel",
    "%2F",
    "run%2f..",
    "%2e%2e",
    "a?b=c",
    "run_1?limit=1",
    "a#frag",
    "a\r\nX-Injected: 1",
    "a\nb",
    "a\tb",
    " run",
    "run\x00",
    "a\\b",
    "http://evil.example/x",
    "\u2028",
    "\ud800",  # a lone surrogate: no UTF-8 form, so no URL form
]
LOOKALIKES = [
    "\uff0f",
    "\u2215",
    "@evil",
    ";x=1",
    "run_1;jsessionid=1",
    "ü",
    "$&'()*+,=",
    "~",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
ids = st.one_of(
    st.text(max_size=30),
    st.sampled_from(NASTY_IDS + LOOKALIKES),
    st.from_regex(r"\A[a-z]{1,6}_[A-Za-z0-9]{1,24}\Z"),
)
anything = st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=5))


@attrs.define
class Recorder:
    """A loopback server that records each request and answers with *body*."""

    seen: list[tuple[str, str, bytes]] = attrs.Factory(list)
    body: bytes | None = None
    status: int = 200

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.raw_path, await request.read()))
        body = self.body
        if body is None:
            parts = request.path.split("/")
            data = {"steps": PAGE}.get(parts[-1]) or (
                STEP if parts[-2:-1] == ["steps"] else RUN
            )
            body = json.dumps(data).encode()
        return web.Response(body=body, status=self.status)


@attrs.frozen
class Loopback:
    runner: asyncio.Runner
    recorder: Recorder
    client: RunsClient

    def call(self, coro: Any) -> Any:
        """Run *coro* after forgetting earlier requests; return its result."""
        self.recorder.seen.clear()
        self.recorder.body = None
        self.recorder.status = 200
        return self.runner.run(coro)


@pytest.fixture(name="loopback", scope="module")
def _loopback() -> Iterator[Loopback]:
    recorder = Recorder()
    with asyncio.Runner() as runner:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", recorder.handle)
        server = TestServer(app, host="127.0.0.1")
        runner.run(server.start_server())

        async def make() -> RunsClient:
            return RunsClient(
                api_key=KEY, base_url=str(server.make_url("/v1")), max_retries=0
            )

        client = runner.run(make())
        try:
            yield Loopback(runner, recorder, client)
        finally:
            runner.run(client.aclose())
            runner.run(server.close())


# No "explain" phase: it replays a failure hundreds of times over HTTP.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
FUZZ = settings(
    max_examples=150,
    deadline=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow],
)


def sent_or_refused(loopback: Loopback, call: Any) -> list[tuple[str, str, bytes]]:
    """Make a call: InvalidRequestError with nothing sent, or exactly one request."""
    try:
        loopback.call(attempt(call))
    except exc.InvalidRequestError:
        assert loopback.recorder.seen == []
        return []
    assert len(loopback.recorder.seen) == 1
    return loopback.recorder.seen


def segments(raw_path: str) -> list[str]:
    """The decoded path segments of a raw request path, without the query."""
    path = raw_path.partition("?")[0]
    assert "#" not in raw_path
    return [unquote(p) for p in path.split("/")]


@FUZZ
@given(thread_id=ids, run_id=ids, step_id=ids)
def test_any_ids_stay_in_their_segments_or_are_refused(
    loopback: Loopback, thread_id: str, run_id: str, step_id: str
) -> None:
    """Arbitrary ids reach the server each as exactly one path segment, or are refused."""
    seen = sent_or_refused(
        loopback,
        lambda: loopback.client.runs.steps.retrieve(thread_id, run_id, step_id),
    )
    if seen:
        method, raw_path, _ = seen[0]
        assert method == "GET"
        assert "?" not in raw_path
        assert segments(raw_path) == [
            "",
            "v1",
            "threads",
            thread_id,
            "runs",
            run_id,
            "steps",
            step_id,
        ]


@pytest.mark.parametrize("bad", NASTY_IDS)
def test_path_injection_is_refused_before_sending(loopback: Loopback, bad: str) -> None:
    """Ids that could leave their segment (../, %2F, ?, #, CR/LF, ...) are refused."""
    for call in (
        lambda: loopback.client.runs.retrieve(bad, "run_1"),
        lambda: loopback.client.runs.cancel("thread_1", bad),
        lambda: loopback.client.runs.steps.retrieve("thread_1", "run_1", bad),
        lambda: loopback.client.runs.steps.list("thread_1", "run_1", after=bad),
    ):
        with pytest.raises(exc.InvalidRequestError):
            loopback.call(attempt(call))
        assert loopback.recorder.seen == []


async def attempt(call: Any) -> None:
    """Make the call (a list refuses at once, the rest when awaited) and await it."""
    await call()


@pytest.mark.parametrize("odd", LOOKALIKES)
def test_lookalike_characters_are_sent_encoded_in_their_segment(
    loopback: Loopback, odd: str
) -> None:
    """Unicode slashes, ';', '@' and the like are percent-encoded, never a new path."""
    loopback.call(loopback.client.runs.retrieve("thread_1", odd))
    _, raw_path, _ = loopback.recorder.seen[0]
    assert raw_path.split("/")[-1] == quote(odd, safe="")
    assert segments(raw_path)[-1] == odd


@pytest.mark.parametrize("value", [None, 42, b"run_1", ["run_1"], ""])
def test_ids_that_are_not_strings_are_refused(loopback: Loopback, value: Any) -> None:
    """An id that is not a non-empty string is an InvalidRequestError, not a TypeError."""
    with pytest.raises(exc.InvalidRequestError):
        loopback.call(loopback.client.runs.retrieve("thread_1", value))
    assert loopback.recorder.seen == []


metadata = st.one_of(
    anything,
    st.text(max_size=5),
    st.lists(st.text(max_size=3), max_size=3),
    st.dictionaries(
        st.one_of(st.text(max_size=70), st.integers()),
        st.one_of(st.text(max_size=520), anything),
        max_size=18,
    ),
)


@FUZZ
@given(value=metadata)
def test_any_metadata_is_sent_exactly_or_refused(
    loopback: Loopback, value: Any
) -> None:
    """Arbitrary metadata is sent as the same JSON object, or refused before sending."""
    seen = sent_or_refused(
        loopback,
        lambda: loopback.client.runs.update("thread_1", "run_1", metadata=value),
    )
    if seen:
        body = json.loads(seen[0][2])
        assert body == ({} if value is None else {"metadata": value})


@FUZZ
@given(
    limit=st.one_of(anything, st.booleans(), st.text(max_size=3)),
    order=st.one_of(
        anything,
        st.text(max_size=5),
        st.sampled_from(["asc", "desc"]),
        st.lists(st.just("asc"), max_size=1),
    ),
    after=st.one_of(st.none(), ids, anything),
    before=st.one_of(st.none(), ids),
    include=st.one_of(
        st.none(),
        st.text(max_size=5),
        st.lists(
            st.one_of(
                st.just(INCLUDE), st.text(max_size=5), anything, st.lists(anything)
            ),
            max_size=2,
        ),
    ),
)
def test_any_query_values_are_sent_exactly_or_refused(
    loopback: Loopback, limit: Any, order: Any, after: Any, before: Any, include: Any
) -> None:
    """Arbitrary paging values become the same query parameters, or are refused."""
    seen = sent_or_refused(
        loopback,
        lambda: loopback.client.runs.steps.list(
            "thread_1",
            "run_1",
            limit=limit,
            order=order,
            after=after,
            before=before,
            include=include,
        ).first_page(),
    )
    if seen:
        path, _, query = seen[0][1].partition("?")
        assert path == "/v1/threads/thread_1/runs/run_1/steps"
        expected = [
            (name, str(value))
            for name, value in [
                ("limit", limit),
                ("order", order),
                ("after", after),
                ("before", before),
            ]
            if value is not None
        ] + [("include[]", v) for v in include or ()]
        assert parse_qsl(query, keep_blank_values=True) == expected


def mutated(base: dict[str, Any]) -> st.SearchStrategy[Any]:
    """*base* with one field replaced, dropped, or nested values replaced."""
    keys = st.sampled_from(sorted(base))
    return st.one_of(
        st.builds(lambda k, v: {**base, k: v}, keys, json_values),
        st.builds(lambda k: {x: y for x, y in base.items() if x != k}, keys),
        json_values,
    )


@settings(max_examples=400, deadline=None)
@given(
    body=st.one_of(mutated(RUN), mutated(STEP), mutated(PAGE)),
    cls=st.sampled_from([Run, RunStep, Page[RunStep], Page[Run]]),
)
def test_any_json_body_parses_or_is_a_decode_error(body: Any, cls: Any) -> None:
    """Any JSON body, and valid ones with one field made hostile, parse or raise APIDecodeError."""
    try:
        raw = json.dumps(body).encode()
    except ValueError:  # NaN is fine for json.dumps; this guards the odd case
        return
    outcome: Any
    try:
        outcome = _parse(raw, cls, 200, {"x-request-id": "req_1"})
    except exc.APIDecodeError as error:
        outcome = error
    if isinstance(outcome, exc.APIDecodeError):
        assert (outcome.request_id, outcome.status_code) == ("req_1", 200)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=200))
def test_any_bytes_body_is_a_decode_error(raw: bytes) -> None:
    """Arbitrary bytes as a 200 body parse only if they are a run; else APIDecodeError."""
    with contextlib.suppress(exc.APIDecodeError):
        _parse(raw, Run, 200, {})


@settings(max_examples=200, deadline=None)
@given(
    status=st.integers(300, 599),
    body=st.one_of(
        st.binary(max_size=100),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.builds(
            lambda e: json.dumps({"error": e}).encode(),
            st.one_of(json_values, st.dictionaries(st.text(), json_values)),
        ),
    ),
)
def test_any_error_answer_maps_to_a_response_error(status: int, body: bytes) -> None:
    """Any error status with any body becomes an APIResponseError, never a crash."""
    error = exc.error_from_response(status, {"x-request-id": "req_1"}, body)
    assert isinstance(error, exc.APIStatusError)
    assert error.status_code == status
    assert error.request_id == "req_1"
    assert isinstance(str(error), str)


def test_hostile_bodies_over_the_wire_are_decode_errors(loopback: Loopback) -> None:
    """Over HTTP, non-run bodies end in APIDecodeError carrying the request's context."""
    for body in [b"", b"null", b"[]", b'{"id": 1}', b"\xff\xfe", b'"run"', b"{" * 5000]:
        loopback.recorder.body = body
        with pytest.raises(exc.APIDecodeError) as info:
            loopback.runner.run(loopback.client.runs.retrieve("thread_1", "run_1"))
        assert len(info.value.excerpt) <= exc.EXCERPT_LIMIT


# -- secrets -------------------------------------------------------------------


def test_key_echoed_by_a_server_never_reaches_errors_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server echoing the Authorization header back cannot put the key in errors or logs."""
    caplog.set_level(logging.DEBUG, logger="openai_runs")

    async def echo(request: web.Request) -> web.Response:
        page = f"<pre>bad request; you sent {dict(request.headers)!r}</pre>"
        status = 400 if request.path.endswith("run_1") else 200
        return web.Response(status=status, text=page)

    async def main() -> list[str]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", echo)
        texts: list[str] = []
        async with (
            TestServer(app, host="127.0.0.1") as http,
            RunsClient(api_key=KEY, base_url=str(http.make_url("/v1"))) as client,
        ):
            for run_id in ("run_1", "run_2"):  # an error status, then a bad 200
                try:
                    await client.runs.retrieve("thread_1", run_id)
                except exc.APIResponseError as error:
                    texts += [str(error), repr(error), error.excerpt, repr(error.body)]
                    texts += [str(error.args), error.message]
        return texts

    texts = asyncio.run(main())
    assert len(texts) == 12
    assert all(KEY not in text for text in texts)
    assert "sk-h" not in caplog.text


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_no_redirect_is_followed_so_the_key_stays_home(status: int) -> None:
    """Every redirect status is an error; the other origin never sees a request."""
    other: list[web.Request] = []

    async def elsewhere(request: web.Request) -> web.Response:
        other.append(request)
        return web.json_response(RUN)

    to: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": to[0]})

    async def main() -> None:
        target_app, home_app = web.Application(), web.Application()
        target_app.router.add_route("*", "/{tail:.*}", elsewhere)
        home_app.router.add_route("*", "/{tail:.*}", redirect)
        async with TestServer(target_app, host="127.0.0.1") as target:
            to.append(str(target.make_url("/v1/threads/thread_1/runs/run_1")))
            async with (
                TestServer(home_app, host="127.0.0.1") as home,
                RunsClient(
                    api_key=KEY,
                    base_url=str(home.make_url("/v1")),
                    retry_policy=RetryPolicy(initial=0.001, maximum=0.001, jitter=0),
                ) as client,
            ):
                with pytest.raises(exc.APIStatusError) as info:
                    await client.runs.update("thread_1", "run_1", metadata={})
        assert info.value.status_code == status
        assert other == []

    asyncio.run(main())


# -- TLS -------------------------------------------------------------------------


@pytest.fixture(name="tls", scope="module")
def _tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_is_verified_unless_the_caller_brings_a_session(
    tls: tuple[Path, Path],
) -> None:
    """A self-signed server is refused by default; a caller's session decides for itself."""
    cert, key = tls
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))

    async def ok(request: web.Request) -> web.Response:
        return web.json_response(RUN)

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", ok)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
        await site.start()
        port = runner.addresses[0][1]
        base_url = f"https://127.0.0.1:{port}/v1"
        try:
            async with RunsClient(
                api_key=KEY, base_url=base_url, max_retries=0
            ) as client:
                with pytest.raises(exc.APIConnectionError) as info:
                    await client.runs.retrieve("thread_1", "run_1")
                assert "ertificate" in str(info.value)
                connector = client._transport.session.connector  # type: ignore[union-attr]
                assert connector._ssl is True  # aiohttp's default: verify
            connector = aiohttp.TCPConnector(ssl=trusting)
            async with aiohttp.ClientSession(connector=connector) as session:
                async with RunsClient(
                    api_key=KEY, base_url=base_url, session=session
                ) as client:
                    run = await client.runs.retrieve("thread_1", "run_1")
                assert run.id == "run_1"
        finally:
            await runner.cleanup()

    asyncio.run(main())


# -- hostile servers: depth, size, numbers ----------------------------------------


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def serving(
    handler: Handler, session: aiohttp.ClientSession | None = None, **options: Any
) -> AsyncIterator[RunsClient]:
    """A client of a loopback server that answers every request with *handler*."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    options.setdefault("max_retries", 0)
    async with (
        TestServer(app, host="127.0.0.1") as http,
        RunsClient(
            api_key=KEY, base_url=str(http.make_url("/v1")), session=session, **options
        ) as client,
    ):
        yield client


def answering(body: bytes, status: int = 200, **headers: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, status=status, headers=headers)

    return handler


def nested(depth: int, opener: str = "[", closed: bool = True) -> bytes:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return (opener * depth + "1" + (closer * depth if closed else "")).encode()


DEEP_BODIES = [
    nested(5000),
    nested(1100),
    nested(5000, closed=False),
    nested(3000, '{"a":'),
    b'{"id": "run_1", "extra": ' + nested(2000) + b"}",
]


@pytest.mark.parametrize("body", DEEP_BODIES, ids=lambda b: f"{len(b)}B")
@pytest.mark.parametrize("status", [200, 400, 500])
def test_deeply_nested_bodies_are_typed_errors(body: bytes, status: int) -> None:
    """A body nested thousands deep is an APIResponseError, never a RecursionError."""

    async def main() -> None:
        async with serving(answering(body, status)) as client:
            with pytest.raises(exc.APIResponseError) as info:
                await client.runs.retrieve("thread_1", "run_1")
            assert isinstance(info.value, _json_error_type(status))
            assert len(info.value.excerpt) <= exc.EXCERPT_LIMIT
            # A watch may keep trying until its deadline; it still ends typed.
            with pytest.raises(exc.OpenAIRunsError):
                await client.runs.poll("thread_1", "run_1", timeout=0.3)
            repr(info.value)
            str(info.value)

    asyncio.run(main())


def _json_error_type(status: int) -> type[exc.APIResponseError]:
    return exc.APIDecodeError if status < 300 else exc.APIStatusError


CLOSERS = {"[": "]", '{"k":': "}", '[1,{"s":"]]}}","t":': "}]"}


@settings(max_examples=150, deadline=None)
@given(
    depth=st.integers(1, 3000),
    openers=st.lists(st.sampled_from(sorted(CLOSERS)), min_size=1),
    closed=st.booleans(),
)
def test_any_nesting_decodes_or_is_a_decode_error(
    depth: int, openers: list[str], closed: bool
) -> None:
    """Documents of any depth, even with brackets in strings, parse or raise APIDecodeError."""
    chosen = [openers[i % len(openers)] for i in range(depth)]
    closers = "".join(CLOSERS[o] for o in reversed(chosen)) if closed else ""
    raw = ("".join(chosen) + "1" + closers).encode()
    try:
        value = _parse(raw, Any, 200, {})
    except exc.APIDecodeError:
        return
    assert closed
    json.dumps(value)
    repr(value)


def test_moderately_deep_bodies_still_parse() -> None:
    """Nesting up to MAX_DEPTH levels (far beyond any API object) still decodes."""
    raw = b'{"id": "run_1", "x": ' + nested(MAX_DEPTH - 1) + b"}"
    assert _parse(raw, dict, 200, {})["id"] == "run_1"  # type: ignore[type-abstract]
    with pytest.raises(exc.APIDecodeError, match="nested deeper"):
        _parse(b'{"x": ' + nested(MAX_DEPTH) + b"}", Any, 200, {})


def gzip_bomb(size: int) -> bytes:
    """*size* zero bytes, gzipped a MiB at a time (a few KB per 10 MiB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"0" * (1 << 20)
    parts = [packer.compress(chunk) for _ in range(size >> 20)]
    return b"".join([*parts, packer.flush()])


@pytest.mark.parametrize("limit", [None, 1 << 20])
def test_a_compressed_answer_cannot_fill_the_memory(limit: int | None) -> None:
    """A gzip bomb stops at max_response_bytes (16 MiB by default): typed, memory bounded."""
    bomb = gzip_bomb(64 << 20)
    assert len(bomb) < 200_000
    options = {} if limit is None else {"max_response_bytes": limit}

    async def main() -> exc.ResponseTooLargeError:
        handler = answering(bomb, **{"Content-Encoding": "gzip"})
        async with serving(handler, **options) as client:
            tracemalloc.start()
            try:
                with pytest.raises(exc.ResponseTooLargeError) as info:
                    await client.runs.retrieve("thread_1", "run_1")
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        assert peak < 3 * (limit or DEFAULT_MAX_RESPONSE_BYTES)
        return info.value

    error = asyncio.run(main())
    assert isinstance(error, exc.APIDecodeError)
    assert error.limit == (limit or DEFAULT_MAX_RESPONSE_BYTES)
    assert error.status_code == 200
    assert "max_response_bytes" in str(error)


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_the_size_cap_is_exact(encoding: str | None) -> None:
    """A body of exactly max_response_bytes parses; one byte more is refused."""
    body = json.dumps(RUN).encode()

    async def main() -> None:
        async def handler(request: web.Request) -> web.Response:
            response = web.Response(body=body + b" " * int(request.query["pad"]))
            if encoding:
                response.enable_compression(web.ContentCoding.gzip)
            return response

        async with serving(handler, max_response_bytes=len(body) + 1) as client:
            client._transport.query = [("pad", "1")]
            assert (await client.runs.retrieve("thread_1", "run_1")).id == "run_1"
            client._transport.query = [("pad", "2")]
            with pytest.raises(exc.ResponseTooLargeError):
                await client.runs.retrieve("thread_1", "run_1")
            # The connection was dropped, not left half-read: the next call works.
            client._transport.query = [("pad", "0")]
            assert (await client.runs.retrieve("thread_1", "run_1")).id == "run_1"

    asyncio.run(main())


@pytest.mark.parametrize("value", [-1, 1.5, "1", None, True])
def test_a_bad_response_size_cap_is_refused(value: Any) -> None:
    """max_response_bytes must be a whole number: InvalidRequestError otherwise."""
    with pytest.raises(exc.InvalidRequestError, match="max_response_bytes"):
        RunsClient(api_key=KEY, max_response_bytes=value)


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.text(max_size=12),
        st.integers().map(str),
        st.integers(10**15, 10**400).map(str),
        st.floats().map(str),
    )
)
def test_any_poll_after_header_is_a_sane_hint_or_none(value: str) -> None:
    """Any openai-poll-after-ms header gives None or whole milliseconds from 1 to a day."""
    hint = Response(None, 200, {"openai-poll-after-ms": value}).poll_after_ms
    assert hint is None or (isinstance(hint, int) and 0 < hint <= 86_400_000)
    if hint is not None:
        assert hint == int(value)
        assert value.isascii()
        assert value.isdigit()
    float(hint or 0) / 1000  # usable as seconds: no OverflowError


def test_hostile_poll_after_and_expiry_are_typed() -> None:
    """A 400-digit poll hint is ignored; an expires_at of 10**400 is an APIDecodeError."""
    calls: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(1)
        status = "completed" if len(calls) > 2 else "in_progress"
        headers = {"openai-poll-after-ms": "9" * 400}
        return web.json_response({**RUN, "status": status}, headers=headers)

    async def main() -> None:
        policy = WatchPolicy(initial=0.01, maximum=0.01, jitter=0)
        async with serving(handler) as client:
            run = await client.runs.poll("thread_1", "run_1", timeout=5, policy=policy)
            assert run.status == "completed"
        expiring = json.dumps({**RUN, "status": "in_progress", "expires_at": 0})
        body = expiring.replace('"expires_at": 0', '"expires_at": 1' + "0" * 400)
        async with serving(answering(body.encode())) as client:
            with pytest.raises(exc.APIDecodeError, match="expires_at"):
                await client.runs.retrieve("thread_1", "run_1")
            with pytest.raises(exc.OpenAIRunsError):
                await client.runs.poll("thread_1", "run_1", timeout=0.3)

    asyncio.run(main())


@settings(max_examples=200, deadline=None)
@given(stamp=st.one_of(st.integers(), st.integers(-(10**400), 10**400)))
def test_any_timestamp_parses_or_is_a_decode_error(stamp: int) -> None:
    """Any integer timestamp parses into one a watch can compute with, or is refused."""
    raw = json.dumps({**RUN, "expires_at": stamp, "created_at": stamp}).encode()
    try:
        run = _parse(raw, Run, 200, {})
    except exc.APIDecodeError:
        assert abs(stamp) > 10**308
        return
    assert run.expires_at is not None
    run.expires_at - time.time()  # no OverflowError
    try:
        assert as_datetime(run.expires_at) is not None
    except ValueError:  # the documented refusal of years datetime cannot hold
        assert not -62_135_596_800 <= stamp <= 253_402_300_799


def test_a_session_that_raises_for_status_changes_nothing() -> None:
    """A caller's session with raise_for_status=True still gives NotFoundError, unretried."""
    calls: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.json_response({"error": {"message": "no run"}}, status=404)

    async def main() -> None:
        async with (
            aiohttp.ClientSession(raise_for_status=True) as session,
            serving(handler, session=session, max_retries=2) as client,
        ):
            with pytest.raises(exc.NotFoundError):
                await client.runs.retrieve("thread_1", "run_1")
        assert len(calls) == 1

    asyncio.run(main())


# -- secrets, continued ---------------------------------------------------------


async def _malformed_answer(reader: asyncio.StreamReader, writer: Any) -> None:
    """Answer with a header aiohttp refuses, echoing the request's headers in it."""
    request = await reader.readuntil(b"\r\n\r\n")
    echoed = request.split(b"\r\n")[-3].replace(b"\r", b"")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: " + echoed + b"\r\n\r\n{}")
    await writer.drain()
    writer.close()


def test_a_malformed_answer_keeps_the_key_out_of_the_cause() -> None:
    """After a malformed HTTP answer, the key is not in the error, its cause or traceback."""

    async def main() -> exc.APIConnectionError:
        server = await asyncio.start_server(_malformed_answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with RunsClient(
                api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
            ) as client:
                with pytest.raises(exc.APIConnectionError) as info:
                    await client.runs.retrieve("thread_1", "run_1")
        finally:
            server.close()
            await server.wait_closed()
        return info.value

    error = asyncio.run(main())
    assert isinstance(error.__cause__, aiohttp.ClientResponseError)
    texts = [
        str(error),
        repr(error),
        repr(error.__cause__),
        str(error.__cause__),
        "".join(traceback.format_exception(error)),
    ]
    for text in texts:
        assert KEY not in text
        assert "SECRET" not in text


@settings(max_examples=60, deadline=None, phases=PHASES)
@given(
    offset=st.integers(0, exc.EXCERPT_LIMIT + 60), status=st.sampled_from([200, 400])
)
@example(offset=exc.EXCERPT_LIMIT - 20, status=200)
@example(offset=exc.EXCERPT_LIMIT - 1, status=400)
def test_an_echoed_key_cut_by_the_excerpt_leaves_no_fragment(
    offset: int, status: int
) -> None:
    """Wherever an echoed key falls, even across the excerpt's end, none of it is shown."""
    body = ("x" * offset + KEY + "y" * 40).encode()

    async def main() -> exc.APIResponseError:
        async with serving(answering(body, status)) as client:
            with pytest.raises(exc.APIResponseError) as info:
                await client.runs.retrieve("thread_1", "run_1")
        return info.value

    error = asyncio.run(main())
    shown = " ".join([str(error), repr(error), error.excerpt, repr(error.args)])
    assert "SECRET" not in shown
    assert KEY[:8] not in shown


def test_repr_of_a_client_hides_a_password_in_the_base_url() -> None:
    """A password in base_url is shown as *** in repr(client)."""
    client = RunsClient(
        auth=ApiKeyAuth("azure-key-0123456789"),
        base_url="https://gateway:hunter2-password@example.com/v1",
    )
    assert "hunter2" not in repr(client)
    assert "gateway:***@example.com" in repr(client)


def test_redaction_uses_the_token_that_was_sent() -> None:
    """An echoed token is redacted without asking the provider for a new one."""
    tokens: list[str] = []

    async def provider() -> tuple[str, float]:
        tokens.append(f"entra-token-{len(tokens):04d}-SECRET")
        return tokens[-1], time.time()  # due again at once: each call refreshes

    async def echo(request: web.Request) -> web.Response:
        return web.Response(status=400, text=f"you sent {dict(request.headers)!r}")

    async def main() -> exc.APIResponseError:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", echo)
        async with (
            TestServer(app, host="127.0.0.1") as http,
            RunsClient(
                auth=TokenAuth(provider),
                base_url=str(http.make_url("/v1")),
                max_retries=0,
            ) as client,
        ):
            with pytest.raises(exc.BadRequestError) as info:
                await client.runs.retrieve("thread_1", "run_1")
        return info.value

    error = asyncio.run(main())
    assert len(tokens) == 1
    assert "SECRET" not in " ".join([str(error), error.excerpt, repr(error.args)])
    assert "[redacted]" in error.excerpt


# -- inputs the resolver or aiohttp would refuse late ----------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        "https://" + "a" * 64 + ".example.com/v1",
        "https://a..example.com/v1",
        "https://.example.com/v1",
    ],
)
def test_hosts_the_resolver_refuses_are_refused_when_built(base_url: str) -> None:
    """A label over 63 characters or an empty label is an InvalidRequestError at once."""
    with pytest.raises(exc.InvalidRequestError, match="base_url"):
        RunsClient(api_key=KEY, base_url=base_url)


@settings(max_examples=100, deadline=None)
@given(labels=st.lists(st.integers(0, 70), min_size=1, max_size=4))
def test_any_host_is_accepted_only_if_it_can_be_resolved(labels: list[int]) -> None:
    """A host is accepted exactly when every label is 1 to 63 characters (a final dot aside)."""
    host = ".".join("h" * n for n in labels)
    *inner, last = labels
    # "h." is a fully qualified name: its last, empty label is the root.
    resolvable = all(0 < n <= 63 for n in inner) and (
        0 < last <= 63 or (last == 0 and bool(inner))
    )
    try:
        client = RunsClient(api_key=KEY, base_url=f"https://{host}/v1")
    except exc.InvalidRequestError:
        assert not resolvable
    else:
        assert resolvable
        host.encode("idna")
        assert client.base_url.endswith("/v1")


@pytest.mark.parametrize(
    "options",
    [
        {"api_key": KEY},
        {"auth": BearerAuth(KEY)},
        {"auth": ApiKeyAuth(KEY, header="Authorization")},
    ],
)
def test_credentials_in_the_url_beside_a_bearer_key_are_refused(
    options: dict[str, Any],
) -> None:
    """user:password@ in base_url with an Authorization key is refused when built."""
    with pytest.raises(exc.InvalidRequestError, match="base_url") as info:
        RunsClient(
            base_url="https://user:sk-in-url-0123456789@example.com/v1", **options
        )
    assert "sk-in-url" not in str(info.value)


def test_credentials_in_the_url_beside_an_api_key_header_still_work() -> None:
    """With the key in its own header, URL credentials go as Basic auth, as aiohttp sends them."""
    seen: list[tuple[str | None, str | None]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(
            (request.headers.get("Authorization"), request.headers.get("api-key"))
        )
        return web.json_response(RUN)

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        async with TestServer(app, host="127.0.0.1") as http:
            url = str(http.make_url("/v1")).replace("://", "://user:pass@")
            async with RunsClient(auth=ApiKeyAuth(KEY), base_url=url) as client:
                await client.runs.retrieve("thread_1", "run_1")

    asyncio.run(main())
    assert seen == [("Basic dXNlcjpwYXNz", KEY)]


@pytest.mark.parametrize("token", ["tok\n", "tok\r\nX-Injected: 1", "\x00"])
def test_a_token_with_a_control_character_is_refused_before_sending(token: str) -> None:
    """A TokenAuth token with a newline is an InvalidRequestError; nothing is sent."""
    calls: list[str] = []

    async def provider() -> tuple[str, float]:
        return token, time.time() + 3600

    async def handler(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.json_response(RUN)

    async def main() -> None:
        async with serving(handler) as plain:
            base_url = plain.base_url
            async with RunsClient(
                auth=TokenAuth(provider), base_url=base_url
            ) as client:
                with pytest.raises(exc.InvalidRequestError, match="token"):
                    await client.runs.retrieve("thread_1", "run_1")

    asyncio.run(main())
    assert calls == []


# -- client.request with a path string --------------------------------------------


@pytest.mark.parametrize(
    "path", ["threads/thread_1/runs/run_1", "/threads/thread_1/runs/run_1"]
)
def test_request_takes_a_path_string(loopback: Loopback, path: str) -> None:
    """client.request("GET", "threads/…") requests that path, not one segment per character."""
    response = loopback.call(loopback.client.request("GET", path, Run))
    assert response.parsed.id == "run_1"
    assert loopback.recorder.seen[0][1] == "/v1/threads/thread_1/runs/run_1"


@FUZZ
@given(path=st.one_of(st.text(max_size=30), st.lists(ids, max_size=4).map("/".join)))
def test_any_path_string_is_sent_segment_by_segment_or_refused(
    loopback: Loopback, path: str
) -> None:
    """Any path string reaches the server as its own segments, or is refused first."""
    seen = sent_or_refused(loopback, lambda: loopback.client.request("GET", path, Any))
    if seen:
        assert segments(seen[0][1])[2:] == path.removeprefix("/").split("/")


@pytest.mark.parametrize("path", [None, 42, b"threads", ["threads"]])
def test_request_refuses_a_path_that_is_not_a_string_or_tuple(
    loopback: Loopback, path: Any
) -> None:
    """A path of another type is an InvalidRequestError naming `path`."""
    with pytest.raises(exc.InvalidRequestError, match="path"):
        loopback.call(loopback.client.request("GET", path, Run))
    assert loopback.recorder.seen == []


# -- numbers that are not numbers -------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    timeout=st.one_of(
        st.floats(), st.integers(-5, 5), st.booleans(), st.text(max_size=3), st.none()
    )
)
def test_any_client_timeout_is_finite_and_positive_or_refused(timeout: Any) -> None:
    """RunsClient(timeout=) takes only a finite number above 0; nan and inf are refused."""
    if timeout is None:
        return
    try:
        client = RunsClient(api_key=KEY, timeout=timeout)
    except exc.InvalidRequestError:
        assert not (
            isinstance(timeout, int | float)
            and not isinstance(timeout, bool)
            and 0 < timeout < float("inf")
        )
    else:
        assert 0 < client._transport.timeout < float("inf")


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), -1.0, 0, "5", True])
def test_a_per_call_timeout_must_be_finite_and_positive(
    loopback: Loopback, timeout: Any
) -> None:
    """A per-call timeout of nan, inf, 0 or a string is refused; nothing is sent."""
    with pytest.raises(exc.InvalidRequestError, match="timeout"):
        loopback.call(
            loopback.client.runs.retrieve("thread_1", "run_1", timeout=timeout)
        )
    assert loopback.recorder.seen == []


# -- request bodies, the openai-python way ----------------------------------------


WEATHER_DICT = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object"}},
}


def test_every_request_model_takes_the_api_json_as_a_dict(loopback: Loopback) -> None:
    """Dicts for thread, tools, truncation, tool_choice, response format and outputs are sent as given."""
    options: dict[str, Any] = {
        "thread": {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "hi"}],
                    "attachments": [
                        {"file_id": "file_1", "tools": [{"type": "file_search"}]}
                    ],
                }
            ],
            "metadata": {"k": "v"},
        },
        "tools": [WEATHER_DICT, {"type": "code_interpreter"}],
        "truncation_strategy": {"type": "last_messages", "last_messages": 3},
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {"type": "json_object"},
    }
    loopback.call(
        loopback.client.runs.create_thread_and_run(
            assistant_id="asst_1", idempotency_key=False, **options
        )
    )
    assert json.loads(loopback.recorder.seen[0][2]) == {
        "assistant_id": "asst_1",
        **options,
    }
    outputs = [{"tool_call_id": "call_1", "output": "sunny"}]
    loopback.call(
        loopback.client.runs.submit_tool_outputs(
            "thread_1", "run_1", tool_outputs=outputs
        )
    )
    assert json.loads(loopback.recorder.seen[0][2]) == {"tool_outputs": outputs}
    loopback.call(
        loopback.client.runs.create(
            "thread_1",
            assistant_id="asst_1",
            additional_messages=[{"role": "user", "content": "hi"}],
        )
    )
    body = json.loads(loopback.recorder.seen[0][2])
    assert body["additional_messages"] == [{"role": "user", "content": "hi"}]


def test_a_dict_and_its_model_send_the_same_body(loopback: Loopback) -> None:
    """A tool given as a dict and as FunctionTool produce the same request."""
    model = FunctionTool(
        function=FunctionDefinition(name="get_weather", parameters={"type": "object"})
    )
    bodies = []
    for tools in ([WEATHER_DICT], [model]):
        loopback.call(
            loopback.client.runs.create(
                "thread_1", assistant_id="a", tools=tools, idempotency_key="k"
            )
        )
        bodies.append(json.loads(loopback.recorder.seen[0][2]))
    assert bodies[0] == bodies[1]


WRONG_SHAPES: list[tuple[str, dict[str, Any], str]] = [
    ("tool_choice bogus", {"tool_choice": {"bogus": 1}}, "tool_choice"),
    ("tools a string", {"tools": "code_interpreter"}, "tools"),
    ("tools a dict", {"tools": WEATHER_DICT}, "tools"),
    (
        "function without name",
        {"tools": [{"type": "function", "function": {}}]},
        "tools",
    ),
    ("truncation a list", {"truncation_strategy": ["auto"]}, "truncation_strategy"),
    ("response_format number", {"response_format": 5}, "response_format"),
    ("thread a string", {"thread": "hello"}, "thread"),
    (
        "thread message without role",
        {"thread": {"messages": [{"content": "x"}]}},
        "thread",
    ),
    ("metadata not strings", {"metadata": {"k": 1}}, "metadata"),
    ("temperature inf", {"temperature": float("inf")}, "temperature"),
    ("tool_resources a list", {"tool_resources": ["x"]}, "tool_resources"),
    ("a NaN deep in a body", {"tool_resources": {"x": float("nan")}}, "body"),
]


@pytest.mark.parametrize(
    ("options", "param"),
    [(o, p) for _, o, p in WRONG_SHAPES],
    ids=[n for n, _, _ in WRONG_SHAPES],
)
def test_a_wrong_shape_is_refused_before_sending(
    loopback: Loopback, options: dict[str, Any], param: str
) -> None:
    """A body of the wrong shape is an InvalidRequestError naming its parameter; nothing is sent."""
    with pytest.raises(exc.InvalidRequestError) as info:
        loopback.call(
            loopback.client.runs.create_thread_and_run(assistant_id="a", **options)
        )
    assert info.value.param == param
    assert str(info.value).startswith(param)
    assert loopback.recorder.seen == []


@pytest.mark.parametrize(
    "outputs",
    [
        [{"tool_call_id": "c"}],
        [{"output": "x"}],
        {"tool_call_id": "c", "output": "x"},
        "x",
    ],
)
def test_tool_outputs_of_the_wrong_shape_are_refused(
    loopback: Loopback, outputs: Any
) -> None:
    """Tool outputs missing a field, or not a list, are refused naming tool_outputs."""
    with pytest.raises(exc.InvalidRequestError, match="tool_outputs"):
        loopback.call(
            loopback.client.runs.submit_tool_outputs(
                "thread_1", "run_1", tool_outputs=outputs
            )
        )
    assert loopback.recorder.seen == []


def test_whatever_is_sent_can_be_read_back(loopback: Loopback) -> None:
    """An echoed run carrying the sent tool_choice and tools parses: no run created unseen."""
    options: dict[str, Any] = {
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "tools": [{"type": "brand_new_tool", "brand_new_tool": {"x": 1}}],
        "response_format": "some_new_mode",
    }

    async def echo_back() -> Run:
        loopback.recorder.body = json.dumps({**RUN, **options}).encode()
        return await loopback.client.runs.create(
            "thread_1", assistant_id="a", **options
        )

    run = loopback.runner.run(echo_back())
    assert run.tool_choice is not None
    assert run.tools[0].type == "brand_new_tool"


# -- a client across event loops -------------------------------------------------


def test_a_client_under_a_second_asyncio_run_raises_a_typed_error() -> None:
    """A client first used under one asyncio.run() raises EventLoopError under another."""
    emulator = Emulator(api_key=KEY)
    with emulator.running_in_thread():
        ref = emulator.create_run(script=RunScript.endless())
        client = RunsClient(api_key=KEY, base_url=emulator.url, max_retries=0)
        first = asyncio.Runner()
        try:
            run = first.run(client.runs.retrieve(ref["thread_id"], ref["id"]))
            assert run.id == ref["id"]
            with asyncio.Runner() as second, pytest.raises(exc.EventLoopError):
                second.run(client.runs.retrieve(ref["thread_id"], ref["id"]))
            first.run(client.aclose())  # closed in its own loop: no warning
        finally:
            first.close()
        with asyncio.Runner() as third, pytest.raises(exc.ClientClosedError):
            third.run(client.runs.retrieve(ref["thread_id"], ref["id"]))


@settings(max_examples=60, deadline=None)
@given(
    expires_on=st.one_of(
        st.floats(),
        st.integers(-(10**400), 10**400),
        st.text(max_size=3),
        st.none(),
        st.booleans(),
    )
)
def test_any_token_expiry_is_used_or_refused(expires_on: Any) -> None:
    """A provider's expiry of any value gives headers or InvalidRequestError, never a raw error."""

    async def provider() -> tuple[str, Any]:
        return "entra-token-0123456789", expires_on

    async def main() -> None:
        auth = TokenAuth(provider)
        try:
            headers = await auth.headers()
        except exc.InvalidRequestError:
            return
        assert headers == {"Authorization": "Bearer entra-token-0123456789"}

    asyncio.run(main())
