"""A run as a stream of typed events, across tool calls and dropped connections."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import aiohttp
import attrs
import cattrs

from . import _observe
from ._converter import client_converter, request_converter
from ._events import EventDataError, Snapshots, StreamEvent, parse_event
from ._sse import SSEDecoder, SSEError
from ._watch_core import (
    Call,
    Finish,
    Send,
    Serve,
    Settings,
    Sleep,
    WatchMachine,
    WatchOptions,
)
from ._watcher import report, send, serve
from .exceptions import (
    APIConnectionError,
    APIDecodeError,
    APIStatusError,
    APITimeoutError,
    NotFoundError,
    StreamDecodeError,
    WatchTimeoutError,
    error_from_response,
)
from .models import (
    Message,
    MessageDelta,
    MessageStatus,
    Page,
    Run,
    RunStep,
    TextPartDelta,
)

if TYPE_CHECKING:
    from ._client import RunsClient
    from ._http import Transport
    from ._observe import WatchTrace

__all__ = ["RunStream"]

logger = logging.getLogger("openai_runs")


class _Dropped(Exception):
    """The event stream ended before ``data: [DONE]``."""


class RunStream:
    """A run's events as they happen: ``async with`` it, ``async for`` over it.

    Made by [Runs.stream][openai_runs.Runs.stream],
    [Runs.create_thread_and_run_stream][openai_runs.Runs.create_thread_and_run_stream]
    and [Runs.submit_tool_outputs_stream][openai_runs.Runs.submit_tool_outputs_stream];
    the request is sent when the ``async with`` block starts (or at the first
    event). Each item is a [StreamEvent][openai_runs.StreamEvent]; event
    names this version does not know are yielded too.

    ```python
    async with client.runs.stream(thread_id, assistant_id=assistant_id) as stream:
        async for text in stream.text_deltas():
            print(text, end="", flush=True)
        run = await stream.final_run()
    ```

    The stream keeps snapshots of the messages and steps it has shown,
    rebuilt from their deltas ([final_messages][openai_runs.RunStream.final_messages],
    [final_steps][openai_runs.RunStream.final_steps]). With a *tool_handler*,
    it goes on across ``requires_action``: it answers the tool calls,
    submits the outputs with ``stream: true`` and yields their events in the
    same iteration, until the run ends.

    If the connection drops before the run ends, the stream does not raise:
    it polls the run instead (a [RunWatcher][openai_runs.RunWatcher] with the
    time left), yields a ``thread.run.<status>`` event at each change of
    status it sees, and events for the steps and messages made meanwhile
    (``thread.run.step.created`` and ``thread.run.step.<status>``,
    ``thread.message.created``, a ``thread.message.delta`` with the text the
    stream missed, ``thread.message.completed``), and ends with the terminal
    run. Those events are built from what a poll returns, so no
    ``thread.run.step.delta`` comes for that stretch, and a status the run
    passed through between two polls is not seen.

    Attributes:
        snapshots: The messages and steps as they stand after the events so far.
    """

    def __init__(
        self,
        client: RunsClient,
        path: Sequence[str],
        body: dict[str, Any],
        options: WatchOptions,
        *,
        query: Sequence[tuple[str, str]] = (),
        thread_id: str | None = None,
        run_id: str | None = None,
    ) -> None:
        self._settings = Settings.of(options)
        self._client = client
        self._path = tuple(path)
        self._body = body
        self._query = tuple(query)
        self.policy = self._settings.policy
        self.timeout = self._settings.timeout
        self.tool_handler = self._settings.tool_handler
        self.snapshots = Snapshots()
        self.thread_id = thread_id
        self.run_id = run_id
        self.reconnects = 0
        self._run: Run | None = None
        self._machine: WatchMachine | None = None
        self._started: float | None = None
        self._submitting = False
        self._streaming = False
        self._events: AsyncGenerator[StreamEvent, None] | None = None
        self._response: aiohttp.ClientResponse | None = None
        self._trace: WatchTrace | None = None

    def __repr__(self) -> str:
        status = None if self._run is None else str(self._run.status)
        return f"<RunStream {self.run_id} status={status}>"

    # --- What the caller sees -------------------------------------------------

    @property
    def current_run(self) -> Run | None:
        """The run as the last ``thread.run.*`` event showed it, if any yet."""
        return self._run

    async def __aenter__(self) -> Self:
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, asyncio.CancelledError):
            await self._cancel_on_caller_cancel()
        await self.close()

    async def close(self) -> None:
        """Stop: close the connection (the run itself goes on on the server)."""
        if self._events is not None:
            await self._events.aclose()
        self._close_response()
        if self._trace is not None:
            self._trace.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._events is None:
            await self._start()
        assert self._events is not None
        return await anext(self._events)

    async def until_done(self) -> None:
        """Read the stream to its end, keeping the snapshots."""
        async for _ in self:
            pass

    async def final_run(self) -> Run:
        """Read the stream to its end and return the run as it ended.

        Returns:
            The terminal run, or the run in ``requires_action`` when there
            is no *tool_handler*.

        Raises:
            APIConnectionError: The stream ended before it named its run.
        """
        await self.until_done()
        if self._run is None:
            raise APIConnectionError("the stream ended before it named its run")
        return self._run

    async def final_messages(self) -> list[Message]:
        """Read the stream to its end; return the messages it showed, in order."""
        await self.until_done()
        return self.snapshots.messages()

    async def final_steps(self) -> list[RunStep]:
        """Read the stream to its end; return the steps it showed, in order."""
        await self.until_done()
        return self.snapshots.steps()

    async def text_deltas(self) -> AsyncIterator[str]:
        """Yield each piece of text of the run's messages as it arrives.

        Reads the same stream: the snapshots and
        [final_run][openai_runs.RunStream.final_run] still work after it.
        """
        async for event in self:
            if isinstance(event.data, MessageDelta):
                for part in event.data.delta.content or ():
                    if (
                        isinstance(part, TextPartDelta)
                        and part.text
                        and part.text.value
                    ):
                        yield part.text.value

    # --- The machinery ------------------------------------------------------------
    # The stream drives the same WatchMachine as RunWatcher: the events of the
    # stream are its answers (each thread.run.* event is a run seen), and when
    # the stream ends or breaks the machine says what comes next: serve the
    # tools, submit (with stream: true, so the events go on), cancel, poll,
    # or finish. Deadline, cancel and tool-loop rules live in _watch_core.

    async def _start(self) -> None:
        if self._events is not None:
            return
        self._started = time.monotonic()
        if _observe.hooks is not None and self._trace is None:
            self._trace = _observe.hooks.watch(
                "stream", self._client.base_url, self.thread_id, self.run_id
            )
        try:
            await self._open(self._path, self._body, self._query)
        except BaseException as exc:
            if self._trace is not None:
                self._trace.close(exc)
            raise
        self._events = self._produce()

    def _limit(self) -> float:
        """When the stream must take its next step: the machine's limit."""
        if self._machine is not None:
            return self._machine.limit
        assert self._started is not None
        return self._started + self._settings.timeout

    def _remaining(self) -> float:
        return self._limit() - time.monotonic()

    async def _open(
        self,
        path: Sequence[str],
        body: dict[str, Any],
        query: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Send a request with ``stream: true`` and keep its answer to read."""
        remaining = self._remaining()
        if remaining <= 0:
            raise self._timeout_error()
        transport = self._client._transport
        data = json.dumps({**body, "stream": True}).encode()
        seconds = min(self.policy.request_timeout, remaining)
        if _observe.hooks is None:
            response = await transport.stream(
                "POST", path, body=data, params=query, timeout=seconds
            )
        else:
            resend = 0 if self._machine is None else self._machine.failures
            response = await _observed_stream(
                transport,
                path,
                query,
                data,
                seconds,
                watch=self._trace,
                resend=resend,
            )
        self._response = response
        if response.status >= 300:
            raw = await response.read()
            self._close_response()
            error = error_from_response(response.status, response.headers, raw)
            self._client._redact(error)
            raise error

    def _close_response(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

    async def _produce(self) -> AsyncGenerator[StreamEvent, None]:
        clock = time.monotonic
        self._streaming = True
        try:
            while True:
                if self._streaming:
                    self._streaming = False
                    async for event in self._read_guarded():
                        yield event
                machine = self._machine
                if machine is None:
                    raise APIConnectionError(
                        "the event stream ended before it named its run; "
                        "nothing to poll"
                    )
                action = machine.next(clock())
                if isinstance(action, Finish):
                    if action.error is not None:
                        raise action.error
                    return
                async for event in self._act(machine, action):
                    yield event
        except asyncio.CancelledError:
            await self._cancel_on_caller_cancel()
            raise
        finally:
            self._close_response()
            if self._machine is not None:
                self._machine.ended = clock()
            if self._trace is not None:
                self._trace.close()

    async def _read_guarded(self) -> AsyncIterator[StreamEvent]:
        """The open response's events; a drop is logged and counted, not raised."""
        try:
            async for event in self._read():
                yield event
        except _Dropped as dropped:
            logger.debug("stream of %s dropped: %s", self.run_id, dropped)
            if self._remaining() > 0:
                self.reconnects += 1
        finally:
            self._close_response()

    async def _act(
        self, machine: WatchMachine, action: Sleep | Send | Serve
    ) -> AsyncIterator[StreamEvent]:
        """Do what the machine said; yield events for what a poll saw change."""
        clock = time.monotonic
        if isinstance(action, Sleep):
            await asyncio.sleep(max(action.until - clock(), 0.0))
        elif isinstance(action, Serve):
            await serve(self._settings, machine, action, clock)
        elif action.call == "submit":
            self._streaming = await self._submit(machine)
        elif await send(self._client.runs, machine, action, clock):
            # A poll (after a drop, or in a cancel's grace) saw a new
            # status: say what changed, as the stream would have.
            run = machine.run
            assert run is not None
            await report(self._settings, run)
            async for event in self._catch_up(run):
                yield event
            yield self._synthetic(f"thread.run.{run.status}", run)

    async def _submit(self, machine: WatchMachine) -> bool:
        """Submit the outputs with ``stream: true``; whether the stream goes on."""
        path = (*_run_path(machine.thread_id, machine.run_id), "submit_tool_outputs")
        body = {"tool_outputs": request_converter.unstructure(machine.outputs)}
        try:
            await self._open(path, body)
        except TimeoutError:
            fault = APITimeoutError(f"stream {machine.run_id}: no answer to the submit")
            machine.on_fault("submit", fault, time.monotonic())
            return False
        except Exception as exc:  # noqa: BLE001 - the machine decides what it means
            machine.on_fault("submit", exc, time.monotonic())
            return False
        self._submitting = True
        return True

    async def _read(self) -> AsyncIterator[StreamEvent]:
        """Yield the events of the open response until ``[DONE]``.

        Raises:
            _Dropped: The body ended or broke before ``[DONE]``, or went
                quiet past the deadline (the machine then says what follows).
            StreamDecodeError: An event that breaks the format or its model.
        """
        response = self._response
        assert response is not None
        if response.content_type == "application/json":
            # A server that does not stream answers the run itself: take it,
            # and learn the rest by polling.
            async for event in self._not_streamed(response):
                yield event
            raise _Dropped("the server answered JSON, not an event stream")
        decoder = SSEDecoder()
        chunks = response.content.iter_any()
        while True:
            # One timeout per read of the socket, not per event: a read
            # brings many events, and each timeout costs a timer handle.
            try:
                async with asyncio.timeout(self._remaining()):
                    chunk = await anext(chunks)
                batch = decoder.feed(chunk)
            except StopAsyncIteration:
                raise _Dropped("the body ended before [DONE]") from None
            except TimeoutError:
                if self._machine is None and self._remaining() <= 0:
                    raise self._timeout_error() from None
                raise _Dropped("no event in time") from None
            except (aiohttp.ClientError, ConnectionError) as exc:
                raise _Dropped(f"{type(exc).__name__}: {exc}") from None
            except SSEError as exc:
                raise self._decode_error(str(exc), response) from None
            for sse in batch:
                if sse.is_done:
                    return
                try:
                    event, payload = parse_event(sse.event, sse.data)
                except EventDataError as exc:
                    raise self._decode_error(str(exc), response) from None
                await self._observe(event, payload)
                yield event

    async def _not_streamed(
        self, response: aiohttp.ClientResponse
    ) -> AsyncIterator[StreamEvent]:
        try:
            raw = await response.read()
            run = client_converter().structure(json.loads(raw), Run)
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise _Dropped(f"{type(exc).__name__}: {exc}") from None
        except (ValueError, TypeError, cattrs.BaseValidationError) as exc:
            problem = f"a JSON answer that is not a run: {exc}"
            raise self._decode_error(problem, response) from None
        name = "created" if self._run is None else str(run.status)
        event = StreamEvent(f"thread.run.{name}", run)
        await self._observe(event, client_converter().unstructure(run))
        yield event

    def _decode_error(
        self, problem: str, response: aiohttp.ClientResponse
    ) -> StreamDecodeError:
        return StreamDecodeError(
            f"the event stream is not what the API sends: {problem}",
            status_code=response.status,
            headers=response.headers,
        )

    async def _observe(self, event: StreamEvent, payload: Any) -> None:
        """Keep the snapshots; hand each run the stream shows to the machine."""
        self.snapshots.observe(event.event, payload)
        run = event.data
        if not isinstance(run, Run):
            return
        self._run = run
        self.run_id, self.thread_id = run.id, run.thread_id
        machine = self._machine
        if machine is None:
            assert self._started is not None
            machine = self._machine = WatchMachine(
                run.thread_id,
                run.id,
                settings=self._settings,
                retry=self._client.retry_policy,
                now=self._started,
            )
            machine.trace = self._trace
        # The first run of a submit's stream answers the submit.
        call: Call = "submit" if self._submitting else "retrieve"
        self._submitting = False
        if machine.on_run(call, run, time.monotonic()):
            await report(self._settings, run)

    def _timeout_error(self) -> WatchTimeoutError:
        return WatchTimeoutError(
            f"the stream did not name its run within {self._settings.timeout:g}s",
            None,
        )

    async def _cancel_on_caller_cancel(self) -> None:
        """The reader was cancelled: cancel the run too, if the policy says so."""
        machine = self._machine
        if machine is None or not machine.on_caller_cancel(time.monotonic()):
            return

        async def cancel() -> None:
            clock = time.monotonic
            while not isinstance(action := machine.next(clock()), Finish):
                if isinstance(action, Sleep):
                    await asyncio.sleep(max(action.until - clock(), 0.0))
                elif isinstance(action, Send):
                    await send(self._client.runs, machine, action, clock)

        self._close_response()
        await asyncio.shield(asyncio.ensure_future(cancel()))

    # --- After a dropped connection ---------------------------------------------

    async def _catch_up(self, run: Run) -> AsyncIterator[StreamEvent]:
        """Events for the steps and messages made since the stream last showed them."""
        trace = self._trace
        try:
            with _observe.entered(trace):
                steps = [
                    step
                    async for step in self._client.runs.steps.list(
                        run.thread_id, run.id, order="asc", limit=100
                    )
                ]
                messages = await self._messages_of(run)
        except (APIStatusError, APIConnectionError, APIDecodeError) as exc:
            # The run's own status still comes; these are extras.
            logger.debug("stream of %s: catching up failed: %s", run.id, exc)
            return
        for step in steps:
            before = self.snapshots.step(step.id)
            if before is None:
                yield self._synthetic("thread.run.step.created", step)
            if step.status != "in_progress" and (
                before is None or before.status != step.status
            ):
                yield self._synthetic(f"thread.run.step.{step.status}", step)
        for message in messages:
            async for event in self._message_events(message):
                yield event

    async def _messages_of(self, run: Run) -> list[Message]:
        path = ("threads", run.thread_id, "messages")
        params = [("run_id", run.id), ("order", "asc"), ("limit", "100")]
        try:
            response = await self._client.request(
                "GET", path, Page[Message], params=params
            )
        except NotFoundError:
            return []  # a server without the messages endpoint
        return response.parsed.data

    async def _message_events(self, message: Message) -> AsyncIterator[StreamEvent]:
        before = self.snapshots.message(message.id)
        if before is None:
            # As it was created: no text yet, so that the text comes as a delta.
            opening = attrs.evolve(
                message,
                status=MessageStatus.IN_PROGRESS,
                content=[],
                completed_at=None,
                incomplete_at=None,
                incomplete_details=None,
            )
            yield self._synthetic("thread.message.created", opening)
        elif before.status == message.status:
            return
        delta = _missing_text(before, message)
        if delta is not None:
            yield self._synthetic("thread.message.delta", delta)
        if message.status != MessageStatus.IN_PROGRESS:
            yield self._synthetic(f"thread.message.{message.status}", message)

    def _synthetic(self, name: str, data: Any) -> StreamEvent:
        """An event built from a polled object, kept in the snapshots."""
        event = StreamEvent(name, data)
        self.snapshots.observe(name, client_converter().unstructure(data))
        if isinstance(data, Run):
            self._run = data
        return event


def _missing_text(before: Message | None, after: Message) -> MessageDelta | None:
    """A delta with the text *after* has beyond *before*, part by part."""
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(after.content):
        value = getattr(getattr(part, "text", None), "value", None)
        if not isinstance(value, str):
            continue
        old = ""
        if before is not None and index < len(before.content):
            old_value = getattr(
                getattr(before.content[index], "text", None), "value", ""
            )
            old = old_value if isinstance(old_value, str) else ""
        if value.startswith(old) and len(value) > len(old):
            parts.append(
                {"index": index, "type": "text", "text": {"value": value[len(old) :]}}
            )
    if not parts:
        return None
    return client_converter().structure(
        {"id": after.id, "object": "thread.message.delta", "delta": {"content": parts}},
        MessageDelta,
    )


async def _observed_stream(
    transport: Transport,
    path: Sequence[str],
    query: Sequence[tuple[str, str]],
    data: bytes,
    seconds: float,
    *,
    watch: WatchTrace | None,
    resend: int,
) -> aiohttp.ClientResponse:
    """Open a stream with the installed observers told of the request."""
    hooks = _observe.hooks
    assert hooks is not None
    with _observe.entered(watch, resend):
        trace = hooks.request(transport, "POST", path, query, resend)
        try:
            response = await transport.stream(
                "POST", path, body=data, params=query, timeout=seconds
            )
        except BaseException as exc:
            trace.failed(exc)
            raise
        trace.answered(response.status, response.headers)
        return response


def _run_path(thread_id: str, run_id: str) -> tuple[str, ...]:
    return ("threads", thread_id, "runs", run_id)
