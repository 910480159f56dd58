"""Every error this package raises, rooted at `OpenAIRunsError`.

```text
OpenAIRunsError
├── InvalidRequestError (also ValueError)   bad input, caught before sending
├── ClientClosedError                       the client (or your session) is closed
├── EventLoopError                          the client is used in a second event loop
├── APIConnectionError                      no HTTP answer came back
│   ├── APITimeoutError                     ... in time
│   └── OutcomeUnknownError                 ... to a write that may have acted
├── APIResponseError                        an answer we could not use
│   ├── APIStatusError                      an HTTP error status
│   │   ├── BadRequestError                 400
│   │   │   └── ThreadLockedError           400: a run on the thread is active
│   │   ├── AuthenticationError             401
│   │   ├── PermissionDeniedError           403
│   │   ├── NotFoundError                   404
│   │   ├── ConflictError                   409
│   │   ├── UnprocessableEntityError        422
│   │   ├── RateLimitError                  429
│   │   │   └── InsufficientQuotaError      429 insufficient_quota
│   │   └── InternalServerError             5xx
│   └── APIDecodeError                      a body that is not what the API sends
│       ├── ResponseTooLargeError           ... longer than max_response_bytes
│       └── StreamDecodeError               an event stream that is not what it sends
├── WatchTimeoutError (also TimeoutError)   a watch outlived its deadline
├── ToolCallError                           a tool handler failed during a watch
└── StoreError                              a run store could not be read or written
```

The names follow openai-python's where they mean the same thing. No message,
attribute or repr here ever holds the API key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._json import loads

if TYPE_CHECKING:
    from .models import Run, ToolCall

__all__ = [
    "APIConnectionError",
    "APIDecodeError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "EventLoopError",
    "InsufficientQuotaError",
    "InternalServerError",
    "InvalidRequestError",
    "NotFoundError",
    "OpenAIRunsError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseTooLargeError",
    "StoreError",
    "StreamDecodeError",
    "ThreadLockedError",
    "ToolCallError",
    "UnprocessableEntityError",
    "WatchTimeoutError",
    "error_from_response",
]

EXCERPT_LIMIT = 500
"""How many characters of an unusable body an error keeps."""


class OpenAIRunsError(Exception):
    """The root of every error this package raises."""


class ClientClosedError(OpenAIRunsError):
    """The client, or the `session=` it was given, is closed.

    A client is closed by `aclose()` or at the end of its `async with`; make
    a new one.
    """


class EventLoopError(OpenAIRunsError):
    """The client's session belongs to another event loop.

    An aiohttp session is bound to the loop it was opened in: a client first
    used under one `asyncio.run()` cannot serve another. Make the client
    inside the coroutine that `asyncio.run` runs (`async with RunsClient()
    as client:`), one per loop.
    """


class InvalidRequestError(OpenAIRunsError, ValueError):
    """An argument was refused before any request was sent.

    Attributes:
        param: The name of the argument that was wrong.
    """

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


class APIConnectionError(OpenAIRunsError):
    """The request got no HTTP answer: refused, reset, or DNS failed.

    Attributes:
        request_sent: Whether the request may have reached the server: *False*
            only when it surely did not (the connection was never made, or a
            token could not be fetched), so the server cannot have acted on
            it; *True* when it broke or timed out after that, so a write may
            have taken effect.
    """

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError):
    """The request got no complete answer within its timeout."""


class OutcomeUnknownError(APIConnectionError):
    """A write was sent, the answer was lost, and nothing can tell if it took effect.

    Raised instead of sending the write again, which could do it twice:
    by [create_thread_and_run][openai_runs.Runs.create_thread_and_run]
    (there is no list of threads to look in) and by
    [create][openai_runs.Runs.create] with ``idempotency_key=False``. The
    ``__cause__`` is the connection error.

    Attributes:
        method: The HTTP method of the write.
        path: Its path, such as ``/threads/runs``.
        idempotency_key: The key sent in the run's metadata (under
            ``openai_runs_idempotency_key``), to recognise the run if it
            turns up; *None* if none was sent.
    """

    def __init__(
        self, message: str, *, method: str, path: str, idempotency_key: str | None
    ) -> None:
        super().__init__(message, request_sent=True)
        self.method = method
        self.path = path
        self.idempotency_key = idempotency_key


class APIResponseError(OpenAIRunsError):
    """The server answered, but not with what we asked for.

    Attributes:
        status_code: The HTTP status.
        request_id: The `x-request-id` header, for support tickets.
        headers: All response headers.
        body: The decoded JSON body, or *None* if it was not JSON.
        excerpt: The start of the raw body (at most 500 characters).
        retry_after: Seconds the server asked us to wait, when that was more
            than the retry policy would sleep; *None* otherwise.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        headers: Mapping[str, str],
        body: Any = None,
        excerpt: str = "",
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.request_id: str | None = headers.get("x-request-id")
        self.body = body
        self.excerpt = excerpt
        self.retry_after: float | None = None
        suffix = f" (request id {self.request_id})" if self.request_id else ""
        super().__init__(f"{message}{suffix}")
        self.message = message


