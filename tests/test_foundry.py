"""Azure AI Foundry on the wire: `RunsClient.foundry` and `CredentialAuth` against a
recording aiohttp TestServer (path, api-version, bearer token, scope, refresh,
single-flight, the token fetch within the request's timeout), and `agent_id=`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from openai_runs import RetryPolicy, RunsClient, RunStatus
from openai_runs import exceptions as exc
from openai_runs.auth import FOUNDRY_SCOPE, CredentialAuth
from openai_runs.models import (
    BingGroundingConfiguration,
    BingGroundingSearch,
    BingGroundingTool,
    ConnectedAgent,
    ConnectedAgentTool,
    ThreadRequest,
    ToolOutput,
)

FAST = RetryPolicy(initial=0.001, maximum=0.005, jitter=0.001)
PROJECT = "/api/projects/proj1"


class AccessToken(NamedTuple):
    """azure-core's `AccessToken`: a named tuple of the token and its expiry."""

    token: str
    expires_on: float


@attrs.define
class Credential:
    """An async credential in azure-identity's shape that counts its fetches."""

    lifetime: float = 3600.0
    delay: float = 0.0
    fail_after: int | None = None
    scopes: list[tuple[str, ...]] = attrs.field(factory=list)
    fetching: int = 0
    most_at_once: int = 0

    async def get_token(self, *scopes: str) -> AccessToken:
        self.scopes.append(scopes)
        self.fetching += 1
        self.most_at_once = max(self.most_at_once, self.fetching)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.fail_after is not None and len(self.scopes) > self.fail_after:
                raise PermissionError("the identity service is down")
            return AccessToken(
                f"eyJ-token-{len(self.scopes)}-SECRET", time.time() + self.lifetime
            )
        finally:
            self.fetching -= 1


def run_json(status: str = "queued", **extra: Any) -> dict[str, Any]:
    """A Foundry ThreadRun: no `required_action` key (Foundry does not require it)."""
    return {
        "id": "run_1",
        "object": "thread.run",
        "thread_id": "thread_1",
        "assistant_id": "asst_1",
        "status": status,
        "last_error": None,
        "model": "gpt-4o",
        "instructions": "",
        "tools": [],
        "created_at": 1,
        "expires_at": None,
        "started_at": None,
        "completed_at": 2 if status == "completed" else None,
        "cancelled_at": None,
        "failed_at": None,
        "incomplete_details": None,
        "usage": None,
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": None,
        "tool_choice": "auto",
        "response_format": "auto",
        "metadata": {},
        "parallel_tool_calls": True,
        **extra,
    }


STEP = {
    "id": "step_1",
    "object": "thread.run.step",
    "type": "message_creation",
    "assistant_id": "asst_1",
    "thread_id": "thread_1",
    "run_id": "run_1",
    "status": "completed",
    "step_details": {
        "type": "message_creation",
        "message_creation": {"message_id": "m"},
    },
    "last_error": None,
    "created_at": 1,
    "expired_at": None,
    "completed_at": 2,
    "cancelled_at": None,
    "failed_at": None,
    "metadata": None,
}


@attrs.frozen
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@attrs.define
class Server:
    """Records each request; answers with *reply* (a run, a page or a step)."""

    seen: list[Seen] = attrs.field(factory=list)
    status: str = "queued"
    error: tuple[int, dict[str, Any]] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.seen.append(
            Seen(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                json.loads(raw) if raw else None,
            )
        )
        if self.error is not None:
            return web.json_response(self.error[1], status=self.error[0])
        if request.path.endswith("/steps"):
            return web.json_response(
                {"data": [STEP], "last_id": "step_1", "has_more": False}
            )
        if "/steps/" in request.path:
            return web.json_response(STEP)
        if request.method == "GET" and request.path.endswith("/runs"):
            return web.json_response({"data": [run_json()], "has_more": False})
        return web.json_response(run_json(self.status))


