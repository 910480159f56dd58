"""OpenTelemetry spans and metrics of requests, watches, streams and tool calls, against the emulator."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import attrs
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

from openai_runs import RetryPolicy, RunsClient, WatchPolicy, telemetry
from openai_runs import exceptions as exc
from openai_runs.models import ToolCall
from openai_runs.testing import Emulator, Fault, RunScript, ScriptedCall

FAST = WatchPolicy(initial=0.01, maximum=0.02, jitter=0.0, cancel_grace=1.0)
QUICK_RETRY = RetryPolicy(initial=0.01, maximum=0.02, jitter=0.0)
KEY = "sk-telemetry-test-key-0123456789"
RUN_GET = "GET /v1/threads/{thread_id}/runs/{run_id}"


@attrs.define
class Recorded:
    """What the SDK exported: finished spans and collected metrics."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        (span,) = self.named(name)
        return span

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for m in scope.metrics
            if m.name == metric
            for point in m.data.data_points
        ]


@pytest.fixture(name="recorded")
def _recorded() -> Iterator[Recorded]:
    """Instrument with in-memory providers for one test, then uninstrument."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    telemetry.instrument(provider, meters)
    try:
        yield Recorded(exporter, reader)
    finally:
        telemetry.uninstrument()
        meters.shutdown()
        provider.shutdown()


def against_emulator(
    body: Callable[[Emulator, RunsClient], Awaitable[Any]], **options: Any
) -> Any:
    """Run *body* with an emulator and a client of it; bounded in time."""

    async def main() -> Any:
        options.setdefault("api_key", KEY)
        async with (
            Emulator(**options) as emu,
            RunsClient(
                api_key=KEY, base_url=emu.url, retry_policy=QUICK_RETRY
            ) as client,
        ):
            return await asyncio.wait_for(body(emu, client), 15)

    return asyncio.run(main())


def child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    assert span.parent is not None, f"{span.name} has no parent"
    return (
        span.parent.span_id == parent.context.span_id
        and span.context.trace_id == parent.context.trace_id
    )


def test_a_completed_watch_is_one_span_with_its_requests_as_children(
    recorded: Recorded,
) -> None:
    """A watched run that completes: a watch_run span with GenAI attributes, status events, and a CLIENT span per poll under it."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        run = emu.create_run(
            script=attrs.evolve(RunScript.completed(after=0.3), prompt_tokens=500),
        )
        watcher = client.runs.watch(run["thread_id"], run["id"], policy=FAST)
        return run, await watcher, watcher.polls

    created, run, polls = against_emulator(body)
    watch = recorded.one("watch_run")
    attributes = watch.attributes or {}
    assert watch.kind is SpanKind.INTERNAL
    assert attributes["gen_ai.operation.name"] == "invoke_agent"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.conversation.id"] == created["thread_id"]
    assert attributes["gen_ai.response.id"] == created["id"]
    assert attributes["gen_ai.agent.id"] == run.assistant_id
    assert attributes["gen_ai.request.model"] == run.model
    assert attributes["gen_ai.response.model"] == run.model
    assert attributes["gen_ai.usage.input_tokens"] == run.usage.prompt_tokens == 500
    assert attributes["gen_ai.usage.output_tokens"] == run.usage.completion_tokens
    assert attributes["openai_runs.run.status"] == "completed"
    assert attributes["openai_runs.watch.polls"] == polls
    assert attributes["openai_runs.watch.kind"] == "watch"
    assert "error.type" not in attributes
    assert watch.status.status_code is StatusCode.UNSET
    statuses = [
        (e.attributes or {})["openai_runs.run.status"]
        for e in watch.events
        if e.name == "openai_runs.run.status_change"
    ]
    assert statuses[-1] == "completed"
    assert statuses == list(dict.fromkeys(statuses))  # one event per change
    assert len(statuses) >= 2

    gets = recorded.named(RUN_GET)
    assert len(gets) == polls
    for span in gets:
        assert span.kind is SpanKind.CLIENT
        assert child_of(span, watch)
        attrs_ = span.attributes or {}
        assert attrs_["http.request.method"] == "GET"
        assert attrs_["server.address"] == "127.0.0.1"
        assert isinstance(attrs_["server.port"], int)
        assert attrs_["http.response.status_code"] == 200
        assert attrs_["url.template"] == "/v1/threads/{thread_id}/runs/{run_id}"
        assert str(attrs_["url.full"]).endswith(
            f"/v1/threads/{created['thread_id']}/runs/{created['id']}"
        )
        assert str(attrs_["openai_runs.request_id"]).startswith("req_")
        assert "http.request.resend_count" not in attrs_
        assert "error.type" not in attrs_


