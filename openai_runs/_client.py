"""The client a user awaits: configuration, one request path, the Runs calls."""

from __future__ import annotations

import json
import os
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Iterable,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, Final, Self, TypedDict, TypeVar, Unpack
from urllib.parse import urlsplit

import aiohttp
import cattrs
from yarl import URL

from . import __version__, _observe
from ._body import check_number, structured, wire
from ._budget import Budget, LocalBudget
from ._converter import client_converter
from ._http import DEFAULT_MAX_RESPONSE_BYTES, Response, Transport
from ._json import loads
from ._many import RunRef, WatchResult, watch_many
from ._pagination import AsyncPager
from ._restart import restart_rate_limited
from ._retry import RetryPolicy, retry_hint, retrying
from ._safe_writes import create_run, idempotency_metadata, write_to_run
from ._safe_writes import create_thread_and_run as safe_create_thread_and_run
from ._streaming import RunStream
from ._thread_lock import active_run, wait_idle
from ._threads import Messages, Threads
from ._validation import (
    check_base_url,
    check_count,
    check_header,
    check_id,
    check_include,
    check_metadata,
    check_path,
    check_seconds,
    list_params,
)
from ._watch_core import WATCH_OPTIONS, Settings, WatchOptions, WatchPolicy
from ._watcher import RunWatcher
from .auth import (
    ApiKeyAuth,
    Auth,
    BearerAuth,
    CredentialAuth,
    TokenAuth,
    TokenCredential,
)
from .exceptions import (
    APIConnectionError,
    APIDecodeError,
    APIResponseError,
    InsufficientQuotaError,
    InvalidRequestError,
    RateLimitError,
    error_from_response,
    excerpt_of,
)
from .models import (
    MessageRequest,
    NamedToolChoice,
    Page,
    ResponseFormat,
    Run,
    RunStep,
    ThreadRequest,
    Tool,
    ToolOutput,
    TruncationStrategy,
)
from .store import RunStore

__all__ = ["CreateAndPollParams", "RunCreateParams", "RunSteps", "Runs", "RunsClient"]

T = TypeVar("T")

DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
DEFAULT_TIMEOUT: Final = 60.0
DEFAULT_MAX_RETRIES: Final = 2
FOUNDRY_API_VERSION: Final = "v1"
FOUNDRY_ENDPOINT_ENV: Final = "AZURE_AI_PROJECT_ENDPOINT"

_RETIRED_HINT: Final = (
    "; no call to api.openai.com has succeeded from this client: OpenAI retired "
    "its hosted Assistants API on 2026-08-26, so point base_url (or "
    "OPENAI_BASE_URL) at a server that still serves it, such as Azure AI "
    "Foundry Agent Service (RunsClient.foundry) or the emulator (openai-runs serve)"
)