@contextlib.asynccontextmanager
async def foundry(
    credential: Credential | None = None, **options: Any
) -> AsyncIterator[tuple[Server, RunsClient]]:
    server = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    async with TestServer(app, host="127.0.0.1") as http:
        options.setdefault("retry_policy", FAST)
        if "api_key" not in options and "auth" not in options:
            options["credential"] = credential or Credential()
        endpoint = str(http.make_url(PROJECT))
        async with RunsClient.foundry(endpoint, **options) as client:
            yield server, client


def test_every_call_goes_under_the_project_with_api_version_and_token() -> None:
    """Each of the nine calls goes directly under the project endpoint (no
    /v1, no /openai), with `api-version=v1`, the credential's bearer token
    and no OpenAI-Beta header; the token is asked for Foundry's scope once."""
    credential = Credential()

    async def main() -> None:
        async with foundry(credential) as (server, client):
            await client.runs.create("thread_1", agent_id="asst_1")
            await client.runs.create_thread_and_run(agent_id="asst_1")
            await client.runs.retrieve("thread_1", "run_1")
            await client.runs.update("thread_1", "run_1", metadata={"k": "v"})
            await client.runs.list("thread_1")
            await client.runs.cancel("thread_1", "run_1")
            await client.runs.steps.list("thread_1", "run_1")
            await client.runs.steps.retrieve("thread_1", "run_1", "step_1")
            await client.runs.submit_tool_outputs(
                "thread_1",
                "run_1",
                tool_outputs=[ToolOutput(tool_call_id="c", output="o")],
            )
        assert [(s.method, s.path.removeprefix(PROJECT)) for s in server.seen] == [
            ("POST", "/threads/thread_1/runs"),
            ("POST", "/threads/runs"),
            ("GET", "/threads/thread_1/runs/run_1"),
            ("POST", "/threads/thread_1/runs/run_1"),
            ("GET", "/threads/thread_1/runs"),
            ("POST", "/threads/thread_1/runs/run_1/cancel"),
            ("GET", "/threads/thread_1/runs/run_1/steps"),
            ("GET", "/threads/thread_1/runs/run_1/steps/step_1"),
            ("POST", "/threads/thread_1/runs/run_1/submit_tool_outputs"),
        ]
        for seen in server.seen:
            assert seen.path.startswith(PROJECT + "/threads/")
            assert seen.query["api-version"] == "v1"
            assert seen.headers["Authorization"] == "Bearer eyJ-token-1-SECRET"
            assert "OpenAI-Beta" not in seen.headers
        assert credential.scopes == [(FOUNDRY_SCOPE,)]

    asyncio.run(main())


def test_api_version_can_be_set() -> None:
    """`api_version=` is the query parameter sent."""

    async def main() -> None:
        async with foundry(api_version="2025-05-15-preview") as (server, client):
            await client.runs.retrieve("thread_1", "run_1")
        assert server.seen[0].query == {"api-version": "2025-05-15-preview"}

    asyncio.run(main())


def test_api_key_is_sent_as_bearer() -> None:
    """Without a credential, `api_key=` is sent as a bearer token (the
    emulator's and gateways' way)."""

    async def main() -> None:
        async with foundry(api_key="key-0123456789") as (server, client):
            await client.runs.retrieve("thread_1", "run_1")
        assert server.seen[0].headers["Authorization"] == "Bearer key-0123456789"

    asyncio.run(main())


def test_token_is_cached_and_refreshed_before_it_expires() -> None:
    """A token is reused while fresh and replaced before it expires: a token
    of 0.4 s is fetched again after half its life, not per request and not
    only once it has expired."""
    credential = Credential(lifetime=0.4)

    async def main() -> None:
        async with foundry(credential) as (server, client):
            await client.runs.retrieve("thread_1", "run_1")
            await client.runs.retrieve("thread_1", "run_1")
            await asyncio.sleep(0.25)
            await client.runs.retrieve("thread_1", "run_1")
        tokens = [s.headers["Authorization"] for s in server.seen]
        assert tokens == [
            "Bearer eyJ-token-1-SECRET",
            "Bearer eyJ-token-1-SECRET",
            "Bearer eyJ-token-2-SECRET",
        ]
        assert len(credential.scopes) == 2

    asyncio.run(main())