def test_a_plain_call_is_a_client_span_under_the_callers_span(
    recorded: Recorded,
) -> None:
    """A call outside any watch is a CLIENT span whose parent is the caller's current span."""
    tracer = trace.get_tracer("test", tracer_provider=_provider_of(recorded))

    async def body(emu: Emulator, client: RunsClient) -> Any:
        run = emu.create_run(script=RunScript.completed(after=0.05))
        with tracer.start_as_current_span("caller"):
            await client.runs.retrieve(run["thread_id"], run["id"])

    against_emulator(body)
    caller = recorded.one("caller")
    assert child_of(recorded.one(RUN_GET), caller)


def _provider_of(recorded: Recorded) -> TracerProvider:
    """A provider exporting to the same in-memory exporter, for the test's own spans."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(recorded.exporter))
    return provider


@pytest.mark.parametrize("capture", [False, True])
def test_a_tool_call_is_an_execute_tool_span_under_the_watch(
    capture: bool,
) -> None:
    """Each tool call served is an execute_tool span under its watch; arguments and results only when opted in."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.instrument(provider, capture_content=capture)
    seen: list[str] = []

    def handler(call: ToolCall) -> str:
        seen.append(call.id)
        return "sunny"

    async def body(emu: Emulator, client: RunsClient) -> Any:
        run = emu.create_run(
            script=RunScript.requires_action(
                ScriptedCall("get_weather", '{"city": "Paris"}'),
                after=0.02,
                then=0.02,
            )
        )
        return await client.runs.poll(
            run["thread_id"], run["id"], policy=FAST, tool_handler=handler
        )

    try:
        run = against_emulator(body)
    finally:
        telemetry.uninstrument()
        provider.shutdown()
    spans = exporter.get_finished_spans()
    (watch,) = [s for s in spans if s.name == "watch_run"]
    (tool,) = [s for s in spans if s.name == "execute_tool get_weather"]
    (submit,) = [
        s for s in spans if s.name.endswith("/runs/{run_id}/submit_tool_outputs")
    ]
    assert run.status == "completed"
    assert child_of(tool, watch)
    assert child_of(submit, watch)
    attributes = tool.attributes or {}
    assert attributes["gen_ai.operation.name"] == "execute_tool"
    assert attributes["gen_ai.tool.name"] == "get_weather"
    assert attributes["gen_ai.tool.call.id"] == seen[0]
    if capture:
        assert attributes["gen_ai.tool.call.arguments"] == '{"city": "Paris"}'
        assert attributes["gen_ai.tool.call.result"] == "sunny"
    else:
        assert "gen_ai.tool.call.arguments" not in attributes
        assert "gen_ai.tool.call.result" not in attributes
    statuses = [
        (e.attributes or {}).get("openai_runs.run.status") for e in watch.events
    ]
    assert "requires_action" in statuses
    assert statuses[-1] == "completed"