class APIStatusError(APIResponseError):
    """The API answered with an error status.

    Attributes:
        type: The API error's `type`, e.g. `invalid_request_error`.
        code: The API error's `code`, e.g. `rate_limit_exceeded`.
        param: The parameter the API blamed, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        headers: Mapping[str, str],
        body: Any = None,
        excerpt: str = "",
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            headers=headers,
            body=body,
            excerpt=excerpt,
        )
        self.type = type
        self.code = code
        self.param = param


class BadRequestError(APIStatusError):
    """400: the API refused the request as malformed."""


class ThreadLockedError(BadRequestError):
    """400: a run on the thread is active, so it takes no new run or message.

    A thread has at most one active run (``queued``, ``in_progress``,
    ``requires_action``, ``cancelling``); until it ends, creating a run or
    adding a message is refused. Wait for the run
    ([wait_idle][openai_runs.Runs.wait_idle]) or cancel it
    (``wait_idle(thread_id, cancel=True)``), then try again.

    Attributes:
        thread_id: The locked thread, as the API named it.
        run_id: The active run that holds the lock.
    """

    def __init__(
        self, message: str, *, thread_id: str, run_id: str, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.thread_id = thread_id
        self.run_id = run_id


# The live API's words for the thread lock (createRun, createMessage).
_THREAD_LOCKED = (
    re.compile(r"Can't add messages to (?P<thread>\S+) while a run (?P<run>\S+?) is"),
    re.compile(r"Thread (?P<thread>\S+) already has an active run (?P<run>\S+?)\.?$"),
)


class AuthenticationError(APIStatusError):
    """401: the key or token is missing, wrong or expired."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""


class NotFoundError(APIStatusError):
    """404: no such thread, run or step, or no such endpoint."""


class ConflictError(APIStatusError):
    """409: the resource changed under the request; retried by default."""


class UnprocessableEntityError(APIStatusError):
    """422: the request was well-formed but could not be processed."""


class RateLimitError(APIStatusError):
    """429: too many requests; retried by default, honouring the server's hint."""


class InsufficientQuotaError(RateLimitError):
    """429 with code `insufficient_quota`: a billing problem, never retried."""


class InternalServerError(APIStatusError):
    """5xx: the server failed; retried by default."""


class APIDecodeError(APIResponseError):
    """The body was not JSON, or not the shape the API documents."""


class StreamDecodeError(APIDecodeError):
    """An event stream that is not what the API sends.

    It broke the server-sent events format or a size limit (a line or an
    event too long), or an event's data was not the JSON of its model.
    """


class ResponseTooLargeError(APIDecodeError):
    """The body was longer than the client's ``max_response_bytes``.

    Reading stopped at the limit (counted after any gzip or brotli is
    undone), so a hostile or broken server cannot fill the memory.

    Attributes:
        limit: The limit, in bytes.
    """

    def __init__(
        self, message: str, *, status_code: int, headers: Mapping[str, str], limit: int
    ) -> None:
        super().__init__(message, status_code=status_code, headers=headers)
        self.limit = limit