def test_refresh_margin_keeps_a_long_token() -> None:
    """A token valid for an hour is fetched once for many requests."""
    credential = Credential(lifetime=3600)

    async def main() -> None:
        async with foundry(credential) as (_, client):
            for _ in range(5):
                await client.runs.retrieve("thread_1", "run_1")
        assert len(credential.scopes) == 1

    asyncio.run(main())


def test_concurrent_requests_share_one_fetch() -> None:
    """Twenty requests at once, with no token yet, wait for one fetch."""
    credential = Credential(delay=0.05)

    async def main() -> None:
        async with foundry(credential) as (server, client):
            await asyncio.gather(
                *(client.runs.retrieve("thread_1", "run_1") for _ in range(20))
            )
        assert len(credential.scopes) == 1
        assert credential.most_at_once == 1
        assert {s.headers["Authorization"] for s in server.seen} == {
            "Bearer eyJ-token-1-SECRET"
        }

    asyncio.run(main())


def test_token_fetch_counts_against_the_request_timeout() -> None:
    """A credential that hangs fails the request at its timeout
    (APITimeoutError), and nothing is sent."""
    credential = Credential(delay=30)

    async def main() -> None:
        async with foundry(credential, timeout=0.2, max_retries=0) as (server, client):
            started = time.monotonic()
            with pytest.raises(exc.APITimeoutError):
                await client.runs.retrieve("thread_1", "run_1")
            elapsed = time.monotonic() - started
        assert elapsed < 2
        assert server.seen == []

    asyncio.run(main())


def test_a_cancelled_fetch_is_not_cached() -> None:
    """After a fetch timed out, the next request fetches again and succeeds."""
    credential = Credential(delay=30)

    async def main() -> None:
        async with foundry(credential, timeout=0.2, max_retries=0) as (server, client):
            with pytest.raises(exc.APITimeoutError):
                await client.runs.retrieve("thread_1", "run_1")
            credential.delay = 0
            await client.runs.retrieve("thread_1", "run_1")
        assert server.seen[0].headers["Authorization"] == "Bearer eyJ-token-2-SECRET"

    asyncio.run(main())


def test_failed_refresh_keeps_a_valid_token() -> None:
    """When a refresh fails while the cached token is still valid, the cached
    token is sent; once none is valid, the credential's error propagates."""
    credential = Credential(lifetime=0.4, fail_after=1)

    async def main() -> None:
        async with foundry(credential, max_retries=0) as (server, client):
            await client.runs.retrieve("thread_1", "run_1")
            await asyncio.sleep(0.25)
            await client.runs.retrieve("thread_1", "run_1")
            await asyncio.sleep(0.2)
            with pytest.raises(PermissionError):
                await client.runs.retrieve("thread_1", "run_1")
        assert [s.headers["Authorization"] for s in server.seen] == [
            "Bearer eyJ-token-1-SECRET",
            "Bearer eyJ-token-1-SECRET",
        ]

    asyncio.run(main())


def test_token_never_shown() -> None:
    """Neither the auth's nor the client's repr shows the token, and an error
    body that echoes it is redacted."""
    credential = Credential()

    async def main() -> None:
        async with foundry(credential, max_retries=0) as (server, client):
            server.error = (
                401,
                {
                    "error": {
                        "message": "bad token Bearer eyJ-token-1-SECRET",
                        "code": None,
                    }
                },
            )
            with pytest.raises(exc.AuthenticationError) as caught:
                await client.runs.retrieve("thread_1", "run_1")
            auth = client._transport.auth
            assert "SECRET" not in repr(auth)
            assert "SECRET" not in repr(client)
        assert "SECRET" not in str(caught.value)
        assert "SECRET" not in json.dumps(caught.value.body)

    asyncio.run(main())


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, exc.BadRequestError),
        (401, exc.AuthenticationError),
        (404, exc.NotFoundError),
        (500, exc.InternalServerError),
    ],
)
def test_foundry_error_body_is_a_typed_error(
    status: int, cls: type[exc.APIStatusError]
) -> None:
    """Foundry's error body (every field optional, here with nulls and no
    `type`) is the same typed error as OpenAI's."""

    async def main() -> None:
        async with foundry(max_retries=0) as (server, client):
            server.error = (status, {"error": {"code": "NotFound", "message": None}})
            with pytest.raises(cls) as caught:
                await client.runs.retrieve("thread_1", "run_1")
        assert caught.value.code == "NotFound"
        assert caught.value.type is None
        assert f"HTTP {status}" in caught.value.message

    asyncio.run(main())