def test_a_failing_tool_marks_its_span_and_the_watch(recorded: Recorded) -> None:
    """A tool handler that raises: its execute_tool span and the watch span carry error.type."""

    def handler(call: ToolCall) -> str:
        raise ValueError("no weather today")

    async def body(emu: Emulator, client: RunsClient) -> Any:
        run = emu.create_run(
            script=RunScript.requires_action(
                ScriptedCall("get_weather", "{}"), after=0.02, then=0.02
            )
        )
        with pytest.raises(exc.ToolCallError):
            await client.runs.poll(
                run["thread_id"], run["id"], policy=FAST, tool_handler=handler
            )

    against_emulator(body)
    tool = recorded.one("execute_tool get_weather")
    assert (tool.attributes or {})["error.type"] == "ValueError"
    assert tool.status.status_code is StatusCode.ERROR
    watch = recorded.one("watch_run")
    assert (watch.attributes or {})["error.type"] == (
        "openai_runs.exceptions.ToolCallError"
    )
    assert watch.status.status_code is StatusCode.ERROR


def test_a_404_is_an_error_span(recorded: Recorded) -> None:
    """A 404 answer: the request span has the status code as error.type; a watch that meets it fails with NotFoundError."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        thread = emu.create_thread()
        with pytest.raises(exc.NotFoundError):
            await client.runs.retrieve(thread, "run_missing")
        with pytest.raises(exc.NotFoundError):
            await client.runs.poll(thread, "run_missing", policy=FAST)

    against_emulator(body)
    gets = recorded.named(RUN_GET)
    assert len(gets) == 2
    for span in gets:
        attributes = span.attributes or {}
        assert attributes["http.response.status_code"] == 404
        assert attributes["error.type"] == "404"
        assert span.status.status_code is StatusCode.ERROR
    watch = recorded.one("watch_run")
    assert child_of(gets[1], watch)
    assert (watch.attributes or {})["error.type"] == (
        "openai_runs.exceptions.NotFoundError"
    )
    assert "openai_runs.run.status" not in (watch.attributes or {})
    durations = recorded.points("http.client.request.duration")
    assert {p.attributes["http.response.status_code"] for p in durations} == {404}


def test_a_429_retried_by_the_client_counts_a_resend(recorded: Recorded) -> None:
    """A 429 then a success: two spans, the second with http.request.resend_count 1; the 429 and retry counters count them."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        run = emu.create_run(script=RunScript.completed(after=0.05))
        emu.inject(Fault(status=429, retry_after=0.01, times=1))
        return await client.runs.retrieve(run["thread_id"], run["id"])

    against_emulator(body)
    first, second = sorted(recorded.named(RUN_GET), key=lambda s: s.start_time or 0)
    assert (first.attributes or {})["http.response.status_code"] == 429
    assert (first.attributes or {})["error.type"] == "429"
    assert "http.request.resend_count" not in (first.attributes or {})
    assert (second.attributes or {})["http.response.status_code"] == 200
    assert (second.attributes or {})["http.request.resend_count"] == 1
    (limited,) = recorded.points("openai_runs.client.rate_limited")
    assert limited.value == 1
    (retries,) = recorded.points("openai_runs.client.retries")
    assert retries.value == 1
    requests = {
        p.attributes["http.response.status_code"]: p.value
        for p in recorded.points("openai_runs.client.requests")
    }
    assert requests == {429: 1, 200: 1}


