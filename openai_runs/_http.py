"""The one HTTP choke point: build the URL and headers, send, return the answer."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Final, Generic, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import attrs
from aiohttp.client_reqrep import RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .auth import ApiKeyAuth, Auth, BearerAuth
from .exceptions import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    EventLoopError,
    InvalidRequestError,
    ResponseTooLargeError,
)

__all__ = ["Response", "Transport"]

logger = logging.getLogger("openai_runs")

T = TypeVar("T")

_NO_AIOHTTP_TIMEOUT = aiohttp.ClientTimeout()
"""The request's own asyncio timeout bounds it; a session's default must not."""

# A segment of only these characters is its own percent-encoding: the ids of
# every API object are, so most requests skip urllib's quote.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")


# ASCII digits only: int() also takes "+5", "1_000", " 5 " and other scripts'
# digits. Nine digits is more than a day (MAX_POLL_AFTER_MS) already.
_POLL_AFTER = re.compile(r"[0-9]{1,9}")
MAX_POLL_AFTER_MS: Final = 86_400_000

DEFAULT_MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024
"""The longest response body read by default: 16 MiB, after decompression.

A run is a few KB and a page of 100 steps with file search content a few
hundred; the cap is there so a hostile answer (a gzip bomb: 255 KiB that
inflate to hundreds of MiB) cannot fill the memory.
"""

_CHUNK = 64 * 1024

_HIDDEN: Final = "[redacted]"
# Shorter header values (a scheme name, a flag) are not worth hiding, and
# replacing them would mangle unrelated text.
_MIN_SECRET: Final = 8
# The credentials recently sent: a refreshed token replaces the old one, but
# an answer to a request sent with the old one may still come back.
_SECRETS_KEPT: Final = 4


_FIXED_AUTHS = (BearerAuth, ApiKeyAuth)
"""Auths whose headers never change: built once per transport."""


def _segment(part: str) -> str:
    return part if _UNRESERVED.fullmatch(part) else quote(part, safe="")


@attrs.frozen
class Response(Generic[T]):
    """A parsed model together with the HTTP answer it came from.

    Attributes:
        parsed: The model built from the body.
        status_code: The HTTP status.
        headers: The response headers (case-insensitive).
    """

    parsed: T
    status_code: int
    headers: Mapping[str, str] = attrs.field(repr=False)

    @property
    def request_id(self) -> str | None:
        """The `x-request-id` header, for support tickets and logs."""
        return self.headers.get("x-request-id")

    @property
    def poll_after_ms(self) -> int | None:
        """The `openai-poll-after-ms` hint: when to look at the run again.

        *None* when the header is missing or is not a whole number of
        milliseconds from 1 to a day (a hint of 0 or less asks for nothing,
        and a hint of hundreds of digits is not one to obey).
        """
        value = self.headers.get("openai-poll-after-ms")
        if value is None or not _POLL_AFTER.fullmatch(value):
            return None
        ms = int(value)
        return ms if 0 < ms <= MAX_POLL_AFTER_MS else None


@attrs.define
class Transport:
    """Sends requests with one `aiohttp.ClientSession`.

    Uses the caller's session when given one and never closes it; otherwise
    opens its own on first use and closes it in `aclose`.
    """

    base_url: str
    auth: Auth
    headers: dict[str, str]
    query: list[tuple[str, str]]
    timeout: float
    session: aiohttp.ClientSession | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    owns_session: bool = attrs.field(init=False)
    loop: asyncio.AbstractEventLoop | None = attrs.field(
        default=None, init=False, repr=False
    )
    closed: bool = attrs.field(default=False, init=False)
    secrets: deque[str] = attrs.field(
        factory=lambda: deque(maxlen=_SECRETS_KEPT), init=False, repr=False
    )
    # A fixed key's request headers, built once: (auth, its credentials, the
    # headers without a body, with one).
    _fixed: tuple[Auth, Mapping[str, str], dict[str, str], dict[str, str]] | None = (
        attrs.field(default=None, init=False, repr=False)
    )

    def __attrs_post_init__(self) -> None:
        self.owns_session = self.session is None
        self.base_url = self.base_url.rstrip("/")

    def _session(self) -> aiohttp.ClientSession:
        if self.closed:
            # Opening a new session here would leak it: nothing closes it.
            raise ClientClosedError("this client is closed; make a new RunsClient")
        loop = asyncio.get_running_loop()
        if self.session is None:
            # Redirects are refused below, so credentials never follow one to
            # another origin; TLS verification stays aiohttp's default (on).
            self.session = aiohttp.ClientSession()
            self.loop = loop
        elif self.session.closed:
            raise ClientClosedError(
                "the aiohttp session passed to RunsClient is closed"
            )
        elif self.loop is not None and self.loop is not loop:
            # The session's pooled connections belong to the old loop, which
            # asyncio.run closed: using them raises a bare RuntimeError.
            raise EventLoopError(
                "this RunsClient was first used in another event loop (a second "
                "asyncio.run()?); make one client per loop, inside the "
                "coroutine that asyncio.run runs, and close it there"
            )
        return self.session

    async def request(
        self,
        method: str,
        path: Sequence[str],
        *,
        params: Sequence[tuple[str, str]] = (),
        body: Any = None,
        timeout: float | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Send one request and read the whole answer.

        Args:
            method: The HTTP method.
            path: Path segments after the base URL; each is percent-encoded.
            params: Query parameters, after the client's default ones.
            body: A JSON-encoded body, or *None* for none.
            timeout: Seconds for the whole exchange; the client default if *None*.

        Returns:
            The status, the headers and the raw body.

        Raises:
            APITimeoutError: No complete answer in time.
            APIConnectionError: The connection failed or broke.
        """
        url = self.base_url + "/" + "/".join([_segment(p) for p in path])
        if self.query or params:
            url += "?" + urlencode([*self.query, *params])
        budget = timeout or self.timeout
        started = time.monotonic()
        fixed = self._fixed
        credentials: Mapping[str, str]
        if fixed is not None and fixed[0] is self.auth:
            credentials = fixed[1]
            headers = fixed[2] if body is None else fixed[3]
        elif self.auth.__class__ in _FIXED_AUTHS:
            # A fixed key: nothing to wait for, and the same headers on every
            # request, built (and the key remembered for redaction) once.
            credentials = await self.auth.headers()
            self._remember(credentials)
            headers = {**self.headers, **credentials}
            with_body = {**headers, "Content-Type": "application/json"}
            self._fixed = (self.auth, credentials, headers, with_body)
            headers = headers if body is None else with_body
        else:
            try:
                # A credential's token fetch is part of the request: its
                # timeout bounds the fetch too, and the answer gets what the
                # fetch left.
                async with asyncio.timeout(budget):
                    credentials = await self.auth.headers()
            except TimeoutError as exc:
                where = _where(method, path)
                raise APITimeoutError(
                    f"{where}: no token within the timeout", request_sent=False
                ) from exc
            self._remember(credentials)
            headers = {**self.headers, **credentials}
            if body is not None:
                headers["Content-Type"] = "application/json"
        left = budget - (time.monotonic() - started)
        try:
            # One asyncio timer bounds the exchange: aiohttp's own timeouts
            # round any value over its ceil_threshold (5 s) up to a whole
            # second, so a 5.2 s deadline ended at 6 s.
            async with (
                asyncio.timeout(max(left, 0.001)),
                self._session().request(
                    method,
                    URL(url, encoded=True),
                    headers=headers,
                    data=body,
                    timeout=_NO_AIOHTTP_TIMEOUT,
                    allow_redirects=False,
                    # A caller's session may default to True: a 404 would then
                    # raise ClientResponseError here instead of being mapped.
                    raise_for_status=False,
                ) as resp,
            ):
                raw = await self.read_body(resp, method, path)
        except TimeoutError as exc:
            where = _where(method, path)
            self._hide_credentials(exc, credentials)
            raise APITimeoutError(
                f"{where}: no answer within the timeout",
                request_sent=not isinstance(exc, aiohttp.ConnectionTimeoutError),
            ) from exc
        except aiohttp.InvalidURL as exc:
            # Not a connection fault: no retry would make this URL work. The
            # URL is not shown: it may carry a password.
            detail = f" ({exc.description})" if exc.description else ""
            raise InvalidRequestError(
                "base_url", f"aiohttp cannot request a URL built from it{detail}"
            ) from None
        except aiohttp.ClientError as exc:
            where = _where(method, path)
            self._hide_credentials(exc, credentials)
            message = self.scrub_text(f"{where}: {type(exc).__name__}: {exc}")
            # Only a connection that was never made surely carried nothing; a
            # reset or a cut body may come after the server acted.
            raise APIConnectionError(
                message,
                request_sent=not isinstance(exc, aiohttp.ClientConnectorError),
            ) from exc
        except ValueError as exc:
            # aiohttp refuses some requests with a bare ValueError before
            # sending, such as credentials in the URL beside an Authorization
            # header from a custom Auth.
            raise InvalidRequestError(
                "base_url", f"aiohttp refused the request: {self.scrub_text(str(exc))}"
            ) from None
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s -> %d in %.1f ms (request id %s)",
                _where(method, path),
                resp.status,
                (time.monotonic() - started) * 1000,
                resp.headers.get("x-request-id"),
            )
        return resp.status, resp.headers, raw

    def _remember(self, credentials: Mapping[str, str]) -> None:
        """Keep the credentials just sent, to redact them from what comes back."""
        for value in credentials.values():
            # "Bearer KEY": the key alone, so an echo of it without the
            # scheme is caught too.
            secret = value.rpartition(" ")[2]
            if len(secret) >= _MIN_SECRET and secret not in self.secrets:
                self.secrets.append(secret)

    def scrub(self, raw: bytes) -> bytes:
        """Replace each credential this transport has sent with `[redacted]`.

        Done on the raw body, before any excerpt is cut from it: a key cut in
        two by the excerpt's end would otherwise survive as its first part.
        """
        for secret in self.secrets:
            raw = raw.replace(secret.encode(), _HIDDEN.encode())
        return raw

    def scrub_text(self, text: str) -> str:
        """Replace each credential this transport has sent with `[redacted]`."""
        for secret in self.secrets:
            text = text.replace(secret, _HIDDEN)
        return text

    @staticmethod
    def _hide_credentials(exc: BaseException, sent: Mapping[str, str]) -> None:
        """Blank the credentials in the request aiohttp keeps on *exc*.

        `ClientResponseError` (a malformed answer, for one) holds the
        request's headers in `request_info`, so `repr(error.__cause__)` and
        a traceback's locals would show the key.
        """
        info = getattr(exc, "request_info", None)
        if not isinstance(info, RequestInfo):
            return
        headers = CIMultiDict(info.headers)
        for name in sent:
            if name in headers:
                headers[name] = _HIDDEN
        exc.request_info = info._replace(  # type: ignore[attr-defined]
            headers=CIMultiDictProxy(headers)
        )

    async def stream(
        self,
        method: str,
        path: Sequence[str],
        *,
        body: Any,
        params: Sequence[tuple[str, str]] = (),
        timeout: float | None = None,
    ) -> aiohttp.ClientResponse:
        """Send one request and hand over the answer before its body is read.

        For server-sent events: *timeout* bounds the connect, the wait for
        the headers, and each wait between two reads of the body (a stream
        that goes quiet for longer breaks as a timeout), not the whole body.
        The caller closes the response.

        Raises:
            APITimeoutError: No headers in time.
            APIConnectionError: The connection failed before the headers.
        """
        url = self.base_url + "/" + "/".join([_segment(p) for p in path])
        if self.query or params:
            url += "?" + urlencode([*self.query, *params])
        credentials = await self.auth.headers()
        self._remember(credentials)
        headers = {
            **self.headers,
            **credentials,
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        }
        seconds = timeout or self.timeout
        try:
            return await self._session().request(
                method,
                URL(url, encoded=True),
                headers=headers,
                data=body,
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=seconds, sock_read=seconds
                ),
                allow_redirects=False,
                raise_for_status=False,
            )
        except TimeoutError as exc:
            where = _where(method, path)
            self._hide_credentials(exc, credentials)
            raise APITimeoutError(f"{where}: no answer within the timeout") from exc
        except aiohttp.ClientError as exc:
            where = _where(method, path)
            self._hide_credentials(exc, credentials)
            message = self.scrub_text(f"{where}: {type(exc).__name__}: {exc}")
            raise APIConnectionError(message) from exc

    async def read_body(
        self, resp: aiohttp.ClientResponse, method: str, path: Sequence[str]
    ) -> bytes:
        """Read the body, refusing one longer than *max_response_bytes*.

        aiohttp inflates gzip, deflate and brotli a chunk at a time as the
        body is read, so the count is of the decompressed bytes and memory
        stays bounded by the limit, whatever the compression ratio.
        """
        limit = self.max_response_bytes
        length = resp.content_length
        if (
            length is not None
            and length > limit
            and not resp.headers.get("Content-Encoding")
        ):
            raise self._too_large(resp, method, path)
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise self._too_large(resp, method, path)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(
        self, resp: aiohttp.ClientResponse, method: str, path: Sequence[str]
    ) -> ResponseTooLargeError:
        # Closed, not released: the rest of the body is never read, so the
        # connection cannot be reused.
        resp.close()
        limit = self.max_response_bytes
        return ResponseTooLargeError(
            f"{_where(method, path)}: the answer is longer than "
            f"max_response_bytes ({limit} bytes)",
            status_code=resp.status,
            headers=resp.headers,
            limit=limit,
        )

    async def aclose(self) -> None:
        """Close the session if this transport opened it; refuse later requests."""
        self.closed = True
        if self.owns_session and self.session is not None:
            await self.session.close()


def _where(method: str, path: Sequence[str]) -> str:
    """The request as errors and logs name it: `GET /threads/…/runs/…`."""
    return f"{method} /{'/'.join(path)}"
