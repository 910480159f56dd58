"""What a run will do, and which faults requests meet: the emulator's inputs.

These are plain frozen values. The control channel accepts them as JSON with
the same field names, structured by `converter`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import attrs
import cattrs

RunStatus = Literal[
    "queued",
    "in_progress",
    "requires_action",
    "cancelling",
    "cancelled",
    "failed",
    "completed",
    "incomplete",
    "expired",
]
TERMINAL: frozenset[str] = frozenset(
    {"cancelled", "failed", "completed", "incomplete", "expired"}
)
DEFAULT_REPLY = "Hello! I am the emulator's assistant, and this is my reply."
"""What a run says when its script sets no `reply` (streamed or listed alike)."""


@attrs.frozen
class ScriptedCall:
    """A function call that a scripted run asks the caller to perform.

    The emulator turns it into the tool call the API sends
    ([ToolCall][openai_runs.models.ToolCall] on the client's side).

    Attributes:
        name: The function's name.
        arguments: The arguments, as the JSON string the API sends.
    """

    name: str
    arguments: str = "{}"


def _check_seconds(
    _: object, attribute: attrs.Attribute[Any], value: float | None
) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _calls(calls: Iterable[ScriptedCall]) -> tuple[ScriptedCall, ...]:
    return tuple(calls)


@attrs.frozen
class Phase:
    """One status of a run and how long the run stays in it.

    Attributes:
        status: The run's status during the phase.
        seconds: How long the phase lasts; `None` means until something
            else happens: tool outputs, a cancel, or expiry. Ignored for a
            terminal status, and for `requires_action`, which always waits
            for tool outputs.
        tool_calls: For `requires_action`: the calls to ask for. Empty means
            one call per function tool of the run (or one call to `lookup`
            when the run has none).
    """

    status: RunStatus
    seconds: float | None = attrs.field(default=None, validator=_check_seconds)
    tool_calls: tuple[ScriptedCall, ...] = attrs.field(default=(), converter=_calls)


def _phases(phases: Iterable[Phase]) -> tuple[Phase, ...]:
    return tuple(phases)


def _check_phases(_: object, __: object, phases: tuple[Phase, ...]) -> None:
    if not phases:
        raise ValueError("a script needs at least one phase")
    for phase in phases[:-1]:
        if phase.status in TERMINAL:
            raise ValueError(f"only the last phase may be terminal: {phase.status!r}")
    last = phases[-1]
    if last.status == "requires_action" or (
        last.status not in TERMINAL and last.seconds is not None
    ):
        raise ValueError("the last phase must be terminal or last forever")


@attrs.frozen
class RunScript:
    """The path a run takes: its phases and how it ends.

    The run enters the first phase when it is created and moves through the
    phases as the emulator's clock passes their `seconds`. Steps appear
    during `in_progress` phases: a tool-call step per code interpreter or
    file search tool of the run, a function-call step on `requires_action`,
    and a message-creation step before the run ends.

    Attributes:
        phases: The phases in order; only the last may be terminal.
        error_code: `last_error.code` when the run fails.
        error_message: `last_error.message` when the run fails.
        incomplete_reason: `incomplete_details.reason` when the run ends
            `incomplete`.
        prompt_tokens: Prompt tokens reported in `usage` at the end.
        completion_tokens: Completion tokens reported in `usage` at the end.
        cancel_delay: Seconds between a cancel request and `cancelled`;
            `None` uses the emulator's setting.
        poll_after_ms: An `openai-poll-after-ms` hint sent with every
            response about this run; `None` uses the emulator's setting.
        reply: The text of the assistant's message that the run adds to its
            thread when it ends `completed` (or `incomplete`, cut short).
    """

    phases: tuple[Phase, ...] = attrs.field(converter=_phases, validator=_check_phases)
    error_code: Literal["server_error", "rate_limit_exceeded", "invalid_prompt"] = (
        attrs.field(default="server_error", kw_only=True)
    )
    error_message: str = attrs.field(default="Something went wrong.", kw_only=True)
    incomplete_reason: Literal["max_completion_tokens", "max_prompt_tokens"] = (
        attrs.field(default="max_completion_tokens", kw_only=True)
    )
    prompt_tokens: int = attrs.field(default=120, kw_only=True)
    completion_tokens: int = attrs.field(default=40, kw_only=True)
    cancel_delay: float | None = attrs.field(
        default=None, kw_only=True, validator=_check_seconds
    )
    poll_after_ms: int | None = attrs.field(default=None, kw_only=True)
    reply: str = attrs.field(default=DEFAULT_REPLY, kw_only=True)

    @classmethod
    def completed(cls, after: float = 1.0, *, reply: str = DEFAULT_REPLY) -> RunScript:
        """Queued, then in progress, then `completed` *after* seconds.

        The run adds an assistant message saying *reply* to its thread.
        """
        return cls(_working(after, "completed"), reply=reply)

    @classmethod
    def failed(
        cls,
        after: float = 1.0,
        *,
        code: Literal["server_error", "rate_limit_exceeded", "invalid_prompt"] = (
            "server_error"
        ),
        message: str = "Something went wrong.",
    ) -> RunScript:
        """Queued, then in progress, then `failed` with this `last_error`."""
        return cls(_working(after, "failed"), error_code=code, error_message=message)

    @classmethod
    def incomplete(
        cls,
        after: float = 1.0,
        *,
        reason: Literal["max_completion_tokens", "max_prompt_tokens"] = (
            "max_completion_tokens"
        ),
    ) -> RunScript:
        """Queued, then in progress, then `incomplete` for *reason*."""
        return cls(_working(after, "incomplete"), incomplete_reason=reason)

    @classmethod
    def requires_action(
        cls,
        *tool_calls: ScriptedCall,
        after: float = 0.5,
        then: float = 0.5,
        reply: str = DEFAULT_REPLY,
    ) -> RunScript:
        """Ask for tool outputs after *after* s; complete *then* s after they come.

        Without outputs the run stays in `requires_action` until it expires.
        Once completed, the run adds an assistant message saying *reply*.
        """
        return cls(
            (
                Phase("queued", 0.0),
                Phase("in_progress", after),
                Phase("requires_action", tool_calls=tool_calls),
                Phase("queued", 0.0),
                Phase("in_progress", then),
                Phase("completed"),
            ),
            reply=reply,
        )

    @classmethod
    def endless(cls) -> RunScript:
        """In progress until cancelled or expired."""
        return cls((Phase("queued", 0.0), Phase("in_progress")))


def _working(after: float, end: RunStatus) -> tuple[Phase, ...]:
    return (Phase("queued", 0.0), Phase("in_progress", after), Phase(end))


def _check_probability(_: object, __: object, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"probability must be within 0..1, got {value!r}")


@attrs.frozen(kw_only=True)
class Fault:
    """Something to go wrong with matching API requests.

    A fault matches every API request (not control-channel ones), or only
    those naming *run_id* in their path. Faults are tried in the order they
    were added; the first that matches and wins its *probability* draw
    applies, and uses up one of its *times*.

    Attributes:
        run_id: Only requests about this run; `None` for all.
        times: How many requests to affect before the fault goes away;
            `None` for no limit.
        probability: The chance that a matching request is affected, drawn
            from the emulator's seeded random generator.
        delay: Seconds to wait before answering (real time, not the
            emulator's clock).
        status: Answer with this error status instead (429, 500, 502, 503,
            ...), with the API's error body.
        retry_after: Seconds to send in `Retry-After` and `retry-after-ms`
            with the error status.
        disconnect: Close the connection without answering.
        body: Answer normally, but with a `"malformed"` body (not JSON) or a
            `"truncated"` one (the JSON cut in half).
        type: With *status*: the error body's `type`; `None` for the one the
            API uses with that status (`invalid_request_error` for 4xx,
            `requests` for 429, `server_error` for 5xx).
        code: With *status*: the error body's `code`; `None` for the API's
            usual one (`rate_limit_exceeded` for 429, `invalid_api_key` for
            401, none otherwise). Give `""` for a null code.
        message: With *status*: the error body's `message`; `None` for the
            API's usual text for that status.
        headers: Headers to add to the answer, error or not (such as
            `x-should-retry: false`).
    """

    run_id: str | None = None
    times: int | None = None
    probability: float = attrs.field(default=1.0, validator=_check_probability)
    delay: float = attrs.field(default=0.0, validator=_check_seconds)
    status: int | None = None
    retry_after: float | None = None
    disconnect: bool = False
    body: Literal["malformed", "truncated"] | None = None
    type: str | None = None
    code: str | None = None
    message: str | None = None
    headers: dict[str, str] = attrs.field(factory=dict, hash=False)

    @classmethod
    def preset(cls, name: FaultPreset, **changes: Any) -> Fault:
        """Return the fault that imitates a real failure of the API.

        Args:
            name: One of `rate_limit_exceeded` (429, retried),
                `tokens_rate_limit_exceeded` (429 on tokens, retried),
                `insufficient_quota` (429 that must not be retried: a
                billing problem), `invalid_api_key` (401), `permission_denied`
                (403), `server_error` (500), `bad_gateway` (502),
                `overloaded` (503) and `timeout` (504).
            **changes: Fields to set on top of the preset, such as
                `times=1` or `run_id=...`.

        Raises:
            KeyError: For an unknown *name*.
        """
        return attrs.evolve(FAULT_PRESETS[name], **changes)

    def error(self) -> tuple[str, str, str | None]:
        """Return the error body's `(message, type, code)` for this fault."""
        status = self.status or 500
        message, kind, code = _FAULT_ERRORS.get(status) or (
            "The emulator injected this error.",
            "invalid_request_error" if status < 500 else "server_error",
            None,
        )
        if self.code is not None:
            code = self.code or None
        return (self.message or message, self.type or kind, code)


FaultPreset = Literal[
    "rate_limit_exceeded",
    "tokens_rate_limit_exceeded",
    "insufficient_quota",
    "invalid_api_key",
    "permission_denied",
    "server_error",
    "bad_gateway",
    "overloaded",
    "timeout",
]

# The live API's error bodies, by status, for faults that choose none.
_FAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    401: (
        "Incorrect API key provided: sk-****. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    429: (
        "Rate limit reached for requests. Please try again in 1s. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "server_error", None),
    503: (
        "The engine is currently overloaded, please try again later.",
        "server_error",
        None,
    ),
    504: ("Gateway timeout.", "server_error", None),
}

FAULT_PRESETS: dict[str, Fault] = {
    "rate_limit_exceeded": Fault(status=429, retry_after=1.0),
    "tokens_rate_limit_exceeded": Fault(
        status=429,
        retry_after=1.0,
        type="tokens",
        message="Rate limit reached for gpt-4o on tokens per min (TPM): Limit "
        "30000, Used 30000, Requested 1200. Please try again in 2.4s. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
    ),
    "insufficient_quota": Fault(
        status=429,
        type="insufficient_quota",
        code="insufficient_quota",
        message="You exceeded your current quota, please check your plan and "
        "billing details. For more information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
    ),
    "invalid_api_key": Fault(status=401),
    "permission_denied": Fault(
        status=403,
        message="You are not allowed to access this resource with this key.",
    ),
    "server_error": Fault(status=500),
    "bad_gateway": Fault(status=502),
    "overloaded": Fault(status=503),
    "timeout": Fault(status=504),
}


converter = cattrs.Converter(forbid_extra_keys=True)