def test_a_429_retried_by_a_watch_counts_a_resend(recorded: Recorded) -> None:
    """In a watch, the poll after a 429 is a resend too, and both are children of the watch."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        run = emu.create_run(script=RunScript.completed(after=0.05))
        emu.inject(Fault(status=429, retry_after=0.01, times=1))
        return await client.runs.poll(run["thread_id"], run["id"], policy=FAST)

    against_emulator(body)
    watch = recorded.one("watch_run")
    gets = sorted(recorded.named(RUN_GET), key=lambda s: s.start_time or 0)
    assert all(child_of(span, watch) for span in gets)
    assert (gets[0].attributes or {})["http.response.status_code"] == 429
    assert (gets[1].attributes or {})["http.request.resend_count"] == 1
    assert (watch.attributes or {})["openai_runs.watch.retries"] == 1
    assert (watch.attributes or {})["openai_runs.run.status"] == "completed"


def test_a_request_timeout_and_a_watch_timeout_are_errors(recorded: Recorded) -> None:
    """A request that gets no answer in time, and a watch past its deadline: error.type names the timeout."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        run = emu.create_run(script=RunScript.endless())
        emu.inject(Fault(delay=1.0, times=1))
        with pytest.raises(exc.APITimeoutError):
            await client.runs.retrieve(
                run["thread_id"], run["id"], timeout=0.05, max_retries=0
            )
        with pytest.raises(exc.WatchTimeoutError):
            await client.runs.poll(
                run["thread_id"], run["id"], policy=FAST, timeout=1.5
            )

    against_emulator(body)
    gets = sorted(recorded.named(RUN_GET), key=lambda s: s.start_time or 0)
    timed_out = gets[0].attributes or {}
    assert timed_out["error.type"] == "openai_runs.exceptions.APITimeoutError"
    assert "http.response.status_code" not in timed_out
    assert gets[0].status.status_code is StatusCode.ERROR
    watch = recorded.one("watch_run")
    attributes = watch.attributes or {}
    assert attributes["error.type"] == "openai_runs.exceptions.WatchTimeoutError"
    assert attributes["openai_runs.run.status"] == "in_progress"
    assert watch.status.status_code is StatusCode.ERROR
    durations = recorded.points("openai_runs.watch.duration")
    (point,) = durations
    assert point.attributes["error.type"] == "openai_runs.exceptions.WatchTimeoutError"


def test_watch_many_gives_each_run_its_span_and_its_requests(
    recorded: Recorded,
) -> None:
    """watch_many: a watch_run span per run, each poll a child of its own run's span, though a scheduler sends them."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        runs = [
            emu.create_run(script=RunScript.completed(after=0.03 * (i + 1)))
            for i in range(3)
        ]
        refs = [(r["thread_id"], r["id"]) for r in runs]
        return [r async for r in client.runs.watch_many(refs, policy=FAST)]

    results = against_emulator(body)
    assert all(r.ok for r in results)
    watches = {
        (s.attributes or {})["gen_ai.response.id"]: s
        for s in recorded.named("watch_run")
    }
    assert set(watches) == {r.run_id for r in results}
    for run_id, watch in watches.items():
        assert (watch.attributes or {})["openai_runs.watch.kind"] == "watch_many"
        assert (watch.attributes or {})["openai_runs.run.status"] == "completed"
        mine = [
            s
            for s in recorded.named(RUN_GET)
            if str((s.attributes or {})["url.full"]).endswith(run_id)
        ]
        assert mine
        assert len(mine) == (watch.attributes or {})["openai_runs.watch.polls"]
        assert all(child_of(s, watch) for s in mine)


def test_a_stream_is_a_span_with_its_request_under_it(recorded: Recorded) -> None:
    """A RunStream: a stream_run span, its POST a CLIENT child, the run's ids and final status on it."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        thread_id = emu.create_thread()
        async with client.runs.stream(thread_id, assistant_id="asst_1") as stream:
            return await stream.final_run()

    run = against_emulator(body, default_script=RunScript.completed(0.05))
    stream = recorded.one("stream_run")
    attributes = stream.attributes or {}
    assert attributes["openai_runs.watch.kind"] == "stream"
    assert attributes["gen_ai.response.id"] == run.id
    assert attributes["gen_ai.conversation.id"] == run.thread_id
    assert attributes["openai_runs.run.status"] == "completed"
    assert "error.type" not in attributes
    post = recorded.one("POST /v1/threads/{thread_id}/runs")
    assert post.kind is SpanKind.CLIENT
    assert child_of(post, stream)
    assert (post.attributes or {})["http.response.status_code"] == 200