# --- agent_id= and Foundry's request rules ------------------------------------


def test_agent_id_is_sent_as_assistant_id() -> None:
    """`agent_id=` on create, create_thread_and_run and create_and_poll goes
    on the wire as `assistant_id`."""

    async def main() -> None:
        async with foundry() as (server, client):
            server.status = "completed"
            await client.runs.create("thread_1", agent_id="asst_7")
            await client.runs.create_thread_and_run(
                agent_id="asst_8", thread=ThreadRequest(metadata={"k": "v"})
            )
            run = await client.runs.create_and_poll("thread_1", agent_id="asst_9")
        assert run.status is RunStatus.COMPLETED
        bodies = [s.body for s in server.seen if s.method == "POST"]
        assert [b["assistant_id"] for b in bodies] == ["asst_7", "asst_8", "asst_9"]
        assert all("agent_id" not in b for b in bodies)

    asyncio.run(main())


@pytest.mark.parametrize(
    "ids",
    [
        {},
        {"assistant_id": "asst_1", "agent_id": "asst_2"},
        {"agent_id": ""},
        {"agent_id": "../x"},
    ],
)
def test_agent_id_errors_send_nothing(ids: dict[str, str]) -> None:
    """No id, two different ids, or an unsafe `agent_id` is an
    InvalidRequestError before anything is sent."""

    async def main() -> None:
        async with foundry() as (server, client):
            with pytest.raises(exc.InvalidRequestError):
                await client.runs.create("thread_1", **ids)
            with pytest.raises(exc.InvalidRequestError):
                await client.runs.create_thread_and_run(**ids)
            with pytest.raises(exc.InvalidRequestError):
                await client.runs.create_and_poll("thread_1", **ids)
        assert server.seen == []

    asyncio.run(main())


def test_same_id_under_both_names_is_accepted() -> None:
    """`assistant_id` and `agent_id` naming the same agent is not an error."""

    async def main() -> None:
        async with foundry() as (server, client):
            await client.runs.create(
                "thread_1",
                assistant_id="asst_1",
                agent_id="asst_1",
                idempotency_key=False,
            )
        assert server.seen[0].body == {"assistant_id": "asst_1"}

    asyncio.run(main())


def test_foundry_tool_choice_and_response_format_modes() -> None:
    """Foundry's tool_choice `none` and response_format `none` are sent as
    given (the allowed strings are the server's to judge)."""

    async def main() -> None:
        async with foundry() as (server, client):
            await client.runs.create(
                "thread_1", agent_id="a", tool_choice="none", response_format="none"
            )
        assert len(server.seen) == 1
        assert server.seen[0].body["tool_choice"] == "none"
        assert server.seen[0].body["response_format"] == "none"

    asyncio.run(main())


def test_foundry_tools_are_sent() -> None:
    """Foundry's tool models go in a create body as the wire's JSON."""

    async def main() -> None:
        async with foundry() as (server, client):
            await client.runs.create(
                "thread_1",
                agent_id="a",
                tools=[
                    BingGroundingTool(
                        bing_grounding=BingGroundingSearch(
                            search_configurations=[
                                BingGroundingConfiguration(
                                    connection_id="conn", count=5
                                )
                            ]
                        )
                    ),
                    ConnectedAgentTool(
                        connected_agent=ConnectedAgent(
                            id="asst_2", name="n", description="d"
                        )
                    ),
                ],
            )
        assert server.seen[0].body["tools"] == [
            {
                "type": "bing_grounding",
                "bing_grounding": {
                    "search_configurations": [{"connection_id": "conn", "count": 5}]
                },
            },
            {
                "type": "connected_agent",
                "connected_agent": {"id": "asst_2", "name": "n", "description": "d"},
            },
        ]

    asyncio.run(main())


# --- Configuration -------------------------------------------------------------


