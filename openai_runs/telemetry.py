"""OpenTelemetry traces and metrics for every request, watch, stream and tool call.

Install the extra (`pip install "openai-runs[otel]"`, which brings only
`opentelemetry-api`) and call [instrument][openai_runs.telemetry.instrument]
once at start-up, after configuring your OpenTelemetry SDK:

```python
from openai_runs import telemetry

telemetry.instrument()  # the global tracer and meter providers
```

What is recorded:

- a `CLIENT` span per HTTP attempt, named `{method} {url.template}` (such
  as `GET /v1/threads/{thread_id}/runs/{run_id}`), with the HTTP semantic
  conventions' attributes and the API's request id;
- a span per watch (`watch_run`: a [RunWatcher][openai_runs.RunWatcher],
  `runs.poll`, each run of `runs.watch_many`) and per stream (`stream_run`),
  with the GenAI conventions' attributes, an event at each change of status,
  and the requests it sends as children;
- an `execute_tool {name}` span per tool call a tool handler serves, a child
  of its watch;
- the metrics listed in [instrument][openai_runs.telemetry.instrument].

Without OpenTelemetry installed, `import openai_runs` works as before and
only this module fails to import; while not instrumented the SDK pays one
comparison per request.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import urlencode

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - tested in a child process
    raise ImportError(
        "openai_runs.telemetry needs OpenTelemetry: pip install 'openai-runs[otel]'"
    ) from exc

from yarl import URL

from . import __version__, _observe
from ._http import _segment
from ._tools import _invoke
from .models import ToolCall

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

    from ._http import Transport
    from ._observe import RequestTrace, WatchKind, WatchTrace
    from ._tools import ToolHandler
    from ._watch_core import WatchMachine

__all__ = ["instrument", "uninstrument"]

_NAME: Final = "openai_runs"
_SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.37.0"

REQUEST_ID: Final = "openai_runs.request_id"
"""The API's request id (`x-request-id`, or Azure's `apim-request-id` or
`x-ms-request-id`)."""
RUN_STATUS: Final = "openai_runs.run.status"
WATCH_KIND: Final = "openai_runs.watch.kind"
WATCH_POLLS: Final = "openai_runs.watch.polls"
WATCH_RETRIES: Final = "openai_runs.watch.retries"
STATUS_EVENT: Final = "openai_runs.run.status_change"

# The HTTP conventions' buckets for request durations, in seconds.
_DURATION_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
)  # fmt: skip
# Watches last seconds to many minutes.
_WATCH_BUCKETS: Final = (
    0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
)  # fmt: skip
# The GenAI conventions' buckets for token counts.
_TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
    16777216, 67108864,
)  # fmt: skip

# Path words of the API; any other segment is an id, named by the word
# before it (`threads/{thread_id}`).
_IDS: Final = {
    "threads": "{thread_id}",
    "runs": "{run_id}",
    "steps": "{step_id}",
    "messages": "{message_id}",
    "assistants": "{assistant_id}",
    "files": "{file_id}",
}
_WORDS: Final = frozenset({*_IDS, "submit_tool_outputs", "cancel"})
# Query parameters whose values are credentials (the HTTP conventions
# redact AWSAccessKeyId, Signature, sig and X-Goog-Signature; Azure's
# gateways take api-key and SAS `sig`).
_SECRET_WORDS: Final = ("key", "token", "sig", "secret", "password", "auth")
_REDACTED: Final = "REDACTED"


def instrument(
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    *,
    capture_content: bool = False,
) -> None:
    """Trace and measure every request, watch, stream and tool call from now on.

    Calling it again replaces the earlier providers and options. Every
    client is covered, those made before the call too.

    Spans (tracer `openai_runs`):

    - `{method} {url.template}` (`CLIENT`), one per HTTP attempt:
      `http.request.method`, `server.address`, `server.port`, `url.full`
      (credentials in it redacted), `url.template`,
      `http.response.status_code`, `error.type` (the status code, or the
      exception's class), `http.request.resend_count` on a retry (by the
      client, or by a watch after a fault), and `openai_runs.request_id`.
    - `watch_run` / `stream_run` (`INTERNAL`), one per watch or stream:
      `gen_ai.operation.name` (`invoke_agent`), `gen_ai.provider.name` and
      `gen_ai.system`, `gen_ai.conversation.id` (the thread),
      `gen_ai.response.id` (the run), `gen_ai.agent.id` (the assistant),
      `gen_ai.request.model` and `gen_ai.response.model`,
      `gen_ai.usage.input_tokens` and `gen_ai.usage.output_tokens` (when the
      run reports its usage), `openai_runs.run.status` (the last status
      seen), `openai_runs.watch.polls`, `openai_runs.watch.retries`,
      `openai_runs.watch.kind` (`watch`, `watch_many` or `stream`), and
      `error.type` when the watch fails; an event
      `openai_runs.run.status_change` at each status seen.
    - `execute_tool {name}` (`INTERNAL`), one per tool call served:
      `gen_ai.operation.name` (`execute_tool`), `gen_ai.tool.name`,
      `gen_ai.tool.call.id`, `gen_ai.tool.type`, and with *capture_content*
      `gen_ai.tool.call.arguments` and `gen_ai.tool.call.result`.

    Metrics (meter `openai_runs`):

    - `http.client.request.duration` (histogram, s), by method, status code,
      server, URL template and error type;
    - `openai_runs.client.requests` (counter), the same attributes;
    - `openai_runs.client.rate_limited` (counter), 429 answers;
    - `openai_runs.client.retries` (counter), attempts that resend a request;
    - `openai_runs.watch.duration` (histogram, s), by watch kind, final
      status and error type;
    - `openai_runs.watch.active` (up-down counter), watches in flight;
    - `gen_ai.client.token.usage` (histogram, tokens), by
      `gen_ai.token.type` (`input`, `output`), operation, provider and model.

    Args:
        tracer_provider: Where spans go; the global provider if *None*.
        meter_provider: Where measurements go; the global provider if *None*.
        capture_content: Put tool call arguments and results on the
            `execute_tool` spans. Off by default: they may hold personal
            data.
    """
    _observe.install(
        "opentelemetry", _Telemetry(tracer_provider, meter_provider, capture_content)
    )


def uninstrument() -> None:
    """Stop recording new requests and watches.

    A watch already under way still ends its span (without spans for the
    requests it sends from now on).
    """
    _observe.uninstall("opentelemetry")


class _Telemetry:
    """The installed observer: the tracer, the instruments, the options."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        capture_content: bool,
    ) -> None:
        self.capture_content = capture_content
        self.tracer = trace.get_tracer(
            _NAME, __version__, tracer_provider, schema_url=_SCHEMA_URL
        )
        meter = metrics.get_meter(
            _NAME, __version__, meter_provider, schema_url=_SCHEMA_URL
        )
        self.duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.requests = meter.create_counter(
            "openai_runs.client.requests",
            unit="{request}",
            description="HTTP requests sent, each attempt counted.",
        )
        self.rate_limited = meter.create_counter(
            "openai_runs.client.rate_limited",
            unit="{response}",
            description="Answers with status 429.",
        )
        self.retries = meter.create_counter(
            "openai_runs.client.retries",
            unit="{request}",
            description="Attempts that resend a request after a failure.",
        )
        self.watch_duration = meter.create_histogram(
            "openai_runs.watch.duration",
            unit="s",
            description="Duration of watches and streams, by final status.",
            explicit_bucket_boundaries_advisory=_WATCH_BUCKETS,
        )
        self.watches = meter.create_up_down_counter(
            "openai_runs.watch.active",
            unit="{run}",
            description="Runs being watched or streamed.",
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Tokens used by the runs watched.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.servers: dict[str, _Server] = {}

    def server(self, base_url: str) -> _Server:
        found = self.servers.get(base_url)
        if found is None:
            found = self.servers[base_url] = _Server.of(base_url)
        return found

    def request(
        self,
        transport: Transport,
        method: str,
        path: Sequence[str],
        query: Sequence[tuple[str, str]],
        resend: int,
    ) -> RequestTrace:
        return _Request(self, transport, method, path, query, resend=resend)

    def watch(
        self,
        kind: WatchKind,
        base_url: str | None,
        thread_id: str | None,
        run_id: str | None,
    ) -> WatchTrace:
        return _Watch(self, kind, base_url, thread_id, run_id)


class _Server:
    """What every request to one base URL shares: host, port, path, provider."""

    __slots__ = ("address", "base", "port", "prefix", "provider")

    def __init__(
        self, address: str, port: int | None, base: str, prefix: str, provider: str
    ) -> None:
        self.address = address
        self.port = port
        self.base = base
        self.prefix = prefix
        self.provider = provider

    @classmethod
    def of(cls, base_url: str) -> _Server:
        url = URL(base_url)
        if url.user is not None or url.password is not None:
            url = url.with_user(_REDACTED).with_password(_REDACTED)
        host = url.host or ""
        provider = "azure.ai.openai" if host.endswith(".azure.com") else "openai"
        prefix = url.path.rstrip("/")
        return cls(
            host, url.port, str(url.with_query(None)).rstrip("/"), prefix, provider
        )


def _template(path: Sequence[str]) -> str:
    parts = []
    before = ""
    for segment in path:
        if segment in _WORDS:
            parts.append(segment)
        else:
            parts.append(_IDS.get(before, "{id}"))
        before = segment
    return "/" + "/".join(parts)


def _url(
    server: _Server,
    transport: Transport,
    path: Sequence[str],
    query: Sequence[tuple[str, str]],
) -> str:
    url = server.base + "/" + "/".join([_segment(p) for p in path])
    pairs = [*transport.query, *query]
    if pairs:
        url += "?" + urlencode(
            [
                (k, _REDACTED if any(w in k.lower() for w in _SECRET_WORDS) else v)
                for k, v in pairs
            ]
        )
    return transport.scrub_text(url)


def _error_type(exc: BaseException) -> str:
    """The error's class as the conventions name it: qualified, low cardinality."""
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    kind = type(exc)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


class _Request:
    """One HTTP attempt: its span and what its metrics need."""

    __slots__ = ("attributes", "span", "started", "telemetry")

    def __init__(
        self,
        telemetry: _Telemetry,
        transport: Transport,
        method: str,
        path: Sequence[str],
        query: Sequence[tuple[str, str]],
        *,
        resend: int,
    ) -> None:
        server = telemetry.server(transport.base_url)
        template = server.prefix + _template(path)
        self.telemetry = telemetry
        self.attributes: dict[str, Any] = {
            "http.request.method": method,
            "server.address": server.address,
            "url.template": template,
        }
        if server.port is not None:
            self.attributes["server.port"] = server.port
        span_attributes = {
            **self.attributes,
            "url.full": _url(server, transport, path, query),
        }
        if resend:
            span_attributes["http.request.resend_count"] = resend
            telemetry.retries.add(1, self.attributes)
        self.span = telemetry.tracer.start_span(
            f"{method} {template}", kind=SpanKind.CLIENT, attributes=span_attributes
        )
        self.started = time.perf_counter()

    def answered(self, status: int, headers: Mapping[str, str]) -> None:
        elapsed = time.perf_counter() - self.started
        span, attributes = self.span, self.attributes
        attributes["http.response.status_code"] = status
        span.set_attribute("http.response.status_code", status)
        request_id = _observe.request_id_of(headers)
        if request_id:
            span.set_attribute(REQUEST_ID, request_id)
        if status >= 400:
            attributes["error.type"] = str(status)
            span.set_attribute("error.type", str(status))
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        self._measure(elapsed, status)

    def failed(self, exc: BaseException) -> None:
        elapsed = time.perf_counter() - self.started
        error = _error_type(exc)
        self.attributes["error.type"] = error
        self.span.set_attribute("error.type", error)
        self.span.set_status(Status(StatusCode.ERROR, _describe(exc)))
        self.span.end()
        self._measure(elapsed, None)

    def _measure(self, elapsed: float, status: int | None) -> None:
        telemetry, attributes = self.telemetry, self.attributes
        telemetry.duration.record(elapsed, attributes)
        telemetry.requests.add(1, attributes)
        if status == 429:
            telemetry.rate_limited.add(1, attributes)


class _Watch:
    """One watch or stream: its span, from the first step to the end."""

    __slots__ = (
        "closed",
        "error",
        "finished",
        "kind",
        "machine",
        "model",
        "provider",
        "span",
        "started",
        "telemetry",
    )

    def __init__(
        self,
        telemetry: _Telemetry,
        kind: WatchKind,
        base_url: str | None,
        thread_id: str | None,
        run_id: str | None,
    ) -> None:
        self.telemetry = telemetry
        self.kind = kind
        self.provider = (
            "openai" if base_url is None else telemetry.server(base_url).provider
        )
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": self.provider,
            "gen_ai.system": self.provider,
            WATCH_KIND: kind,
        }
        if thread_id is not None:
            attributes["gen_ai.conversation.id"] = thread_id
        if run_id is not None:
            attributes["gen_ai.response.id"] = run_id
        name = "stream_run" if kind == "stream" else "watch_run"
        self.span: Span = telemetry.tracer.start_span(
            name, kind=SpanKind.INTERNAL, attributes=attributes
        )
        self.started = time.perf_counter()
        self.model: str | None = None
        self.machine: WatchMachine | None = None
        self.error: Exception | None = None
        self.finished = False
        self.closed = False
        telemetry.watches.add(1, {WATCH_KIND: kind})

    def enter(self, resend: int) -> object:
        return (
            otel_context.attach(trace.set_span_in_context(self.span)),
            _observe.resends.set(resend),
        )

    def leave(self, token: object) -> None:
        context_token, resends_token = cast("tuple[Token[Context], Token[int]]", token)
        _observe.resends.reset(resends_token)
        otel_context.detach(context_token)

    def saw(self, machine: WatchMachine, changed: bool) -> None:
        run = machine.run
        assert run is not None
        span = self.span
        if self.machine is None:
            self.machine = machine
            span.set_attributes(
                {
                    "gen_ai.conversation.id": run.thread_id,
                    "gen_ai.response.id": run.id,
                    "gen_ai.agent.id": run.assistant_id,
                }
            )
        if run.model and run.model != self.model:
            self.model = run.model
            span.set_attribute("gen_ai.request.model", run.model)
            span.set_attribute("gen_ai.response.model", run.model)
        if changed:
            span.add_event(STATUS_EVENT, {RUN_STATUS: str(run.status)})

    def tools(self, handler: ToolHandler) -> ToolHandler:
        tracer = self.telemetry.tracer
        capture = self.telemetry.capture_content
        parent = trace.set_span_in_context(self.span)

        async def traced(call: ToolCall) -> Any:
            name = call.function.name
            attributes: dict[str, Any] = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
                "gen_ai.tool.call.id": call.id,
                "gen_ai.tool.type": "function",
            }
            if capture:
                attributes["gen_ai.tool.call.arguments"] = call.function.arguments
            with tracer.start_as_current_span(
                f"execute_tool {name}",
                context=parent,
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                try:
                    output = await _invoke(handler, call)
                except BaseException as exc:
                    span.set_attribute("error.type", _error_type(exc))
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                    raise
                if not isinstance(output, str):
                    span.set_attribute("error.type", "invalid_output")
                    span.set_status(Status(StatusCode.ERROR, "not a string"))
                elif capture:
                    span.set_attribute("gen_ai.tool.call.result", output)
                return output

        return traced

    def finish(self, machine: WatchMachine, error: Exception | None) -> None:
        self.machine = machine
        # A hook that fails after the last status turns a success into an error.
        if not self.finished or error is not None:
            self.error = error
        self.finished = True

    def close(self, error: BaseException | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        telemetry, span = self.telemetry, self.span
        elapsed = time.perf_counter() - self.started
        if self.finished:
            error = self.error
        else:
            # What is raising in the driver's `finally` ended the watch (an
            # unfinished watch ends only by an exception). Asked only here:
            # after a normal end, sys.exception() may be a caller's own.
            error = error or sys.exception()
            if not isinstance(error, Exception):
                error = None  # cancelled, or an iteration left early
        machine = self.machine
        run = None if machine is None else machine.run
        attributes: dict[str, Any] = {WATCH_KIND: self.kind}
        if run is not None:
            attributes[RUN_STATUS] = str(run.status)
        if error is not None:
            attributes["error.type"] = _error_type(error)
            span.set_status(Status(StatusCode.ERROR, _describe(error)))
        elif not self.finished:
            # Let go before its end: cancelled, or an iteration left early.
            attributes["error.type"] = "cancelled"
            span.set_status(Status(StatusCode.ERROR, "the watch was stopped"))
        span.set_attributes(attributes)
        if machine is not None:
            span.set_attribute(WATCH_POLLS, machine.polls)
            span.set_attribute(WATCH_RETRIES, machine.retries)
        if run is not None and run.usage is not None:
            usage = run.usage
            span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
            token_attributes: dict[str, Any] = {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.provider.name": self.provider,
            }
            if run.model:
                token_attributes["gen_ai.request.model"] = run.model
                token_attributes["gen_ai.response.model"] = run.model
            telemetry.tokens.record(
                usage.prompt_tokens, {**token_attributes, "gen_ai.token.type": "input"}
            )
            telemetry.tokens.record(
                usage.completion_tokens,
                {**token_attributes, "gen_ai.token.type": "output"},
            )
        span.end()
        telemetry.watch_duration.record(elapsed, attributes)
        telemetry.watches.add(-1, {WATCH_KIND: self.kind})