def test_metrics_count_watches_in_flight_durations_and_tokens(
    recorded: Recorded,
) -> None:
    """Watches in flight go back to 0; watch duration by final status; token usage by type."""
    in_flight: list[int] = []

    async def body(emu: Emulator, client: RunsClient) -> Any:
        run = emu.create_run(
            script=attrs.evolve(
                RunScript.completed(after=0.05), prompt_tokens=300, completion_tokens=30
            )
        )

        def on_status(_: Any) -> None:
            (point,) = recorded.points("openai_runs.watch.active")
            in_flight.append(point.value)

        await client.runs.poll(
            run["thread_id"], run["id"], policy=FAST, on_status=on_status
        )

    against_emulator(body)
    assert in_flight
    assert in_flight[0] == 1
    (active,) = recorded.points("openai_runs.watch.active")
    assert active.value == 0
    (duration,) = recorded.points("openai_runs.watch.duration")
    assert duration.attributes["openai_runs.run.status"] == "completed"
    assert duration.count == 1
    tokens = {
        p.attributes["gen_ai.token.type"]: p.sum
        for p in recorded.points("gen_ai.client.token.usage")
    }
    assert tokens == {"input": 300, "output": 30}
    requests = recorded.points("http.client.request.duration")
    assert {p.attributes["http.request.method"] for p in requests} == {"GET"}
    assert all(p.attributes["server.address"] == "127.0.0.1" for p in requests)


def test_a_cancelled_watch_ends_its_span(recorded: Recorded) -> None:
    """A watch cancelled by its caller still ends its span (error.type cancelled) and leaves no watch in flight."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        run = emu.create_run(script=RunScript.endless())
        task = asyncio.create_task(
            client.runs.poll(run["thread_id"], run["id"], policy=FAST)
        )
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    against_emulator(body)
    watch = recorded.one("watch_run")
    assert (watch.attributes or {})["error.type"] == "cancelled"
    (active,) = recorded.points("openai_runs.watch.active")
    assert active.value == 0


def test_no_secret_reaches_a_span(recorded: Recorded) -> None:
    """Neither the key nor a credential in the query string appears in any attribute or event."""
    secret_query = "sig-0123456789-secret"

    async def body(emu: Emulator, _: RunsClient) -> Any:
        run = emu.create_run(script=RunScript.completed(after=0.02))
        async with RunsClient(
            api_key=KEY,
            base_url=emu.url,
            default_query={"sig": secret_query, "api-version": "v1"},
        ) as client:
            await client.runs.poll(run["thread_id"], run["id"], policy=FAST)

    against_emulator(body)
    spans = recorded.spans()
    assert spans
    text = repr(
        [
            (s.name, dict(s.attributes or {}), [e.attributes for e in s.events])
            for s in spans
        ]
    )
    assert KEY not in text
    assert secret_query not in text
    (url,) = {str((s.attributes or {})["url.full"]) for s in recorded.named(RUN_GET)}
    assert "sig=REDACTED" in url
    assert "api-version=v1" in url


def test_uninstrument_stops_recording(recorded: Recorded) -> None:
    """After uninstrument() nothing more is recorded."""
    telemetry.uninstrument()

    async def body(emu: Emulator, client: RunsClient) -> Any:
        run = emu.create_run(script=RunScript.completed(after=0.02))
        await client.runs.poll(run["thread_id"], run["id"], policy=FAST)

    against_emulator(body)
    assert recorded.spans() == []


def test_the_package_works_without_opentelemetry() -> None:
    """With opentelemetry unimportable, openai_runs imports and watches a run; only openai_runs.telemetry says to install the extra."""
    script = textwrap.dedent(
        """
        import asyncio, sys

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, Blocker())

        import openai_runs
        from openai_runs import RunsClient, WatchPolicy
        from openai_runs.testing import Emulator, RunScript

        async def main():
            async with Emulator() as emu:
                run = emu.create_run(script=RunScript.completed(after=0.02))
                async with RunsClient(api_key=emu.api_key, base_url=emu.url) as c:
                    policy = WatchPolicy(initial=0.01, maximum=0.02)
                    done = await c.runs.poll(run["thread_id"], run["id"], policy=policy)
                    print(done.status)

        asyncio.run(main())
        assert not any(m.startswith("opentelemetry") for m in sys.modules), "loaded"
        try:
            import openai_runs.telemetry
        except ImportError as error:
            print("ImportError:", error)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "completed"
    assert lines[1].startswith("ImportError:")
    assert "openai-runs[otel]" in lines[1]


