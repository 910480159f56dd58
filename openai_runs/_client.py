"""The client a user awaits: configuration, one request path, the Runs calls."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import aiohttp
import cattrs

from ._converter import converter
from ._http import Response, Transport
from ._pagination import AsyncPager
from ._retry import RetryPolicy, retrying
from ._validation import check_id, check_include, check_metadata, list_params
from .auth import ApiKeyAuth, Auth, BearerAuth, TokenAuth
from .exceptions import (
    EXCERPT_LIMIT,
    APIDecodeError,
    InvalidRequestError,
    error_from_response,
)
from .models import Page, Run, RunStep

__all__ = ["RunSteps", "Runs", "RunsClient"]

T = TypeVar("T")

DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
DEFAULT_TIMEOUT: Final = 60.0
DEFAULT_MAX_RETRIES: Final = 2

try:
    _VERSION = version("openai-runs")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    _VERSION = "0+unknown"

_RETIRED_HINT: Final = (
    "; no call to api.openai.com has succeeded from this client: OpenAI retired "
    "its hosted Assistants API on 2026-08-26, so point base_url (or "
    "OPENAI_BASE_URL) at a server that still serves it, such as Azure AI "
    "Foundry (RunsClient.azure) or the emulator (openai-runs serve)"
)


class RunsClient:
    """An async client for the Runs API.

    Use it as an async context manager, or call :meth:`aclose` when done::

        async with RunsClient() as client:
            run = await client.runs.retrieve(thread_id, run_id)

    Every argument left unset comes from the environment: ``OPENAI_API_KEY``,
    ``OPENAI_BASE_URL``, ``OPENAI_ORG_ID``, ``OPENAI_PROJECT_ID``.

    Args:
        api_key: The key, sent as ``Authorization: Bearer …``.
        base_url: The API root, with any path prefix
            (default ``https://api.openai.com/v1``).
        organization: Sent as ``OpenAI-Organization``.
        project: Sent as ``OpenAI-Project``.
        timeout: Seconds for one whole request (default 60).
        max_retries: Retries of a transient failure (default 2).
        default_headers: Extra headers on every request.
        default_query: Query parameters on every request, such as Azure's
            ``api-version``.
        auth: Another authentication scheme (:class:`~openai_runs.auth.ApiKeyAuth`,
            :class:`~openai_runs.auth.TokenAuth`); replaces *api_key*.
        retry_policy: Backoff and hint limits for retries.
        session: A caller-owned :class:`aiohttp.ClientSession`; the client
            uses it and never closes it.

    Raises:
        InvalidRequestError: No key and no *auth* were given.
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
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if auth is None:
            api_key = api_key or os.environ.get("OPENAI_API_KEY")
            if not api_key:
                raise InvalidRequestError(
                    "api_key",
                    "no API key: pass api_key= or auth=, or set OPENAI_API_KEY",
                )
            auth = BearerAuth(api_key)
        if max_retries < 0:
            raise InvalidRequestError("max_retries", "must be 0 or more")
        if timeout <= 0:
            raise InvalidRequestError("timeout", "must be more than 0 seconds")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        organization = organization or os.environ.get("OPENAI_ORG_ID")
        project = project or os.environ.get("OPENAI_PROJECT_ID")
        headers = {
            "Accept": "application/json",
            "OpenAI-Beta": "assistants=v2",
            "User-Agent": f"openai-runs/{_VERSION}",
        }
        if organization:
            headers["OpenAI-Organization"] = organization
        if project:
            headers["OpenAI-Project"] = project
        headers.update(default_headers or {})
        self.max_retries = max_retries
        self.retry_policy = retry_policy or RetryPolicy()
        self._retrying = retrying(self.retry_policy, max_retries)
        self._transport = Transport(
            base_url=base_url,
            auth=auth,
            headers=headers,
            query=list((default_query or {}).items()),
            timeout=timeout,
            session=session,
        )
        self._hosted_openai = "://api.openai.com" in self._transport.base_url
        self._answered = False
        self.runs = Runs(self)

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
        """Build a client for an Azure OpenAI or Azure AI Foundry resource.

        The base URL is *endpoint* plus ``/openai``, every request carries
        ``api-version``, and the key goes in the ``api-key`` header; or pass
        *token_provider* (a :class:`~openai_runs.auth.TokenAuth`) for
        Microsoft Entra ID tokens. Unset values come from
        ``AZURE_OPENAI_ENDPOINT``, ``OPENAI_API_VERSION`` and
        ``AZURE_OPENAI_API_KEY``.

        Args:
            endpoint: The resource, e.g. ``https://NAME.openai.azure.com``.
            api_version: The ``api-version`` query parameter.
            api_key: The resource key.
            token_provider: Entra ID authentication instead of a key.
            **options: Any other :class:`RunsClient` argument.

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

    @property
    def base_url(self) -> str:
        """The API root that every path is appended to."""
        return self._transport.base_url

    def __repr__(self) -> str:
        return f"<RunsClient base_url={self.base_url!r}>"

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

    async def request(
        self,
        method: str,
        path: tuple[str, ...],
        cls: type[T],
        *,
        params: Iterable[tuple[str, str]] = (),
        body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Response[T]:
        """Send a request, retry it as the policy says, and parse the answer.

        The one path every call takes; public for calls this package does not
        wrap yet.

        Args:
            method: The HTTP method.
            path: Path segments after the base URL, e.g. ``("threads", tid)``.
            cls: The model to structure the JSON body into.
            params: Query parameters.
            body: The JSON body.
            timeout: Seconds for one attempt; the client's default if *None*.
            max_retries: Retries for this call; the client's default if *None*.

        Returns:
            The parsed model with the HTTP answer.

        Raises:
            APIStatusError: An error status, after any retries.
            APIDecodeError: A body that is not the model's JSON.
            APIConnectionError: No answer, after any retries.
        """
        data = None if body is None else json.dumps(body).encode()
        query = list(params)

        async def attempt() -> Response[T]:
            status, headers, raw = await self._transport.request(
                method, path, params=query, body=data, timeout=timeout
            )
            if status >= 300:
                error = error_from_response(status, headers, raw)
                if status == 404 and self._hosted_openai and not self._answered:
                    error.args = (error.args[0] + _RETIRED_HINT,)
                raise error
            self._answered = True
            return Response(_parse(raw, cls, status, headers), status, headers)

        control = self._retrying
        if max_retries is not None and max_retries != self.max_retries:
            control = retrying(self.retry_policy, max_retries)
        return await control(attempt)


def _parse(raw: bytes, cls: type[T], status: int, headers: Mapping[str, str]) -> T:
    """Decode and structure a body, or raise :class:`APIDecodeError`."""
    try:
        return converter.structure(json.loads(raw), cls)
    except ValueError as exc:
        problem = f"the body is not JSON ({exc})"
    except (cattrs.BaseValidationError, TypeError, AttributeError, KeyError) as exc:
        detail = (
            "; ".join(cattrs.transform_error(exc)[:5])
            if isinstance(exc, cattrs.ClassValidationError)
            else str(exc)
        )
        problem = f"the body is not a valid {_name(cls)}: {detail}"
    excerpt = raw[:EXCERPT_LIMIT].decode("utf-8", "replace")
    raise APIDecodeError(problem, status_code=status, headers=headers, excerpt=excerpt)


def _name(cls: Any) -> str:
    return getattr(cls, "__name__", str(cls))


class Runs:
    """The Runs calls: ``client.runs``.

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
        """Like :meth:`retrieve`, with the HTTP answer (headers, request id)."""
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

        The run usually answers ``cancelling`` and becomes ``cancelled`` a
        little later; watch it to learn how it ended. Cancelling a run that
        has already ended is a :class:`~openai_runs.exceptions.BadRequestError`.

        Args:
            thread_id: The thread that was run.
            run_id: The run to cancel.
            timeout: Seconds for one attempt, instead of the client's.
            max_retries: Retries for this call, instead of the client's.

        Returns:
            The run, typically ``cancelling``.

        Raises:
            InvalidRequestError: An id is empty or unsafe (nothing is sent).
            BadRequestError: The run has already ended.
        """
        path = (*_run_path(thread_id, run_id), "cancel")
        response = await self._client.request(
            "POST", path, Run, timeout=timeout, max_retries=max_retries
        )
        return response.parsed


class RunSteps:
    """The run step calls: ``client.runs.steps``."""

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

        ``await`` the result for one page, or ``async for`` over it for every
        step, page after page.

        Args:
            thread_id: The thread that was run.
            run_id: The run whose steps to list.
            limit: Steps per page, 1 to 100 (the API's default is 20).
            order: ``asc`` or ``desc`` by creation time (the API's default).
            after: List the steps after this step id.
            before: List the steps before this step id; iteration then goes
                on backwards.
            include: Extra fields, such as
                ``step_details.tool_calls[*].file_search.results[*].content``.
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
            include: Extra fields, as for :meth:`list`.
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