def test_endpoint_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`AZURE_AI_PROJECT_ENDPOINT` is the endpoint when none is given."""
    monkeypatch.setenv(
        "AZURE_AI_PROJECT_ENDPOINT", "https://res.services.ai.azure.com/api/projects/p/"
    )

    async def main() -> None:
        async with RunsClient.foundry(credential=Credential()) as client:
            assert client.base_url == "https://res.services.ai.azure.com/api/projects/p"

    asyncio.run(main())


@pytest.mark.parametrize(
    ("endpoint", "options", "field"),
    [
        (None, {"credential": Credential()}, "endpoint"),
        ("https://res.services.ai.azure.com", {"credential": Credential()}, "endpoint"),
        ("ftp://host/api/projects/p", {"credential": Credential()}, "base_url"),
        ("https://res.services.ai.azure.com/api/projects/p", {}, "credential"),
        (
            "https://res.services.ai.azure.com/api/projects/p",
            {"credential": Credential(), "api_key": "k"},
            "credential",
        ),
        (
            "https://res.services.ai.azure.com/api/projects/p",
            {"credential": Credential(), "api_version": ""},
            "api_version",
        ),
    ],
)
def test_foundry_configuration_errors(
    monkeypatch: pytest.MonkeyPatch,
    endpoint: str | None,
    options: dict[str, Any],
    field: str,
) -> None:
    """A missing or non-project endpoint, no credential (or two ways to
    authenticate), or an empty api-version is an InvalidRequestError naming
    the argument."""
    monkeypatch.delenv("AZURE_AI_PROJECT_ENDPOINT", raising=False)

    with pytest.raises(exc.InvalidRequestError) as caught:
        RunsClient.foundry(endpoint, **options)

    assert caught.value.param == field


def test_credential_auth_rejects_an_unsendable_token() -> None:
    """A token with a newline is refused, without being shown."""

    @attrs.define
    class Bad:
        async def get_token(self, *scopes: str) -> AccessToken:
            return AccessToken("tok\nSECRET", time.time() + 3600)

    with pytest.raises(exc.InvalidRequestError) as caught:
        asyncio.run(CredentialAuth(Bad()).headers())
    assert "SECRET" not in str(caught.value)


def test_azure_identity_is_an_extra_not_a_dependency() -> None:
    """`pip install openai-runs[azure]` brings azure-identity; a plain install
    does not."""
    pyproject = tomllib.loads(
        (Path(__file__).parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    )
    project = pyproject["project"]

    assert not any(d.startswith("azure") for d in project["dependencies"])
    assert any(
        d.startswith("azure-identity")
        for d in project["optional-dependencies"]["azure"]
    )


def test_credential_auth_rejects_an_empty_token() -> None:
    """A credential that returns an empty token is an InvalidRequestError."""

    @attrs.define
    class Empty:
        async def get_token(self, *scopes: str) -> AccessToken:
            return AccessToken("", time.time() + 3600)

    with pytest.raises(exc.InvalidRequestError, match="empty token"):
        asyncio.run(CredentialAuth(Empty()).headers())


class AccessTokenInfo(NamedTuple):
    """azure-core's `AccessTokenInfo`: a token with its own `refresh_on`."""

    token: str
    expires_on: float
    refresh_on: float


def test_refresh_on_is_honoured() -> None:
    """A token whose credential says to refresh it early (`refresh_on`) is
    fetched again from then on, though it expires much later."""
    fetched: list[float] = []

    @attrs.define
    class Early:
        async def get_token(self, *scopes: str) -> AccessTokenInfo:
            fetched.append(time.time())
            now = time.time()
            return AccessTokenInfo(f"tok-{len(fetched)}", now + 3600, now + 0.1)

    async def main() -> list[dict[str, str]]:
        auth = CredentialAuth(Early())
        first = await auth.headers()
        again = await auth.headers()
        await asyncio.sleep(0.15)
        return [first, again, await auth.headers()]

    headers = asyncio.run(main())
    assert [h["Authorization"] for h in headers] == [
        "Bearer tok-1",
        "Bearer tok-1",
        "Bearer tok-2",
    ]