def test_telemetry_and_the_request_log_both_see_each_request(
    recorded: Recorded, caplog: pytest.LogCaptureFixture
) -> None:
    """With the CLI's request log installed too, every attempt is both a span and a log line, and watches still trace."""
    from openai_runs import _observe  # noqa: PLC0415

    async def body(emu: Emulator, client: RunsClient) -> Any:
        run = emu.create_run(script=RunScript.completed(after=0.05))
        emu.inject(Fault(status=429, retry_after=0.01, times=1))
        return await client.runs.poll(run["thread_id"], run["id"], policy=FAST)

    _observe.install("verbose", _observe.RequestLog())
    try:
        with caplog.at_level("INFO", logger="openai_runs.requests"):
            against_emulator(body)
    finally:
        _observe.uninstall("verbose")
    gets = sorted(recorded.named(RUN_GET), key=lambda s: s.start_time or 0)
    lines = [r.getMessage() for r in caplog.records if r.name == "openai_runs.requests"]
    assert len(lines) == len(gets) >= 2
    assert "-> 429" in lines[0]
    assert "(attempt 2," in lines[1]
    assert (gets[1].attributes or {})["http.request.resend_count"] == 1
    watch = recorded.one("watch_run")
    assert all(child_of(span, watch) for span in gets)
    assert KEY not in "".join(lines)


def test_a_watch_awaited_while_handling_an_error_is_no_failure(
    recorded: Recorded,
) -> None:
    """A watch that completes inside the caller's own except block is not marked with the caller's error."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        run = emu.create_run(script=RunScript.completed(after=0.02))
        try:
            raise KeyError("the caller's own")
        except KeyError:
            return await client.runs.poll(run["thread_id"], run["id"], policy=FAST)

    against_emulator(body)
    watch = recorded.one("watch_run")
    assert "error.type" not in (watch.attributes or {})
    assert watch.status.status_code is StatusCode.UNSET


def test_a_stream_with_a_tool_call_traces_the_tool_and_the_submit(
    recorded: Recorded,
) -> None:
    """A stream that serves a tool: execute_tool and the streamed submit are children of stream_run."""
    from openai_runs.models import FunctionDefinition, FunctionTool  # noqa: PLC0415

    async def body(emu: Emulator, client: RunsClient) -> Any:
        thread_id = emu.create_thread()
        tools = [FunctionTool(function=FunctionDefinition(name="get_weather"))]
        async with client.runs.stream(
            thread_id, assistant_id="asst_1", tools=tools, tool_handler=lambda _: "ok"
        ) as stream:
            return await stream.final_run()

    run = against_emulator(
        body, default_script=RunScript.requires_action(after=0.05, then=0.05)
    )
    assert run.status == "completed"
    stream = recorded.one("stream_run")
    tool = recorded.one("execute_tool get_weather")
    submit = recorded.one(
        "POST /v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs"
    )
    assert child_of(tool, stream)
    assert child_of(submit, stream)
    assert (stream.attributes or {})["openai_runs.run.status"] == "completed"
    statuses = [
        (e.attributes or {}).get("openai_runs.run.status") for e in stream.events
    ]
    assert "requires_action" in statuses


def test_a_stream_refused_at_once_ends_its_span_with_the_error(
    recorded: Recorded,
) -> None:
    """A stream whose request is a 404: stream_run ends with error.type NotFoundError, its POST span with 404."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        with pytest.raises(exc.NotFoundError):
            async with client.runs.stream("thread_missing", assistant_id="asst_1"):
                pass

    against_emulator(body)
    stream = recorded.one("stream_run")
    assert (stream.attributes or {})["error.type"] == (
        "openai_runs.exceptions.NotFoundError"
    )
    post = recorded.one("POST /v1/threads/{thread_id}/runs")
    assert (post.attributes or {})["error.type"] == "404"
    assert child_of(post, stream)
    (active,) = recorded.points("openai_runs.watch.active")
    assert active.value == 0


