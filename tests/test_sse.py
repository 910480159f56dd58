"""The server-sent events decoder and its aiohttp driver."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from openai_runs._sse import ServerSentEvent, SSEDecoder, SSEError, iter_sse


def decode(*chunks: bytes, **limits: int) -> list[ServerSentEvent]:
    decoder = SSEDecoder(**limits)
    return [event for chunk in chunks for event in decoder.feed(chunk)]


def test_event_and_data() -> None:
    """An event name and one data line make one event."""
    events = decode(b'event: thread.run.created\ndata: {"id": "run_1"}\n\n')
    assert events == [ServerSentEvent("thread.run.created", '{"id": "run_1"}')]


def test_done_is_the_end_marker() -> None:
    """``data: [DONE]`` is recognised as the last event."""
    (done,) = decode(b"event: done\ndata: [DONE]\n\n")
    assert done.event == "done"
    assert done.is_done
    assert not ServerSentEvent("done", "[DONE] ").is_done


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_line_endings(newline: bytes) -> None:
    """LF, CRLF and CR all end lines."""
    text = newline.join([b"event: a", b"data: 1", b"", b"event: b", b"data: 2", b""])
    assert decode(text + newline) == [
        ServerSentEvent("a", "1"),
        ServerSentEvent("b", "2"),
    ]


def test_crlf_split_between_reads() -> None:
    """A CRLF whose LF comes in the next read is one line end, not two."""
    events = decode(b"event: a\r", b"\ndata: 1\r", b"\n\r", b"\n")
    assert events == [ServerSentEvent("a", "1")]


def test_every_split_point_gives_the_same_events() -> None:
    """Bytes cut anywhere decode to the same events as one piece."""
    text = (
        b': keep-alive\r\nevent: thread.message.delta\r\ndata: {"a":\r\n'
        b"data: 1}\r\n\r\nevent: done\ndata: [DONE]\n\n"
    )
    whole = decode(text)
    assert len(whole) == 2
    for cut in range(len(text)):
        assert decode(text[:cut], text[cut:]) == whole
    assert decode(*(text[i : i + 1] for i in range(len(text)))) == whole


def test_comments_are_skipped() -> None:
    """Lines that start with a colon are comments, and end no event."""
    events = decode(b": ping\nevent: a\n: another\ndata: x\n\n")
    assert events == [ServerSentEvent("a", "x")]


def test_multi_line_data_is_joined() -> None:
    """Several data lines of one event are joined with LF."""
    assert decode(b"data: one\ndata: two\ndata:three\n\n") == [
        ServerSentEvent("message", "one\ntwo\nthree")
    ]


def test_only_one_space_after_the_colon_is_dropped() -> None:
    """``data:  x`` keeps the second space; ``data`` alone is an empty line."""
    assert decode(b"data:  x\n\n") == [ServerSentEvent("message", " x")]
    assert decode(b"data\ndata\n\n") == [ServerSentEvent("message", "\n")]


def test_id_and_unknown_fields() -> None:
    """``id`` is kept; ``retry`` and unknown fields are ignored."""
    assert decode(b"id: 7\nretry: 10\nfoo: bar\ndata: x\n\n") == [
        ServerSentEvent("message", "x", "7")
    ]


def test_no_data_no_event() -> None:
    """A blank line after an event name without data dispatches nothing."""
    assert decode(b"event: a\n\ndata: x\n\n") == [ServerSentEvent("message", "x")]


def test_unfinished_event_is_not_yielded() -> None:
    """An event without its closing blank line is not an event yet."""
    assert decode(b"event: a\ndata: x\n") == []


def test_long_line_is_refused() -> None:
    """A line over the limit raises SSEError, even before its end arrives."""
    with pytest.raises(SSEError, match="line"):
        decode(b"data: " + b"x" * 100 + b"\n\n", max_line=50)
    decoder = SSEDecoder(max_line=50)
    decoder.feed(b"data: " + b"x" * 30)
    with pytest.raises(SSEError, match="line"):
        decoder.feed(b"x" * 30)


def test_line_at_the_limit_is_accepted() -> None:
    """A line of exactly the limit is fine."""
    line = b"data: " + b"x" * 44
    assert decode(line + b"\n\n", max_line=50) == [ServerSentEvent("message", "x" * 44)]


def test_large_event_is_refused() -> None:
    """Many short data lines past the event limit raise SSEError."""
    with pytest.raises(SSEError, match="event"):
        decode(b"data: 0123456789\n" * 20 + b"\n", max_event=100)


def test_byte_order_mark_at_the_start_is_dropped() -> None:
    """A UTF-8 byte order mark before the first line is not part of the field name."""
    assert decode(b"\xef\xbb\xbfevent: a\ndata: 1\n\n") == [ServerSentEvent("a", "1")]


def test_invalid_utf8_is_replaced() -> None:
    """Bytes that are not UTF-8 decode with replacement characters."""
    assert decode(b"data: \xff\n\n") == [ServerSentEvent("message", "\ufffd")]


def test_iter_sse_over_aiohttp() -> None:
    """iter_sse yields events from a real response as its chunks arrive."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"event: a\r\ndata: 1\r")
        await response.write(b"\n\r\nevent: done\ndata: [DONE]\n\n")
        return response

    async def main() -> list[ServerSentEvent]:
        app = web.Application()
        app.router.add_get("/", handler)
        async with (
            TestServer(app) as server,
            aiohttp.ClientSession() as session,
            session.get(server.make_url("/")) as response,
        ):
            return [event async for event in iter_sse(response.content)]

    events = asyncio.run(main())
    assert events == [ServerSentEvent("a", "1"), ServerSentEvent("done", "[DONE]")]
