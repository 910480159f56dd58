"""The one HTTP choke point: build the URL and headers, send, return the answer."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import attrs
from yarl import URL

from .auth import Auth
from .exceptions import (
    APIConnectionError,
    APITimeoutError,
    InvalidRequestError,
    OpenAIRunsError,
)

__all__ = ["Response", "Transport"]

logger = logging.getLogger("openai_runs")

T = TypeVar("T")

_NO_AIOHTTP_TIMEOUT = aiohttp.ClientTimeout()
"""The request's own asyncio timeout bounds it; a session's default must not."""

# A segment of only these characters is its own percent-encoding: the ids of
# every API object are, so most requests skip urllib's quote.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")


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
        """The ``x-request-id`` header, for support tickets and logs."""
        return self.headers.get("x-request-id")

    @property
    def poll_after_ms(self) -> int | None:
        """The ``openai-poll-after-ms`` hint: when to look at the run again."""
        value = self.headers.get("openai-poll-after-ms")
        digits = None if value is None else value.strip()
        if not digits or not digits.isascii() or not digits.isdigit():
            return None  # text, a sign, a fraction: no hint
        if len(digits) > 12:
            return 10**12  # over 30 years; int() refuses 4,300 digits and more
        return int(digits) or None  # 0 means no hint too


@attrs.define
class Transport:
    """Sends requests with one :class:`aiohttp.ClientSession`.

    Uses the caller's session when given one and never closes it; otherwise
    opens its own on first use and closes it in :meth:`aclose`.
    """

    base_url: str
    auth: Auth
    headers: dict[str, str]
    query: list[tuple[str, str]]
    timeout: float
    session: aiohttp.ClientSession | None = None
    owns_session: bool = attrs.field(init=False)
    closed: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        self.owns_session = self.session is None
        self.base_url = self.base_url.rstrip("/")

    def _session(self) -> aiohttp.ClientSession:
        if self.closed:
            # Opening a new session here would leak it: nothing closes it.
            raise OpenAIRunsError("this client is closed; make a new RunsClient")
        if self.session is None:
            # Redirects are refused below, so credentials never follow one to
            # another origin; TLS verification stays aiohttp's default (on).
            self.session = aiohttp.ClientSession()
        elif self.session.closed:
            raise OpenAIRunsError("the aiohttp session passed to RunsClient is closed")
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
        started = time.monotonic()
        try:
            # One asyncio timer bounds the whole exchange, the token fetch of
            # the auth included: aiohttp's own timeouts round any value over
            # its ceil_threshold (5 s) up to a whole second, so a 5.2 s
            # deadline ended at 6 s.
            async with asyncio.timeout(timeout or self.timeout):
                headers = {**self.headers, **await self.auth.headers()}
                if body is not None:
                    headers["Content-Type"] = "application/json"
                async with self._session().request(
                    method,
                    URL(url, encoded=True),
                    headers=headers,
                    data=body,
                    timeout=_NO_AIOHTTP_TIMEOUT,
                    allow_redirects=False,
                ) as resp:
                    raw = await resp.read()
        except TimeoutError as exc:
            where = _where(method, path)
            raise APITimeoutError(f"{where}: no answer within the timeout") from exc
        except aiohttp.InvalidURL as exc:
            # Not a connection fault: no retry would make this URL work.
            raise InvalidRequestError("base_url", f"cannot request {exc}") from exc
        except aiohttp.ClientError as exc:
            where = _where(method, path)
            raise APIConnectionError(f"{where}: {type(exc).__name__}: {exc}") from exc
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s -> %d in %.1f ms (request id %s)",
                _where(method, path),
                resp.status,
                (time.monotonic() - started) * 1000,
                resp.headers.get("x-request-id"),
            )
        return resp.status, resp.headers, raw

    async def aclose(self) -> None:
        """Close the session if this transport opened it; refuse later requests."""
        self.closed = True
        if self.owns_session and self.session is not None:
            await self.session.close()


def _where(method: str, path: Sequence[str]) -> str:
    """The request as errors and logs name it: ``GET /threads/…/runs/…``."""
    return f"{method} /{'/'.join(path)}"
