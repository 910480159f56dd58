"""Authentication schemes as a server sees them: headers, refusals, token refresh."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from _recorder import (
    KEY,
    api,
)

from openai_runs import exceptions as exc
from openai_runs.auth import ApiKeyAuth, BearerAuth, TokenAuth


@pytest.mark.parametrize("scheme", [BearerAuth, ApiKeyAuth])
def test_auth_schemes_refuse_a_key_with_a_newline(scheme: Any) -> None:
    """A key read from a file with its newline fails when the scheme is built."""
    with pytest.raises(exc.InvalidRequestError, match="api_key") as info:
        scheme(KEY + "\n")
    assert KEY not in str(info.value)


def test_token_auth_fetches_once_and_refreshes_before_expiry() -> None:
    """A token provider is called once while its token is fresh, again near expiry."""
    calls: list[int] = []

    async def provider() -> tuple[str, float]:
        calls.append(1)
        lifetime = 3600 if len(calls) == 1 else 10
        return f"tok{len(calls)}", time.time() + lifetime

    async def main() -> None:
        auth = TokenAuth(provider, refresh_margin=60)
        async with api(auth=auth, api_key=None) as (server, client):
            await asyncio.gather(
                *(client.runs.retrieve("thread_1", "run_1") for _ in range(3))
            )
            auth._expires_on = time.time() + 30  # within the margin: due for refresh
            await client.runs.retrieve("thread_1", "run_1")
        assert len(calls) == 2
        assert [s.headers["Authorization"] for s in server.seen] == [
            "Bearer tok1"
        ] * 3 + ["Bearer tok2"]
        assert "tok" not in repr(auth)

    asyncio.run(main())
