"""Server-sent events: a small decoder with size limits, and its aiohttp driver.

The decoder is sans-I/O: feed it bytes as they arrive, get whole events back.
It follows the WHATWG rules the API's streams need: lines end with LF, CRLF
or CR (a CRLF split across two reads is one line end), ``:`` starts a
comment, ``data`` lines of one event are joined with LF, one space after the
colon is dropped, and a blank line ends the event. A line longer than
*max_line* or an event whose data outgrows *max_event* raises
[SSEError][openai_runs._sse.SSEError] instead of buffering without bound.

No library is used: the well-kept SSE clients are tied to httpx
(``httpx-sse``) or to their own connection handling (``aiohttp-sse-client``,
unmaintained since 2021, which reconnects by itself, where a run stream must
not be re-sent); the format takes 60 lines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import attrs

__all__ = [
    "DEFAULT_MAX_EVENT",
    "DEFAULT_MAX_LINE",
    "SSEDecoder",
    "SSEError",
    "ServerSentEvent",
    "iter_sse",
]

DEFAULT_MAX_LINE = 4 * 1024 * 1024
"""The longest line accepted, in bytes: a run with 128 tools fits many times."""

DEFAULT_MAX_EVENT = 8 * 1024 * 1024
"""The most data one event may carry, in bytes."""


class SSEError(ValueError):
    """The stream broke the event-stream format or its size limits."""


@attrs.frozen
class ServerSentEvent:
    """One event of a stream.

    Attributes:
        event: The ``event`` field, ``message`` when the event has none.
        data: The ``data`` lines, joined with LF.
        id: The ``id`` field, if any.
    """

    event: str
    data: str
    id: str | None = None

    @property
    def is_done(self) -> bool:
        """Whether this is the API's last event, ``data: [DONE]``."""
        return self.data == "[DONE]"


class SSEDecoder:
    """Turns the bytes of an event stream into events, within size limits.

    Args:
        max_line: The longest line accepted, in bytes.
        max_event: The most data bytes one event may carry.
    """

    def __init__(
        self, *, max_line: int = DEFAULT_MAX_LINE, max_event: int = DEFAULT_MAX_EVENT
    ) -> None:
        self.max_line = max_line
        self.max_event = max_event
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._after_cr = False
        self._at_start = True
        self._event = ""
        self._data: list[str] = []
        self._size = 0
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Take the next bytes of the stream; return the events they complete.

        Raises:
            SSEError: A line or an event is over its limit.
        """
        if self._at_start and chunk:
            # The format allows one byte order mark before the first line.
            self._at_start = False
            chunk = chunk.removeprefix(b"\xef\xbb\xbf")
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]  # the LF of a CRLF split between two reads
        self._after_cr = False
        if not chunk:
            return []
        if b"\n" not in chunk and b"\r" not in chunk:
            self._pending.append(chunk)
            self._pending_size += len(chunk)
            if self._pending_size > self.max_line:
                raise SSEError(f"a line is longer than {self.max_line} bytes")
            return []
        lines = chunk.splitlines(keepends=True)
        if self._pending:
            # Joined once per line, not once per read: a long line that
            # arrives in many small reads stays linear.
            self._pending.append(lines[0])
            lines[0] = b"".join(self._pending)
            self._pending, self._pending_size = [], 0
        if lines[-1].endswith((b"\n", b"\r")):
            self._after_cr = lines[-1].endswith(b"\r")
        else:
            partial = lines.pop()
            self._pending, self._pending_size = [partial], len(partial)
        events = []
        for raw in lines:
            line = raw.rstrip(b"\r\n")
            if len(line) > self.max_line:
                raise SSEError(f"a line is longer than {self.max_line} bytes")
            event = self._line(line.decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._size += len(value) + 1
            if self._size > self.max_event:
                raise SSEError(f"an event carries more than {self.max_event} bytes")
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._id = value
        # ``retry`` and unknown fields are ignored, as the format says.
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event = None
        if self._data:
            event = ServerSentEvent(
                self._event or "message", "\n".join(self._data), self._id
            )
        self._event, self._data, self._size = "", [], 0
        return event


async def iter_sse(
    content: aiohttp.StreamReader,
    *,
    max_line: int = DEFAULT_MAX_LINE,
    max_event: int = DEFAULT_MAX_EVENT,
) -> AsyncIterator[ServerSentEvent]:
    """Yield the events of a response body as they arrive.

    Ends when the body ends; an event not closed by a blank line before then
    is dropped, as the format says. The caller stops at ``data: [DONE]``
    ([ServerSentEvent.is_done][openai_runs._sse.ServerSentEvent.is_done]).

    Args:
        content: The body, ``response.content``.
        max_line: The longest line accepted, in bytes.
        max_event: The most data bytes one event may carry.

    Raises:
        SSEError: A line or an event is over its limit.
        aiohttp.ClientPayloadError: The connection broke mid-body.
    """
    decoder = SSEDecoder(max_line=max_line, max_event=max_event)
    async for chunk in content.iter_any():
        for event in decoder.feed(chunk):
            yield event