class WatchTimeoutError(OpenAIRunsError, TimeoutError):
    """A watch reached its deadline before the run ended.

    It is also a `TimeoutError`, so `except TimeoutError` catches it.

    Attributes:
        run: The last state of the run that the watch saw (after a timed
            cancel, the run's final state), or *None* if no poll succeeded.
        last_error: The last failure the watch retried, if any (also the
            `__cause__`): why a watch of an unreachable server saw no run.
        cancel_landed: With `cancel_on_timeout`: whether the server took the
            cancel (*None* when no cancel was asked for).
    """

    def __init__(
        self,
        message: str,
        run: Run | None,
        *,
        last_error: Exception | None = None,
        cancel_landed: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.run = run
        self.last_error = last_error
        self.cancel_landed = cancel_landed
        if last_error is not None:
            self.__cause__ = last_error


class ToolCallError(OpenAIRunsError):
    """A tool handler raised, so the watch could not answer the run's tool calls.

    The handler's own exception is the `__cause__`. Unless the watch was
    told otherwise (`WatchPolicy(cancel_on_tool_error=False)`), the run was
    cancelled, since it could only wait in `requires_action` until it
    expired; the cancel is retried within the policy's `cancel_grace`.

    Attributes:
        run: The run: `cancelling` (or how it ended) after the cancel, else
            `requires_action`.
        tool_call: The [ToolCall][openai_runs.models.ToolCall] that failed.
        cancel_landed: Whether the server took the cancel (*None* when no
            cancel was asked for).
    """

    def __init__(
        self,
        message: str,
        *,
        run: Run,
        tool_call: ToolCall,
        cancel_landed: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.run = run
        self.tool_call = tool_call
        self.cancel_landed = cancel_landed


class StoreError(OpenAIRunsError):
    """A run store (`openai_runs.store`, `openai_runs.redis`) failed.

    The file could not be opened or written (a bad path, a full disk, a
    database locked past its busy timeout), or Redis did not answer. The
    store's own error is the `__cause__`. `watch_many` and `resume_many`
    stop with it: what they had recorded stays in the store.
    """


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_from_response(
    status: int, headers: Mapping[str, str], body: bytes
) -> APIResponseError:
    """Map an HTTP error answer to the exception that describes it.

    Args:
        status: The HTTP status (400 or more).
        headers: The response headers.
        body: The raw response body.

    Returns:
        An [APIStatusError][openai_runs.exceptions.APIStatusError] subclass chosen by
        *status*, carrying the API error's `type`, `code`, `param` and `message`.
    """
    excerpt = excerpt_of(body)
    try:
        data: Any = loads(body)
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        error = {}
    code = _str_or_none(error.get("code"))
    message = _str_or_none(error.get("message")) or (
        f"HTTP {status}: {excerpt!r}" if excerpt else f"HTTP {status}"
    )
    if status == 429 and code == "insufficient_quota":
        cls: type[APIStatusError] = InsufficientQuotaError
    elif status >= 500:
        cls = InternalServerError
    else:
        cls = _BY_STATUS.get(status, APIStatusError)
    if status == 400:
        for pattern in _THREAD_LOCKED:
            if match := pattern.search(message):
                return ThreadLockedError(
                    message,
                    thread_id=match["thread"],
                    run_id=match["run"],
                    status_code=status,
                    headers=headers,
                    body=data,
                    excerpt=excerpt,
                    type=_str_or_none(error.get("type")),
                    code=code,
                    param=_str_or_none(error.get("param")),
                )
    return cls(
        message,
        status_code=status,
        headers=headers,
        body=data,
        excerpt=excerpt,
        type=_str_or_none(error.get("type")),
        code=code,
        param=_str_or_none(error.get("param")),
    )


def excerpt_of(body: bytes) -> str:
    """The start of *body* as text: at most `EXCERPT_LIMIT` characters."""
    # Four bytes per character at most: a 16 MiB body is not decoded whole.
    return body[: EXCERPT_LIMIT * 4].decode("utf-8", "replace")[:EXCERPT_LIMIT]


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
