"""How requests prove who they come from.

Three schemes cover the servers that speak the Runs API:

- [BearerAuth][openai_runs.auth.BearerAuth]: `Authorization: Bearer KEY`, OpenAI's and
  most compatible servers'.
- [ApiKeyAuth][openai_runs.auth.ApiKeyAuth]: a key in its own header, `api-key` for
  Azure OpenAI.
- [TokenAuth][openai_runs.auth.TokenAuth]: a short-lived token from an async provider,
  such as Microsoft Entra ID; fetched when needed and refreshed before it expires.

Keys and tokens never appear in a repr.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import attrs

from ._validation import check_header
from .exceptions import InvalidRequestError

__all__ = ["ApiKeyAuth", "Auth", "BearerAuth", "TokenAuth"]


class Auth(Protocol):
    """Anything that can produce the authentication headers of a request."""

    async def headers(self) -> dict[str, str]:
        """Return the headers that authenticate the next request."""
        ...  # pragma: no cover


def _sendable_secret(_: object, attribute: attrs.Attribute[str], value: object) -> None:
    """Refuse a key that cannot go in a header, without showing it."""
    check_header(attribute.name, value)


@attrs.frozen
class BearerAuth:
    """Send *api_key* as `Authorization: Bearer …`.

    Raises:
        InvalidRequestError: *api_key* is not a string, or has a control
            character (such as the newline at the end of a key file).
    """

    api_key: str = attrs.field(repr=False, validator=_sendable_secret)

    async def headers(self) -> dict[str, str]:
        """Return the `Authorization` header."""
        return {"Authorization": f"Bearer {self.api_key}"}


@attrs.frozen
class ApiKeyAuth:
    """Send *api_key* in the header *header* (`api-key`, as Azure expects).

    Raises:
        InvalidRequestError: *api_key* is not a string, or has a control
            character (such as the newline at the end of a key file).
    """

    api_key: str = attrs.field(repr=False, validator=_sendable_secret)
    header: str = "api-key"

    async def headers(self) -> dict[str, str]:
        """Return the key header."""
        return {self.header: self.api_key}


def _seconds(expires_on: object) -> float:
    """The provider's expiry as finite Unix seconds."""
    if isinstance(expires_on, bool) or not isinstance(expires_on, int | float):
        raise InvalidRequestError(
            "expires_on",
            f"the token provider must return Unix seconds, not "
            f"{type(expires_on).__name__}",
        )
    try:
        seconds = float(expires_on)
    except OverflowError:
        seconds = math.inf if expires_on > 0 else -math.inf
    if math.isnan(seconds):
        raise InvalidRequestError("expires_on", "the token provider returned NaN")
    return seconds


@attrs.define
class TokenAuth:
    """Send a bearer token from *provider*, refreshed before it expires.

    *provider* is an async callable returning `(token, expires_on)`, with
    *expires_on* in Unix seconds: the shape of azure-identity's
    `AccessToken`, so an Entra ID credential plugs in directly:

    ```python
    credential = DefaultAzureCredential()
    auth = TokenAuth(
        lambda: credential.get_token("https://cognitiveservices.azure.com/.default")
    )
    ```

    Concurrent requests share one refresh.

    Attributes:
        provider: Returns a fresh token and its expiry.
        refresh_margin: Seconds before expiry at which a token is replaced.
    """

    provider: Callable[[], Awaitable[tuple[str, float]]] = attrs.field(repr=False)
    refresh_margin: float = 300.0
    _token: str = attrs.field(default="", init=False, repr=False)
    _expires_on: float = attrs.field(default=0.0, init=False, repr=False)
    _lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False, repr=False)

    async def headers(self) -> dict[str, str]:
        """Return the `Authorization` header, refreshing the token if due.

        Raises:
            InvalidRequestError: The provider returned a token with a control
                character (a stray newline), or an expiry that is not a
                number of seconds; nothing is sent.
        """
        if time.time() >= self._expires_on - self.refresh_margin:
            async with self._lock:
                if time.time() >= self._expires_on - self.refresh_margin:
                    token, expires_on = await self.provider()
                    # Checked here, as the static keys are when built: a
                    # newline would reach aiohttp, which refuses it with a
                    # bare ValueError.
                    check_header("token", token)
                    self._token, self._expires_on = token, _seconds(expires_on)
        return {"Authorization": f"Bearer {self._token}"}