class RunsClient:
    """An async client for the Runs API.

    Use it as an async context manager, or call [aclose][openai_runs.RunsClient.aclose]
    when done:

    ```python
    async with RunsClient() as client:
        run = await client.runs.retrieve(thread_id, run_id)
    ```

    Every argument left unset comes from the environment: `OPENAI_API_KEY`,
    `OPENAI_BASE_URL`, `OPENAI_ORG_ID`, `OPENAI_PROJECT_ID`.

    Args:
        api_key: The key, sent as `Authorization: Bearer …`.
        base_url: The API root, with any path prefix
            (default `https://api.openai.com/v1`).
        organization: Sent as `OpenAI-Organization`.
        project: Sent as `OpenAI-Project`.
        timeout: Seconds for one attempt of a request, sending and reading
            the whole answer (default 60).
        max_retries: Retries of a transient failure (default 2).
        default_headers: Extra headers on every request.
        default_query: Query parameters on every request, such as Azure's
            `api-version`.
        auth: Another authentication scheme ([ApiKeyAuth][openai_runs.auth.ApiKeyAuth],
            [TokenAuth][openai_runs.auth.TokenAuth]); replaces *api_key*.
        retry_policy: Backoff and hint limits for retries, for every call
            and (unless a watch's policy sets its own) every watch.
        budget: What the client may send: requests in flight, requests per
            second, the shared 429 pause; consulted by every request, plain
            calls and watches alike. A
            [LocalBudget][openai_runs.LocalBudget] (64 in flight) if *None*;
            pass one budget to several clients to share it.
        session: A caller-owned `aiohttp.ClientSession`; the client
            uses it and never closes it.
        max_response_bytes: The longest response body read, counted after
            decompression (default 16 MiB); a longer one is a
            [ResponseTooLargeError][openai_runs.exceptions.ResponseTooLargeError].

    Raises:
        InvalidRequestError: No key and no *auth* were given; or *base_url*
            is not an absolute `http(s)://` URL with a host and no query; or
            a key or header value has a control character; or *timeout* or
            *max_retries* is out of range.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        default_query: Mapping[str, str] | None = None,
        auth: Auth | None = None,
        retry_policy: RetryPolicy | None = None,
        budget: Budget | None = None,
        session: aiohttp.ClientSession | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if auth is None:
            api_key = api_key or os.environ.get("OPENAI_API_KEY")
            if not api_key:
                raise InvalidRequestError(
                    "api_key",
                    "no API key: pass api_key= or auth=, or set OPENAI_API_KEY",
                )
            auth = BearerAuth(api_key)
        check_count("max_retries", max_retries)
        check_count("max_response_bytes", max_response_bytes)
        check_seconds("timeout", timeout)
        base_url = check_base_url(
            base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        )
        _check_userinfo(base_url, auth, default_headers or {})
        organization = organization or os.environ.get("OPENAI_ORG_ID")
        project = project or os.environ.get("OPENAI_PROJECT_ID")
        headers = {
            "Accept": "application/json",
            "OpenAI-Beta": "assistants=v2",
            "User-Agent": f"openai-runs/{__version__}",
        }
        if organization:
            headers["OpenAI-Organization"] = organization
        if project:
            headers["OpenAI-Project"] = project
        headers.update(default_headers or {})
        for name, value in headers.items():
            check_header(name, value)
        if budget is not None and not isinstance(budget, Budget):
            raise InvalidRequestError(
                "budget", f"must have acquire() and release(), not {budget!r}"
            )
        self.budget: Budget = LocalBudget() if budget is None else budget
        self.max_retries = max_retries
        if retry_policy is not None and not isinstance(retry_policy, RetryPolicy):
            raise InvalidRequestError(
                "retry_policy", f"must be a RetryPolicy, not {retry_policy!r}"
            )
        self.retry_policy = retry_policy or RetryPolicy()
        self._retrying = retrying(self.retry_policy, max_retries)
        self._transport = Transport(
            base_url=base_url,
            auth=auth,
            headers=headers,
            query=list((default_query or {}).items()),
            timeout=timeout,
            session=session,
            max_response_bytes=max_response_bytes,
        )
        self._hosted_openai = "://api.openai.com" in self._transport.base_url
        self._answered = False
        self.runs = Runs(self)
        self.messages = Messages(self)
        self.threads = Threads(self, self.messages)

    @classmethod
    def azure(
        cls,
        *,
        endpoint: str | None = None,
        api_version: str | None = None,
        api_key: str | None = None,
        token_provider: TokenAuth | None = None,
        **options: Any,
    ) -> Self:
        """Build a client for an Azure OpenAI resource (legacy: the service is retired).

        Azure OpenAI's Assistants API was retired with OpenAI's on
        2026-08-26; the threads and runs protocol lives on in Azure AI Foundry
        Agent Service, which [foundry][openai_runs.RunsClient.foundry]
        targets. This preset stays for gateways and private deployments that
        still serve the old `/openai` path.

        The base URL is *endpoint* plus `/openai`, every request carries
        `api-version`, and the key goes in the `api-key` header; or pass
        *token_provider* (a [TokenAuth][openai_runs.auth.TokenAuth]) for
        Microsoft Entra ID tokens. Unset values come from
        `AZURE_OPENAI_ENDPOINT`, `OPENAI_API_VERSION` and
        `AZURE_OPENAI_API_KEY`.

        Args:
            endpoint: The resource, e.g. `https://NAME.openai.azure.com`.
            api_version: The `api-version` query parameter.
            api_key: The resource key.
            token_provider: Entra ID authentication instead of a key.
            **options: Any other [RunsClient][openai_runs.RunsClient] argument.

        Returns:
            The configured client.

        Raises:
            InvalidRequestError: The endpoint, version or credentials are missing.
        """
        endpoint = endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")
        api_version = api_version or os.environ.get("OPENAI_API_VERSION")
        if not endpoint:
            raise InvalidRequestError(
                "endpoint", "pass endpoint= or set AZURE_OPENAI_ENDPOINT"
            )
        if not api_version:
            raise InvalidRequestError(
                "api_version", "pass api_version= or set OPENAI_API_VERSION"
            )
        auth: Auth
        if token_provider is not None:
            auth = token_provider
        else:
            api_key = api_key or os.environ.get("AZURE_OPENAI_API_KEY")
            if not api_key:
                raise InvalidRequestError(
                    "api_key",
                    "pass api_key= or token_provider=, or set AZURE_OPENAI_API_KEY",
                )
            auth = ApiKeyAuth(api_key)
        query = {"api-version": api_version, **options.pop("default_query", {})}
        return cls(
            base_url=endpoint.rstrip("/") + "/openai",
            auth=auth,
            default_query=query,
            **options,
        )

    @classmethod
    def foundry(
        cls,
        endpoint: str | None = None,
        *,
        credential: TokenCredential | None = None,
        api_key: str | None = None,
        api_version: str = FOUNDRY_API_VERSION,
        **options: Any,
    ) -> Self:
        """Build a client for an Azure AI Foundry Agent Service project.

        Paths hang directly under the project endpoint
        (`{endpoint}/threads/{thread_id}/runs`), every request carries
        `api-version`, and requests authenticate with a Microsoft Entra ID
        token for the scope `https://ai.azure.com/.default`, taken from
        *credential* and refreshed before it expires (see
        [CredentialAuth][openai_runs.auth.CredentialAuth]). Any
        `azure.identity.aio` credential fits (`pip install azure-identity`):

        ```python
        from azure.identity.aio import DefaultAzureCredential

        async with DefaultAzureCredential() as credential:
            async with RunsClient.foundry(credential=credential) as client:
                run = await client.runs.create(thread_id, agent_id=agent_id)
        ```

        Args:
            endpoint: The project endpoint,
                `https://NAME.services.ai.azure.com/api/projects/PROJECT`;
                `AZURE_AI_PROJECT_ENDPOINT` if *None*.
            credential: Supplies Entra ID tokens; the caller closes it.
            api_key: A fixed token sent as `Authorization: Bearer`, instead
                of a *credential* (for the emulator, or a gateway in front of
                Foundry).
            api_version: The `api-version` query parameter.
            **options: Any other [RunsClient][openai_runs.RunsClient] argument
                (`auth=` replaces *credential* and *api_key*).

        Returns:
            The configured client.

        Raises:
            InvalidRequestError: No endpoint, or not a project endpoint; none
                or more than one of *credential*, *api_key* and `auth=`; an
                empty *api_version*.
        """
        endpoint = endpoint or os.environ.get(FOUNDRY_ENDPOINT_ENV)
        if not endpoint:
            raise InvalidRequestError(
                "endpoint", f"pass endpoint= or set {FOUNDRY_ENDPOINT_ENV}"
            )
        endpoint = check_base_url(endpoint)
        if ".services.ai.azure.com" in endpoint and "/api/projects/" not in endpoint:
            raise InvalidRequestError(
                "endpoint",
                "is a resource, not a project: use the project endpoint, "
                "https://NAME.services.ai.azure.com/api/projects/PROJECT",
            )
        if not api_version:
            raise InvalidRequestError("api_version", "must be a non-empty string")
        auth: Auth | None = options.pop("auth", None)
        if sum(x is not None for x in (auth, credential, api_key)) > 1:
            raise InvalidRequestError(
                "credential", "give one of credential=, api_key= and auth="
            )
        if auth is None and credential is not None:
            auth = CredentialAuth(credential)
        elif auth is None and api_key:
            auth = BearerAuth(api_key)
        elif auth is None:
            raise InvalidRequestError(
                "credential",
                "pass credential= (for example azure.identity.aio."
                "DefaultAzureCredential(), from pip install azure-identity), "
                "api_key= or auth=",
            )
        query = {"api-version": api_version, **options.pop("default_query", {})}
        client = cls(base_url=endpoint, auth=auth, default_query=query, **options)
        # Foundry neither declares nor needs OpenAI's beta header.
        client._transport.headers.pop("OpenAI-Beta", None)
        return client

    @property
    def base_url(self) -> str:
        """The API root that every path is appended to."""
        return self._transport.base_url

    def __repr__(self) -> str:
        url = URL(self.base_url)
        if url.password is not None:
            url = url.with_password("***")
        return f"<RunsClient base_url={str(url)!r}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session, unless the caller owns it."""
        await self._transport.aclose()

    async def request(  # noqa: PLR0915 - the one path: budget, send, map, retry
        self,
        method: str,
        path: str | tuple[str, ...],
        cls: type[T],
        *,
        params: Iterable[tuple[str, str]] = (),
        body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        retry_sent: bool = True,
    ) -> Response[T]:
        """Send a request, retry it as the policy says, and parse the answer.

        The one path every call takes; public for calls this package does not
        wrap yet.

        Args:
            method: The HTTP method.
            path: Path segments after the base URL, e.g. `("threads", tid)`,
                each percent-encoded; or a string, `"threads/thread_1/runs"`,
                split at `/` with each segment checked as an id is.
            cls: The model to structure the JSON body into.
            params: Query parameters.
            body: The JSON body.
            timeout: Seconds for one attempt; the client's default if *None*.
            max_retries: Retries for this call; the client's default if *None*.
            retry_sent: Whether to retry a connection error that came after
                the request may have reached the server (a write that may
                have acted). *False* raises it at once, with
                ``request_sent`` set, so the caller can find out first.

        Returns:
            The parsed model with the HTTP answer.

        Raises:
            InvalidRequestError: A path segment, *timeout* or *max_retries*
                is invalid (nothing is sent).
            APIStatusError: An error status, after any retries.
            APIDecodeError: A body that is not the model's JSON.
            APIConnectionError: No answer, after any retries.
        """
        if isinstance(path, str):
            path = check_path(path)
        elif not isinstance(path, tuple):
            raise InvalidRequestError(
                "path", f"must be a string or a tuple, not {type(path).__name__}"
            )
        if timeout is not None:
            check_seconds("timeout", timeout)
        if max_retries is not None:
            check_count("max_retries", max_retries)
        try:
            data = None if body is None else json.dumps(body, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:  # NaN, a set, a cycle: not JSON
            raise InvalidRequestError("body", f"is not JSON: {exc}") from None
        query = list(params)

        budget = self.budget

        async def attempt(resend: int = 0) -> Response[T]:
            await budget.acquire()
            try:
                status, headers, raw = await self._send(
                    method,
                    path,
                    query,
                    data,
                    timeout,
                    retry_sent=retry_sent,
                    resend=resend,
                )
            except BaseException:
                budget.release()
                raise
            if status < 300:
                budget.release()
            else:
                scrubbed = self._transport.scrub(raw)
                error = error_from_response(status, headers, scrubbed)
                budget.release(self._throttled(error))
                if status == 404 and self._hosted_openai and not self._answered:
                    error.args = (error.args[0] + _RETIRED_HINT,)
                self._redact(error)
                raise error
            self._answered = True
            try:
                parsed = _parse(raw, cls, status, headers)
            except APIDecodeError as error:
                error.excerpt = excerpt_of(self._transport.scrub(raw))
                self._redact(error)
                raise
            return Response(parsed, status, headers)

        # The first attempt goes outside tenacity: its setup costs about a
        # fifth of a successful call's CPU, and most calls succeed at once.
        try:
            return await attempt()
        except _NotRetried as stop:
            raise stop.error from None
        except Exception as exc:  # noqa: BLE001 - handed to tenacity below
            failure: Exception | None = exc

        resends = 0

        async def again() -> Response[T]:
            # Tenacity's first attempt re-raises the failure above, so its
            # count, backoff and stop see exactly one failed try.
            nonlocal failure, resends
            if failure is not None:
                first, failure = failure, None
                raise first
            resends += 1
            return await attempt(resends)

        control = self._retrying
        if max_retries is not None and max_retries != self.max_retries:
            control = retrying(self.retry_policy, max_retries)
        try:
            return await control(again)
        except _NotRetried as stop:
            raise stop.error from None

    async def _send(
        self,
        method: str,
        path: tuple[str, ...],
        query: list[tuple[str, str]],
        data: bytes | None,
        timeout: float | None,
        *,
        retry_sent: bool,
        resend: int,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One exchange; a failure after sending escapes the retries if asked."""
        try:
            if _observe.hooks is None:
                return await self._transport.request(
                    method, path, params=query, body=data, timeout=timeout
                )
            return await _observed(
                self._transport,
                method,
                path,
                query,
                data,
                timeout=timeout,
                resend=resend,
            )
        except APIConnectionError as lost:
            if not retry_sent and lost.request_sent:
                raise _NotRetried(lost) from lost
            raise

    def _throttled(self, error: APIResponseError) -> float | None:
        """How long a 429 asks the whole key to wait; *None* for other errors."""
        if not isinstance(error, RateLimitError) or isinstance(
            error, InsufficientQuotaError
        ):
            return None  # no wait brings a spent quota back
        hint = retry_hint(error.headers)
        policy = self.retry_policy
        return policy.initial if hint is None else min(hint, policy.max_retry_after)

    def _redact(self, error: APIResponseError) -> None:
        """Blank out any credential a server echoed back into *error*.

        Debugging proxies and some gateways answer with the request they got,
        headers included; the excerpt, message and body must not carry the key
        on into logs and tracebacks. The credentials are those the transport
        sent, not fresh ones from the auth: a token provider is not called
        again on the error path.
        """
        for secret in self._transport.secrets:
            _redact_error(error, secret)


async def _observed(
    transport: Transport,
    method: str,
    path: tuple[str, ...],
    query: list[tuple[str, str]],
    data: bytes | None,
    *,
    timeout: float | None,
    resend: int,
) -> tuple[int, Mapping[str, str], bytes]:
    """Send one attempt with the installed observers told of it."""
    hooks = _observe.hooks
    assert hooks is not None
    trace = hooks.request(
        transport, method, path, query, resend + _observe.resends.get()
    )
    try:
        answer = await transport.request(
            method, path, params=query, body=data, timeout=timeout
        )
    except BaseException as exc:
        trace.failed(exc)
        raise
    trace.answered(answer[0], answer[1])
    return answer


def _check_userinfo(base_url: str, auth: Auth, headers: Mapping[str, str]) -> None:
    """Refuse `user:password@` in *base_url* when an Authorization header goes too.

    aiohttp sends URL credentials as Basic auth in the Authorization header,
    and refuses (a bare ValueError, at the first request) to send both.
    """
    parts = urlsplit(base_url)
    if parts.username is None and parts.password is None:
        return
    authorization = (
        isinstance(auth, BearerAuth | TokenAuth)
        or (isinstance(auth, ApiKeyAuth) and auth.header.lower() == "authorization")
        or any(name.lower() == "authorization" for name in headers)
    )
    if authorization:
        raise InvalidRequestError(
            "base_url",
            "has credentials (user:password@) that would replace the key's "
            "Authorization header; pass the key as api_key= or auth= and "
            "leave them out of the URL",
        )


class _NotRetried(Exception):
    """Carries a failure past tenacity, which retries only what it knows."""

    def __init__(self, error: APIConnectionError) -> None:
        super().__init__(str(error))
        self.error = error


def _redact_error(error: APIResponseError, secret: str) -> None:
    """Replace *secret* wherever *error* shows text from the response."""
    hidden = "[redacted]"
    error.excerpt = error.excerpt.replace(secret, hidden)
    error.message = error.message.replace(secret, hidden)
    error.args = tuple(
        a.replace(secret, hidden) if isinstance(a, str) else a for a in error.args
    )
    if error.body is not None:
        text = json.dumps(error.body)
        if secret in text:
            error.body = json.loads(text.replace(secret, hidden))


def _parse(raw: bytes, cls: type[T], status: int, headers: Mapping[str, str]) -> T:
    """Decode and structure a body, or raise `APIDecodeError`."""
    try:
        return client_converter().structure(loads(raw), cls)
    except ValueError as exc:
        problem = f"the body is not JSON ({exc})"
    except (cattrs.BaseValidationError, TypeError, AttributeError, KeyError) as exc:
        detail = (
            "; ".join(cattrs.transform_error(exc)[:5])
            if isinstance(exc, cattrs.ClassValidationError)
            else str(exc)
        )
        problem = f"the body is not a valid {_name(cls)}: {detail}"
    excerpt = excerpt_of(raw)
    raise APIDecodeError(problem, status_code=status, headers=headers, excerpt=excerpt)


def _name(cls: Any) -> str:
    return getattr(cls, "__name__", str(cls))


class RunCreateParams(TypedDict, total=False):
    """The optional parameters of a run's create, as the API names them.

    Every one left out is not sent, so the assistant's own settings apply.

    Attributes:
        model: Overrides the assistant's model.
        reasoning_effort: `low`, `medium`, `high`, ... for reasoning models.
        instructions: Replaces the assistant's instructions.
        additional_instructions: Appended to the instructions.
        additional_messages: Added to the thread before the run: each a
            [MessageRequest][openai_runs.models.MessageRequest] or its JSON.
        tools: Replaces the assistant's tools: tool models or their JSON
            (`{"type": "code_interpreter"}`).
        metadata: At most 16 string pairs.
        temperature: Sampling temperature (OpenAI takes 0 to 2).
        top_p: Nucleus sampling mass (0 to 1).
        max_prompt_tokens: A token budget (OpenAI takes 256 or more).
        max_completion_tokens: A token budget (OpenAI takes 256 or more).
        truncation_strategy: How the thread is cut before the run (a model
            or its JSON).
        tool_choice: `none`, `auto`, `required` (not on Azure AI Foundry),
            strings sent as given, or a
            [NamedToolChoice][openai_runs.models.NamedToolChoice].
        parallel_tool_calls: Whether the model may call tools in parallel.
        response_format: `auto` or a response format model.
        include: Extra step fields, as for `steps.list`.
        idempotency_key: Makes the create safe to retry. Left out (or
            *True*), the run's metadata is tagged with a fresh key under
            `openai_runs_idempotency_key`; a string tags it with yours;
            *False* sends no tag (a metadata of 16 keys leaves no room for
            one either). When the answer to a create is lost after it was
            sent, the run is looked for by its key before the create is sent
            again; untagged, a lost answer raises
            [OutcomeUnknownError][openai_runs.exceptions.OutcomeUnknownError].
    """

    model: str | None
    reasoning_effort: str | None
    instructions: str | None
    additional_instructions: str | None
    additional_messages: Sequence[MessageRequest | Mapping[str, Any]] | None
    tools: Sequence[Tool | Mapping[str, Any]] | None
    metadata: Mapping[str, str] | None
    temperature: float | None
    top_p: float | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    truncation_strategy: TruncationStrategy | Mapping[str, Any] | None
    tool_choice: str | NamedToolChoice | Mapping[str, Any] | None
    parallel_tool_calls: bool | None
    response_format: str | ResponseFormat | Mapping[str, Any] | None
    include: Iterable[str] | None
    idempotency_key: str | bool


class CreateAndPollParams(RunCreateParams, WatchOptions, total=False):
    """The create parameters and the watch options: `create_and_poll`, `stream`."""


class ThreadRunCreateParams(TypedDict, total=False):
    """The optional parameters of `create_thread_and_run` (and its stream).

    Every one left out is not sent. As for
    [RunCreateParams][openai_runs.RunCreateParams], but for these:

    Attributes:
        thread: The thread's messages, tool resources and metadata (a
            [ThreadRequest][openai_runs.models.ThreadRequest] or its JSON); an
            empty thread if left out.
        tool_resources: Files and vector stores for the tools.
        metadata: At most 16 string pairs, on the run.
        idempotency_key: Tags the run's metadata as for
            [create][openai_runs.Runs.create]; here only to recognise the run
            later, since nothing lists threads to look in.
    """

    thread: ThreadRequest | Mapping[str, Any] | None
    model: str | None
    instructions: str | None
    tools: Sequence[Tool | Mapping[str, Any]] | None
    tool_resources: Mapping[str, Any] | None
    metadata: Mapping[str, str] | None
    temperature: float | None
    top_p: float | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    truncation_strategy: TruncationStrategy | Mapping[str, Any] | None
    tool_choice: str | NamedToolChoice | Mapping[str, Any] | None
    parallel_tool_calls: bool | None
    response_format: str | ResponseFormat | Mapping[str, Any] | None
    idempotency_key: str | bool


class ThreadRunStreamParams(ThreadRunCreateParams, WatchOptions, total=False):
    """The create parameters and the watch options: `create_thread_and_run_stream`."""


_CREATE_PARAMS = frozenset(RunCreateParams.__annotations__)
_THREAD_RUN_PARAMS = frozenset(ThreadRunCreateParams.__annotations__)


def _split(
    params: Mapping[str, Any], create: frozenset[str]
) -> tuple[dict[str, Any], WatchOptions]:
    """Part *params* into create parameters and watch options; refuse the rest."""
    unknown = set(params) - create - WATCH_OPTIONS
    if unknown:
        raise TypeError(f"unexpected parameter(s): {', '.join(sorted(unknown))}")
    watch: Any = {k: v for k, v in params.items() if k in WATCH_OPTIONS}
    return {k: v for k, v in params.items() if k in create}, watch


class Runs:
    """The Runs calls: `client.runs`.

    Attributes:
        steps: The run step calls.
    """

    def __init__(self, client: RunsClient) -> None:
        self._client = client
        self.steps = RunSteps(client)

    async def retrieve(
        self,
        thread_id: str,
        run_id: str,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Run:
        """Retrieve a run.

        Args:
            thread_id: The thread that was run.
            run_id: The run to retrieve.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for this call, instead of the client's.

        Returns:
            The run as it is now.

        Raises:
            InvalidRequestError: An id is empty or unsafe (nothing is sent).
            NotFoundError: No such thread or run.
        """
        response = await self.retrieve_response(
            thread_id, run_id, timeout=timeout, max_retries=max_retries
        )
        return response.parsed

    async def retrieve_response(
        self,
        thread_id: str,
        run_id: str,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Response[Run]:
        """Like [retrieve][openai_runs.Runs.retrieve], with headers and request id."""
        path = _run_path(thread_id, run_id)
        return await self._client.request(
            "GET", path, Run, timeout=timeout, max_retries=max_retries
        )

    async def update(
        self,
        thread_id: str,
        run_id: str,
        *,
        metadata: Mapping[str, str] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Run:
        """Modify a run: set its *metadata* (the only field the API lets change).

        Args:
            thread_id: The thread that was run.
            run_id: The run to modify.
            metadata: At most 16 string pairs; keys up to 64 characters,
                values up to 512. Replaces the run's metadata.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for this call, instead of the client's.

        Returns:
            The modified run.

        Raises:
            InvalidRequestError: An id or the metadata is invalid (nothing is sent).
        """
        path = _run_path(thread_id, run_id)
        checked = check_metadata(metadata)
        body = {} if checked is None else {"metadata": dict(checked)}
        response = await self._client.request(
            "POST", path, Run, body=body, timeout=timeout, max_retries=max_retries
        )
        return response.parsed

    async def cancel(
        self,
        thread_id: str,
        run_id: str,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Run:
        """Ask for a run to be cancelled.

        The run usually answers `cancelling` and becomes `cancelled` a
        little later; watch it to learn how it ended. Cancelling a run that
        has already ended is a
        [BadRequestError][openai_runs.exceptions.BadRequestError].

        Args:
            thread_id: The thread that was run.
            run_id: The run to cancel.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for this call, instead of the client's.

        Returns:
            The run, typically `cancelling`.

        Raises:
            InvalidRequestError: An id is empty or unsafe (nothing is sent).
            BadRequestError: The run has already ended.

        A cancel whose answer was lost after it was sent is not simply sent
        again: the run is looked at first, and if it is `cancelling` or
        `cancelled` it is returned (the retry's 400 is not raised for a
        cancel that took effect).
        """
        path = (*_run_path(thread_id, run_id), "cancel")
        return await write_to_run(
            self,
            self._client,
            path,
            body=None,
            call_ids=None,
            timeout=timeout,
            max_retries=max_retries,
        )

    def watch(
        self, thread_id: str, run_id: str, **options: Unpack[WatchOptions]
    ) -> RunWatcher:
        """Watch a run until it ends or needs the caller.

        `await client.runs.watch(tid, rid)` returns the final run; `async for
        run in client.runs.watch(tid, rid)` yields it at each change of
        status. See [RunWatcher][openai_runs.RunWatcher] for the rules.

        Args:
            thread_id: The thread that was run.
            run_id: The run to watch.
            **options: The [WatchOptions][openai_runs.WatchOptions]:
                *timeout* (900 s by default), *cancel_on_timeout*, *policy*,
                *on_status*, *tool_handler*.

        Returns:
            A [RunWatcher][openai_runs.RunWatcher] to await or iterate.

        Raises:
            InvalidRequestError: An id or option is invalid (nothing is sent).
        """
        return RunWatcher(
            self._client,
            check_id("thread_id", thread_id),
            check_id("run_id", run_id),
            **options,
        )

    async def poll(
        self, thread_id: str, run_id: str, **options: Unpack[WatchOptions]
    ) -> Run:
        """Poll a run until it ends or needs the caller: `await watch(...)`.

        The openai-python name for [watch][openai_runs.Runs.watch].

        Returns:
            The run: terminal, or `requires_action` without a *tool_handler*.

        Raises:
            WatchTimeoutError: The deadline passed.
            ToolCallError: The tool handler raised.
            APIStatusError: A permanent fault, such as 404.
        """
        return await self.watch(thread_id, run_id, **options)

    def watch_many(
        self,
        runs: Iterable[RunRef] | AsyncIterable[RunRef],
        *,
        store: RunStore | None = None,
        **options: Unpack[WatchOptions],
    ) -> AsyncGenerator[WatchResult, None]:
        """Watch many runs; yield each one's result as it ends.

        Each run is watched by the rules of [RunWatcher][openai_runs.RunWatcher]
        (the same state machine), with its own deadline counted from when it
        was read from *runs*. Results come in the order the watches end;
        every run yields exactly one result, and a failure (a timeout, a tool
        error, a status hook that raised) is reported for its run only. One
        scheduler sleeps every run on a heap; only requests in flight and
        tool handlers at work have a task. The requests go through the
        client's budget, which bounds them (in flight, per second, the
        shared 429 pause) together with everything else the client sends.

        Use it under `contextlib.aclosing` to stop at once when leaving
        the loop early (or cancel the task iterating it): every request it
        started is cancelled and awaited. Without `aclosing`, the watches
        still running are cancelled when the generator is garbage collected.

        With a *store* ([SQLiteRunStore][openai_runs.store.SQLiteRunStore],
        `RedisRunStore`), each run is recorded as it is read, its status as
        it changes and how its watch ended, and
        [resume_many][openai_runs.Runs.resume_many] goes on with the runs
        that had not ended (after a crash, or in another process). The
        runs are claimed in the store: a run the store has seen end, or that
        another live worker holds, is skipped (not watched, not yielded), and
        a result is yielded only once its end is recorded. The writes are
        batched in a task of their own; the watches never wait for them.

        Args:
            runs: [Run][openai_runs.Run]s, `(thread_id, run_id)` or
                `(thread_id, run_id, key)` tuples, as a plain or an async
                iterable (read while watching, so work can be fed in as
                earlier runs end). With a *store*, a key must be a JSON value.
            store: A [RunStore][openai_runs.store.RunStore] to record the
                runs in, or *None*.
            **options: The [WatchOptions][openai_runs.WatchOptions], for
                every run. *on_status* runs in the poll's task: keep it quick;
                what it raises ends that run's watch.

        Returns:
            An async generator of one [WatchResult][openai_runs.WatchResult]
            per run.

        Raises:
            InvalidRequestError: A bad option (at once) or a bad item in
                *runs* (when it is read).
            StoreError: The store could not be written (the runs recorded
                so far stay recorded).
        """
        return watch_many(self._client, runs, Settings.of(options), store=store)

    def resume_many(
        self, store: RunStore, **options: Unpack[WatchOptions]
    ) -> AsyncGenerator[WatchResult, None]:
        """Go on with the runs of *store* whose watches had not ended.

        The counterpart of `watch_many(runs, store=store)` after a crash, or
        for a pool of workers sharing a store: it claims the store's open
        runs (in batches, oldest first), watches them as `watch_many` does
        and yields one [WatchResult][openai_runs.WatchResult] per run. Runs
        another worker holds are left to it while its lease is renewed, and
        taken over when the lease lapses (the worker died); it returns once
        every run in the store has ended. Each run is reported once across
        every worker: a result is yielded only after its end is recorded,
        and the write is refused to a worker whose claim was taken over.

        Each resumed watch starts afresh: *timeout* counts from when the run
        is claimed (the run's own expiry still bounds it), and the first
        poll is reported as a change of status.

        Args:
            store: The [RunStore][openai_runs.store.RunStore] a `watch_many`
                recorded its runs in.
            **options: The [WatchOptions][openai_runs.WatchOptions], as for
                `watch_many`.

        Returns:
            An async generator of one [WatchResult][openai_runs.WatchResult]
            per run it finished.

        Raises:
            InvalidRequestError: A bad option (at once).
            StoreError: The store could not be read or written.
        """
        return watch_many(
            self._client, (), Settings.of(options), store=store, resume=True
        )

    async def create_and_poll(
        self,
        thread_id: str,
        *,
        assistant_id: str | None = None,
        agent_id: str | None = None,
        rate_limit_restarts: int = 0,
        rate_limit_backoff: float = 10.0,
        **params: Unpack[CreateAndPollParams],
    ) -> Run:
        """Start a run ([create][openai_runs.Runs.create]) and watch it.

        With a *tool_handler*, the watch also serves the run's tool calls,
        so the run comes back terminal.

        Args:
            thread_id: The thread to run.
            assistant_id: The assistant to run it with.
            agent_id: Azure AI Foundry's name for *assistant_id*; give one
                of the two.
            rate_limit_restarts: How many times to start a new run when one
                ends `failed` with `last_error.code` `rate_limit_exceeded`
                (the model's token or request budget ran out while the run
                worked: not a 429, which the client retries by itself). 0,
                the default, returns that failed run. A restart does not send
                *additional_messages* again: they are in the thread already.
            rate_limit_backoff: Seconds before the first restart, doubled at
                each one (at most eight times this), plus up to a tenth at
                random; a wait the run's error names ("try again in 6.5s")
                is used instead.
            **params: The create parameters
                ([RunCreateParams][openai_runs.RunCreateParams]) and the
                [WatchOptions][openai_runs.WatchOptions]; *timeout* is the
                watch's (the create request uses the client's own timeout and
                retries).

        Returns:
            The final run the watch reports; with *rate_limit_restarts*, the
            last run started.

        Raises:
            InvalidRequestError: An argument is invalid (nothing is sent).
            WatchTimeoutError: The deadline passed.
            ToolCallError: The tool handler raised.
            APIStatusError: A permanent fault.
        """
        given, watch = _split(params, _CREATE_PARAMS)
        Settings.of(watch)  # a bad watch option is refused before the create
        first = True

        async def attempt() -> Run:
            nonlocal first
            # A restart runs the same thread, which has these messages now.
            if not first:
                given.pop("additional_messages", None)
            first = False
            run = await self.create(
                thread_id, assistant_id=assistant_id, agent_id=agent_id, **given
            )
            return await self.watch(run.thread_id, run.id, **watch)

        if not rate_limit_restarts:
            check_count("rate_limit_restarts", rate_limit_restarts)
            return await attempt()
        return await restart_rate_limited(
            attempt, restarts=rate_limit_restarts, backoff=rate_limit_backoff
        )

    async def submit_tool_outputs_and_poll(
        self,
        thread_id: str,
        run_id: str,
        *,
        tool_outputs: Sequence[ToolOutput | Mapping[str, Any]],
        **options: Unpack[WatchOptions],
    ) -> Run:
        """Submit tool outputs, then watch the run.

        Args:
            thread_id: The thread that was run.
            run_id: The run waiting on tool outputs.
            tool_outputs: One output per tool call.
            **options: The [WatchOptions][openai_runs.WatchOptions]; a
                *tool_handler* serves any later tool calls.

        Returns:
            The final run the watch reports: terminal, or `requires_action`
            again if the run asks for more and there is no *tool_handler*.

        Raises:
            InvalidRequestError: An argument is invalid (nothing is sent).
            BadRequestError: The run was not waiting on these tool outputs.
            WatchTimeoutError: The deadline passed.
            ToolCallError: The tool handler raised.
        """
        watcher = self.watch(thread_id, run_id, **options)
        await self.submit_tool_outputs(thread_id, run_id, tool_outputs=tool_outputs)
        return await watcher

    async def create(
        self,
        thread_id: str,
        *,
        assistant_id: str | None = None,
        agent_id: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        **params: Unpack[RunCreateParams],
    ) -> Run:
        """Start a run of an assistant on a thread.

        Parameters left out are not sent, so the assistant's own settings
        apply. To stream the run's events, use [stream][openai_runs.Runs.stream].

        Args:
            thread_id: The thread to run.
            assistant_id: The assistant to run it with.
            agent_id: Azure AI Foundry's name for *assistant_id*; give one
                of the two.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for this call, instead of the client's.
            **params: The [RunCreateParams][openai_runs.RunCreateParams]:
                *model*, *instructions*, *tools*, *metadata*, ...,
                *idempotency_key*. When the answer to a create is lost after
                it was sent, the thread's newest runs are searched for the
                run's idempotency key before the create is sent again.

        Returns:
            The new run, usually `queued`.

        Raises:
            InvalidRequestError: An argument is invalid (nothing is sent).
            TypeError: An unknown parameter.
        """
        unknown = set(params) - _CREATE_PARAMS
        if unknown:
            raise TypeError(
                f"unexpected create parameter(s): {', '.join(sorted(unknown))}"
            )
        path, query, body, key = _create_request(
            thread_id, _assistant(assistant_id, agent_id), params
        )
        return await create_run(
            self,
            self._client,
            path,
            params=query,
            body=body,
            key=key,
            timeout=timeout,
            max_retries=max_retries,
        )

    async def create_thread_and_run(
        self,
        *,
        assistant_id: str | None = None,
        agent_id: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        **params: Unpack[ThreadRunCreateParams],
    ) -> Run:
        """Create a thread and start a run on it, in one request.

        Args:
            assistant_id: The assistant to run.
            agent_id: Azure AI Foundry's name for *assistant_id*; give one
                of the two.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for this call, instead of the client's.
                Only failures before the request was sent are retried.
            **params: The
                [ThreadRunCreateParams][openai_runs._client.ThreadRunCreateParams]:
                *thread*, *model*, *instructions*, *tools*, *tool_resources*,
                *metadata*, ..., *idempotency_key*.

        Returns:
            The new run; its `thread_id` names the new thread.

        Raises:
            InvalidRequestError: An argument is invalid (nothing is sent).
            OutcomeUnknownError: The answer was lost after the request was
                sent: a thread and run may exist. It is not sent again.
            TypeError: An unknown parameter.
        """
        unknown = set(params) - _THREAD_RUN_PARAMS
        if unknown:
            raise TypeError(
                f"unexpected create parameter(s): {', '.join(sorted(unknown))}"
            )
        body, key = _thread_run_body(_assistant(assistant_id, agent_id), params)
        return await safe_create_thread_and_run(
            self._client,
            body=body,
            key=key,
            timeout=timeout,
            max_retries=max_retries,
        )

    def stream(
        self,
        thread_id: str,
        *,
        assistant_id: str | None = None,
        agent_id: str | None = None,
        **params: Unpack[CreateAndPollParams],
    ) -> RunStream:
        """Start a run and stream its events (``stream: true``).

        ```python
        async with client.runs.stream(thread_id, assistant_id=asst) as stream:
            async for event in stream:
                ...
        ```

        The request is sent when the ``async with`` block starts, and is not
        retried (a retried create could start a second run). See
        [RunStream][openai_runs.RunStream] for what the stream yields, its
        snapshots, and what happens when the connection drops.

        Args:
            thread_id: The thread to run.
            assistant_id: The assistant to run it with.
            agent_id: Azure AI Foundry's name for *assistant_id*; give one
                of the two.
            **params: The create parameters
                ([RunCreateParams][openai_runs.RunCreateParams]) and the
                [WatchOptions][openai_runs.WatchOptions]. A *tool_handler*
                answers the run's tool calls at ``requires_action``: the
                outputs are submitted with ``stream: true`` and their events
                go on in the same stream, until the run ends. *timeout* is
                for the whole stream, tool handler included. The policy's
                *cancel_on_caller_cancel* and *cancel_on_tool_error* decide
                whether the run is cancelled when the task reading the stream
                is cancelled or the handler raises; its poll cadence is used
                only after a dropped connection.

        Returns:
            The stream, to use with ``async with`` and ``async for``.

        Raises:
            InvalidRequestError: An argument is invalid (nothing is sent).
            TypeError: An unknown parameter.
        """
        create, options = _split(params, _CREATE_PARAMS)
        path, query, body, _ = _create_request(
            thread_id, _assistant(assistant_id, agent_id), create
        )
        return RunStream(
            self._client, path, body, options, query=query, thread_id=thread_id
        )

    def create_thread_and_run_stream(
        self,
        *,
        assistant_id: str | None = None,
        agent_id: str | None = None,
        **params: Unpack[ThreadRunStreamParams],
    ) -> RunStream:
        """Create a thread, start a run on it, and stream the events.

        The stream opens with ``thread.created``. Otherwise as
        [stream][openai_runs.Runs.stream].

        Args:
            assistant_id: The assistant to run.
            agent_id: Azure AI Foundry's name for *assistant_id*.
            **params: The create parameters
                ([ThreadRunCreateParams][openai_runs._client.ThreadRunCreateParams])
                and the [WatchOptions][openai_runs.WatchOptions], as for
                [stream][openai_runs.Runs.stream].

        Returns:
            The stream, to use with ``async with`` and ``async for``.

        Raises:
            InvalidRequestError: An argument is invalid (nothing is sent).
            TypeError: An unknown parameter.
        """
        create, options = _split(params, _THREAD_RUN_PARAMS)
        body, _ = _thread_run_body(_assistant(assistant_id, agent_id), create)
        return RunStream(self._client, ("threads", "runs"), body, options)

    def submit_tool_outputs_stream(
        self,
        thread_id: str,
        run_id: str,
        *,
        tool_outputs: Sequence[ToolOutput | Mapping[str, Any]],
        **options: Unpack[WatchOptions],
    ) -> RunStream:
        """Submit tool outputs and stream the rest of the run.

        Otherwise as [stream][openai_runs.Runs.stream].

        Args:
            thread_id: The thread that was run.
            run_id: The run waiting on tool outputs.
            tool_outputs: One output per tool call of the run.
            **options: The [WatchOptions][openai_runs.WatchOptions], as for
                [stream][openai_runs.Runs.stream]; a *tool_handler* serves
                any later tool calls.

        Returns:
            The stream, to use with ``async with`` and ``async for``.

        Raises:
            InvalidRequestError: An argument is invalid (nothing is sent).
        """
        path = (*_run_path(thread_id, run_id), "submit_tool_outputs")
        return RunStream(
            self._client,
            path,
            _tool_outputs_body(tool_outputs),
            options,
            thread_id=thread_id,
            run_id=run_id,
        )

    def list(
        self,
        thread_id: str,
        *,
        limit: int | None = None,
        order: str | None = None,
        after: str | None = None,
        before: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> AsyncPager[Run]:
        """List the runs of a thread.

        `await` the result for one page, or `async for` over it for every
        run, page after page, as with `steps.list`.

        Args:
            thread_id: The thread whose runs to list.
            limit: Runs per page, 1 to 100 (the API's default is 20).
            order: `asc` or `desc` by creation time (the API's default).
            after: List the runs after this run id.
            before: List the runs before this run id; iteration then goes on
                backwards.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for each page, instead of the client's.

        Returns:
            A pager over the runs.

        Raises:
            InvalidRequestError: An argument is invalid (raised at once).
        """
        path = ("threads", check_id("thread_id", thread_id), "runs")
        params = list_params(limit, order, after, before)

        async def fetch(params: dict[str, str]) -> Response[Page[Run]]:
            return await self._client.request(
                "GET",
                path,
                Page[Run],
                params=params.items(),
                timeout=timeout,
                max_retries=max_retries,
            )

        return AsyncPager(fetch, params)

    async def active(self, thread_id: str) -> Run | None:
        """Return the run that holds the thread's lock, or *None*.

        A thread has at most one active run (``queued``, ``in_progress``,
        ``requires_action``, ``cancelling``); while it has one, creating a
        run or adding a message raises
        [ThreadLockedError][openai_runs.exceptions.ThreadLockedError]. A
        status added after this version counts as active unless the run
        carries a terminal timestamp.

        Args:
            thread_id: The thread.

        Returns:
            The active run, or *None* when the thread is free.

        Raises:
            InvalidRequestError: The id is empty or unsafe (nothing is sent).
            NotFoundError: No such thread.
        """
        active, _ = await active_run(self, thread_id)
        return active

    async def wait_idle(
        self,
        thread_id: str,
        *,
        cancel: bool = False,
        timeout: float | None = None,
        policy: WatchPolicy | None = None,
    ) -> Run | None:
        """Wait until the thread has no active run; return its last run.

        What to do on a [ThreadLockedError][openai_runs.exceptions.ThreadLockedError]:
        wait for the run that holds the thread (or cancel it, with
        *cancel*), then add the message or start the run. A run in
        ``requires_action`` ends only with tool outputs, a cancel or its
        expiry (10 minutes): without *cancel* this waits for one of those.

        ```python
        try:
            await client.messages.create(thread_id, content="Hello")
        except ThreadLockedError:
            await client.runs.wait_idle(thread_id, cancel=True, timeout=30)
            await client.messages.create(thread_id, content="Hello")
        ```

        Args:
            thread_id: The thread.
            cancel: Cancel the active run first, and wait for it to end
                (``cancelling`` is still active).
            timeout: Seconds to wait in all; *None* waits as long as each
                watch's own deadline (900 s).
            policy: The poll policy of the watch.

        Returns:
            The thread's newest run, now ended, or *None* if it has no runs.

        Raises:
            InvalidRequestError: An argument is invalid (nothing is sent).
            WatchTimeoutError: The thread still had an active run at the
                deadline; its ``run`` is that run.
            NotFoundError: No such thread.
        """
        return await wait_idle(
            self, thread_id, cancel=cancel, timeout=timeout, policy=policy
        )

    async def submit_tool_outputs(
        self,
        thread_id: str,
        run_id: str,
        *,
        tool_outputs: Sequence[ToolOutput | Mapping[str, Any]],
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Run:
        """Answer the tool calls of a run in `requires_action`.

        All outputs go in one request; the run then goes back to
        `queued`/`in_progress`.

        Args:
            thread_id: The thread that was run.
            run_id: The run waiting on tool outputs.
            tool_outputs: One [ToolOutput][openai_runs.models.ToolOutput] per
                tool call of `run.required_action`.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for this call, instead of the client's.

        Returns:
            The run, resumed.

        Raises:
            InvalidRequestError: An argument is invalid (nothing is sent).
            BadRequestError: The run was not waiting on tool outputs.

        Outputs whose answer was lost after they were sent are not simply
        sent again: the run is looked at first, and if it no longer waits on
        these calls it is returned (the retry's 400 is not raised for
        outputs that were taken).
        """
        path = (*_run_path(thread_id, run_id), "submit_tool_outputs")
        body = _tool_outputs_body(tool_outputs)
        return await write_to_run(
            self,
            self._client,
            path,
            body=body,
            call_ids=frozenset(
                str(output.get("tool_call_id")) for output in body["tool_outputs"]
            ),
            timeout=timeout,
            max_retries=max_retries,
        )


def _create_request(
    thread_id: str, assistant_id: str, params: Mapping[str, Any]
) -> tuple[tuple[str, ...], list[tuple[str, str]], dict[str, Any], str | None]:
    """A run create's path, query, body and idempotency key, checked."""
    path = ("threads", check_id("thread_id", thread_id), "runs")
    fields = dict(params)
    include = fields.pop("include", None)
    tagged, key = idempotency_metadata(
        check_metadata(fields.pop("metadata", None)),
        fields.pop("idempotency_key", True),
    )
    body = _run_body(assistant_id=assistant_id, metadata=tagged, **fields)
    query = [("include[]", value) for value in check_include(include)]
    return path, query, body, key


def _thread_run_body(
    assistant_id: str, params: Mapping[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """A create-thread-and-run's body and idempotency key, checked."""
    fields = dict(params)
    tagged, key = idempotency_metadata(
        check_metadata(fields.pop("metadata", None)),
        fields.pop("idempotency_key", True),
    )
    return _run_body(assistant_id=assistant_id, metadata=tagged, **fields), key


def _tool_outputs_body(
    tool_outputs: Sequence[ToolOutput | Mapping[str, Any]],
) -> dict[str, Any]:
    """Check the tool outputs (models or dicts) and build the submit body."""
    outputs = structured("tool_outputs", tool_outputs, list[ToolOutput])
    for output in outputs:
        check_id("tool_outputs.tool_call_id", output.tool_call_id)
    return {"tool_outputs": wire(outputs)}


def _assistant(assistant_id: str | None, agent_id: str | None) -> str:
    """The wire's `assistant_id`, given as *assistant_id* or Foundry's *agent_id*."""
    if assistant_id is not None and agent_id is not None:
        if assistant_id != agent_id:
            raise InvalidRequestError(
                "agent_id", "is another name for assistant_id: give one of the two"
            )
    elif assistant_id is None and agent_id is None:
        raise InvalidRequestError("assistant_id", "give assistant_id= or agent_id=")
    if assistant_id is None:
        return check_id("agent_id", agent_id)
    return check_id("assistant_id", assistant_id)


def _messages(
    messages: Sequence[MessageRequest] | None,
) -> Sequence[MessageRequest] | None:
    """Check the messages' roles and metadata."""
    for message in messages or ():
        if message.role not in {"user", "assistant"}:
            raise InvalidRequestError(
                "messages", f"role must be 'user' or 'assistant', not {message.role!r}"
            )
        check_metadata(message.metadata)
    return messages


# The shapes of the create calls' structured fields: each may be given as a
# model or as the API's JSON (a dict, or a list of dicts).
_SHAPES: Final[dict[str, Any]] = {
    "additional_messages": list[MessageRequest],
    "tools": list[Tool],
    "truncation_strategy": TruncationStrategy,
    "tool_choice": str | NamedToolChoice | None,
    "response_format": str | ResponseFormat | None,
    "thread": ThreadRequest,
}


def _run_body(**fields: Any) -> dict[str, Any]:
    """Check the fields shared by the create calls; drop the unset ones.

    Only what protects the request and the contract every server shares is
    checked: shapes (a model or its JSON), JSON numbers, metadata limits,
    message roles. Ranges and lists of allowed values (temperature 0 to 2,
    the `tool_choice` strings, tool types, the tool count) drift between
    OpenAI, Azure and compatible servers, and are theirs to judge.
    """
    set_fields = {k: v for k, v in fields.items() if v is not None}
    for name, shape in _SHAPES.items():
        if name in set_fields:
            set_fields[name] = structured(name, set_fields[name], shape)
    _messages(set_fields.get("additional_messages"))
    if (thread := set_fields.get("thread")) is not None:
        check_metadata(thread.metadata)
        _messages(thread.messages)
    check_metadata(set_fields.get("metadata"))
    for name in ("temperature", "top_p"):
        check_number(name, set_fields.get(name))
    for name in ("max_prompt_tokens", "max_completion_tokens"):
        check_number(name, set_fields.get(name), integer=True)
    resources = set_fields.get("tool_resources")
    if resources is not None and not isinstance(resources, Mapping):
        raise InvalidRequestError(
            "tool_resources", f"must be a mapping, not {type(resources).__name__}"
        )
    return {
        key: value if isinstance(value, str | bool | int | float) else wire(value)
        for key, value in set_fields.items()
    }


class RunSteps:
    """The run step calls: `client.runs.steps`."""

    def __init__(self, client: RunsClient) -> None:
        self._client = client

    def list(
        self,
        thread_id: str,
        run_id: str,
        *,
        limit: int | None = None,
        order: str | None = None,
        after: str | None = None,
        before: str | None = None,
        include: Iterable[str] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> AsyncPager[RunStep]:
        """List the steps of a run.

        `await` the result for one page, or `async for` over it for every
        step, page after page.

        Args:
            thread_id: The thread that was run.
            run_id: The run whose steps to list.
            limit: Steps per page, 1 to 100 (the API's default is 20).
            order: `asc` or `desc` by creation time (the API's default).
            after: List the steps after this step id.
            before: List the steps before this step id; iteration then goes
                on backwards.
            include: Extra fields, such as
                `step_details.tool_calls[*].file_search.results[*].content`.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for each page, instead of the client's.

        Returns:
            A pager over the steps.

        Raises:
            InvalidRequestError: An argument is invalid (raised at once,
                before anything is sent).
        """
        path = (*_run_path(thread_id, run_id), "steps")
        params = list_params(limit, order, after, before)
        includes = [("include[]", value) for value in check_include(include)]

        async def fetch(params: dict[str, str]) -> Response[Page[RunStep]]:
            return await self._client.request(
                "GET",
                path,
                Page[RunStep],
                params=[*params.items(), *includes],
                timeout=timeout,
                max_retries=max_retries,
            )

        return AsyncPager(fetch, params)

    async def retrieve(
        self,
        thread_id: str,
        run_id: str,
        step_id: str,
        *,
        include: Iterable[str] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> RunStep:
        """Retrieve one step of a run.

        Args:
            thread_id: The thread that was run.
            run_id: The run the step belongs to.
            step_id: The step to retrieve.
            include: Extra fields, as for [list][openai_runs.RunSteps.list].
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for this call, instead of the client's.

        Returns:
            The step.

        Raises:
            InvalidRequestError: An argument is invalid (nothing is sent).
            NotFoundError: No such thread, run or step.
        """
        path = (*_run_path(thread_id, run_id), "steps", check_id("step_id", step_id))
        params = [("include[]", value) for value in check_include(include)]
        response = await self._client.request(
            "GET",
            path,
            RunStep,
            params=params,
            timeout=timeout,
            max_retries=max_retries,
        )
        return response.parsed


def _run_path(thread_id: str, run_id: str) -> tuple[str, ...]:
    return (
        "threads",
        check_id("thread_id", thread_id),
        "runs",
        check_id("run_id", run_id),
    )
