"""How requests prove who they come from.

Four schemes cover the servers that speak the Runs API:

- [BearerAuth][openai_runs.auth.BearerAuth]: `Authorization: Bearer KEY`, OpenAI's and
  most compatible servers'.
- [ApiKeyAuth][openai_runs.auth.ApiKeyAuth]: a key in its own header, `api-key` for
  Azure OpenAI.
- [TokenAuth][openai_runs.auth.TokenAuth]: a short-lived token from an async provider,
  such as Microsoft Entra ID; fetched when needed and refreshed before it expires.
- [CredentialAuth][openai_runs.auth.CredentialAuth]: a bearer token from an Azure
  credential (`azure.identity.aio.DefaultAzureCredential` and the like), for
  Azure AI Foundry Agent Service.

Keys and tokens never appear in a repr.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

import attrs

from ._validation import check_header
from .exceptions import InvalidRequestError

__all__ = [
    "FOUNDRY_SCOPE",
    "AccessTokenLike",
    "ApiKeyAuth",
    "Auth",
    "BearerAuth",
    "CredentialAuth",
    "TokenAuth",
    "TokenCredential",
]

FOUNDRY_SCOPE: Final = "https://ai.azure.com/.default"
"""The OAuth2 scope of Azure AI Foundry's data plane (its spec's `OAuth2Auth`)."""

logger = logging.getLogger("openai_runs")


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


class AccessTokenLike(Protocol):
    """A token and when it expires: azure-core's `AccessToken` or `AccessTokenInfo`."""

    @property
    def token(self) -> str:
        """The bearer token."""
        ...  # pragma: no cover

    @property
    def expires_on(self) -> int | float:
        """When the token expires, in Unix seconds."""
        ...  # pragma: no cover


class TokenCredential(Protocol):
    """Anything with an async `get_token(*scopes)`, as azure-identity's credentials.

    `azure.identity.aio.DefaultAzureCredential`, `ManagedIdentityCredential`,
    `AzureCliCredential` and every other `AsyncTokenCredential` fit as they are.
    """

    async def get_token(self, *scopes: str) -> AccessTokenLike:
        """Return a token valid for *scopes*."""
        ...  # pragma: no cover


@attrs.define
class CredentialAuth:
    """Send `Authorization: Bearer` with a token from an Azure *credential*.

    The token is asked for the *scopes* (Azure AI Foundry's,
    `https://ai.azure.com/.default`, by default), cached, and replaced
    *refresh_margin* seconds before it expires (or at the token's own
    `refresh_on`, when the credential gives one). However many requests need
    a token at once, one fetch runs and the others wait for it.

    The fetch happens inside [headers][openai_runs.auth.CredentialAuth.headers],
    which the client awaits as part of the request, so it counts against the
    request's timeout; a cancelled or timed-out fetch is not cached, and the
    next request starts a new one. When a refresh fails while the cached token
    is still valid, the cached token is sent and the next request tries again;
    once it has expired, the credential's error (such as azure-core's
    `ClientAuthenticationError`) propagates as it is.

    The token never appears in a repr, a log line or an error of this package.
    The credential is the caller's: close it (`await credential.close()`)
    when done.

    ```python
    from azure.identity.aio import DefaultAzureCredential

    credential = DefaultAzureCredential()
    auth = CredentialAuth(credential)
    ```

    Attributes:
        credential: Supplies the tokens, a
            [TokenCredential][openai_runs.auth.TokenCredential].
        scopes: The scopes to ask for.
        refresh_margin: Seconds before expiry at which a token is replaced.
    """

    credential: TokenCredential = attrs.field(repr=False)
    scopes: tuple[str, ...] = (FOUNDRY_SCOPE,)
    refresh_margin: float = 300.0
    _token: str = attrs.field(default="", init=False, repr=False)
    _expires_on: float = attrs.field(default=0.0, init=False, repr=False)
    _refresh_on: float = attrs.field(default=0.0, init=False, repr=False)
    _lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False, repr=False)

    async def headers(self) -> dict[str, str]:
        """Return the `Authorization` header, fetching a token first if one is due.

        Raises:
            InvalidRequestError: The credential returned an empty token or
                one that cannot go in a header.
            Exception: Whatever the credential raises, when no valid token
                is cached.
        """
        if time.time() >= self._refresh_on:
            async with self._lock:
                # Whoever waited on the lock finds the token the holder fetched.
                if time.time() >= self._refresh_on:
                    await self._fetch()
        return {"Authorization": f"Bearer {self._token}"}

    async def _fetch(self) -> None:
        try:
            access = await self.credential.get_token(*self.scopes)
        except Exception as exc:
            if time.time() < self._expires_on:
                logger.debug(
                    "token refresh failed, the cached one is still valid: %r", exc
                )
                return
            raise
        token, expires_on = access.token, float(access.expires_on)
        check_header("token", token)
        if not token:
            raise InvalidRequestError("credential", "returned an empty token")
        now = time.time()
        # A token that lives less than twice the margin is replaced half-way
        # through its life, not fetched again for every request.
        due = expires_on - min(self.refresh_margin, (expires_on - now) / 2)
        refresh_on = getattr(access, "refresh_on", None)
        if refresh_on is not None:
            due = min(due, float(refresh_on))
        self._token, self._expires_on, self._refresh_on = token, expires_on, due