def test_leaving_watch_many_early_ends_every_span(recorded: Recorded) -> None:
    """Breaking out of watch_many ends the spans of the runs still watched (error.type cancelled); none stays in flight."""

    async def body(emu: Emulator, client: RunsClient) -> Any:
        done = emu.create_run(script=RunScript.completed(after=0.02))
        endless = [emu.create_run(script=RunScript.endless()) for _ in range(3)]
        refs = [(r["thread_id"], r["id"]) for r in [done, *endless]]
        results = client.runs.watch_many(refs, policy=FAST)
        async with contextlib.aclosing(results):
            async for result in results:
                assert result.run_id == done["id"]
                break

    against_emulator(body)
    spans = recorded.named("watch_run")
    assert len(spans) == 4
    errors = sorted(str((s.attributes or {}).get("error.type")) for s in spans)
    assert errors == ["None", "cancelled", "cancelled", "cancelled"]
    (active,) = recorded.points("openai_runs.watch.active")
    assert active.value == 0


def test_azure_request_id_is_the_request_id(recorded: Recorded) -> None:
    """A server that sends only `apim-request-id` (Azure's gateway) still gives the span its request id."""
    from aiohttp import web  # noqa: PLC0415
    from aiohttp.test_utils import TestServer  # noqa: PLC0415

    run = {
        "id": "run_1",
        "object": "thread.run",
        "created_at": 1,
        "thread_id": "thread_1",
        "assistant_id": "asst_1",
        "status": "completed",
    }

    async def answer(_: web.Request) -> web.Response:
        return web.json_response(run, headers={"apim-request-id": "apim-42"})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/threads/{thread_id}/runs/{run_id}", answer)
        async with (
            TestServer(app) as server,
            RunsClient(api_key=KEY, base_url=str(server.make_url(""))) as client,
        ):
            await client.runs.retrieve("thread_1", "run_1")

    asyncio.run(main())
    span = recorded.one("GET /threads/{thread_id}/runs/{run_id}")
    assert (span.attributes or {})["openai_runs.request_id"] == "apim-42"


@pytest.mark.parametrize("asynchronous", [False, True], ids=["thread", "coroutine"])
def test_spans_a_tool_makes_are_children_of_its_execute_tool_span(
    recorded: Recorded, asynchronous: bool
) -> None:
    """What a tool handler traces itself (in a worker thread or on the loop) nests under its execute_tool span."""
    tracer = trace.get_tracer("tool", tracer_provider=_provider_of(recorded))

    def lookup(call: ToolCall) -> str:
        with tracer.start_as_current_span("weather lookup"):
            return "sunny"

    async def lookup_async(call: ToolCall) -> str:
        return lookup(call)

    async def body(emu: Emulator, client: RunsClient) -> Any:
        run = emu.create_run(
            script=RunScript.requires_action(
                ScriptedCall("get_weather", "{}"), after=0.02, then=0.02
            )
        )
        handler = lookup_async if asynchronous else lookup
        await client.runs.poll(
            run["thread_id"], run["id"], policy=FAST, tool_handler=handler
        )

    against_emulator(body)
    assert child_of(
        recorded.one("weather lookup"), recorded.one("execute_tool get_weather")
    )
