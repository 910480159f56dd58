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

from ._converter import client_converter, request_converter
from ._events import EventDataError, Snapshots, StreamEvent, parse_event
from ._sse import SSEDecoder, SSEError
from ._tools import ToolHandler, serve_tool_calls
from ._watch_core import WatchPolicy
from ._watcher import RunWatcher
from .exceptions import (
    APIConnectionError,
    APIDecodeError,
    APIStatusError,
    NotFoundError,
    OpenAIRunsError,
    StreamDecodeError,
    ToolCallError,
    WatchTimeoutError,
    error_from_response,
)
from .models import (
    Message,
    MessageDelta,
    MessageStatus,
    Page,
    Run,
    RunStatus,
    RunStep,
    TextPartDelta,
)

if TYPE_CHECKING:
    from ._client import RunsClient

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
        *,
        thread_id: str | None = None,
        run_id: str | None = None,
        tool_handler: ToolHandler | None = None,
        timeout: float | None = None,
        cancel_on_timeout: bool = False,
        cancel_on_caller_cancel: bool = False,
        cancel_on_tool_error: bool = True,
        policy: WatchPolicy | None = None,
    ) -> None:
        self._client = client
        self._path = tuple(path)
        self._body = body
        self.policy = policy or WatchPolicy()
        self.timeout = self.policy.deadline if timeout is None else timeout
        self.tool_handler = tool_handler
        self.cancel_on_timeout = cancel_on_timeout
        self.cancel_on_caller_cancel = cancel_on_caller_cancel
        self.cancel_on_tool_error = cancel_on_tool_error
        self.snapshots = Snapshots()
        self.thread_id = thread_id
        self.run_id = run_id
        self._run: Run | None = None
        self._deadline: float | None = None
        self._events: AsyncGenerator[StreamEvent, None] | None = None
        self._response: aiohttp.ClientResponse | None = None
        self._finished = False
        self._cancel_sent = False
        self.reconnects = 0

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
            await self._cancel_run_on_caller_cancel()
        await self.close()

    async def close(self) -> None:
        """Stop: close the connection (the run itself goes on on the server)."""
        if self._events is not None:
            await self._events.aclose()
        self._close_response()

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

    async def _start(self) -> None:
        if self._events is not None:
            return
        self._deadline = time.monotonic() + self.timeout
        await self._open(self._path, self._body)
        self._events = self._produce()

    def _remaining(self) -> float:
        assert self._deadline is not None
        return self._deadline - time.monotonic()

    async def _open(self, path: Sequence[str], body: dict[str, Any]) -> None:
        """Send a request with ``stream: true`` and keep its answer to read."""
        remaining = self._remaining()
        if remaining <= 0:
            raise self._timeout_error()
        transport = self._client._transport
        data = json.dumps({**body, "stream": True}).encode()
        seconds = min(self.policy.request_timeout, remaining)
        response = await transport.stream("POST", path, body=data, timeout=seconds)
        self._response = response
        if response.status >= 300:
            try:
                raw = await transport.read_body(response, "POST", path)
            finally:
                self._close_response()
            scrubbed = transport.scrub(raw)
            error = error_from_response(response.status, response.headers, scrubbed)
            self._client._redact(error)
            raise error

    def _close_response(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

    async def _produce(self) -> AsyncGenerator[StreamEvent, None]:
        try:
            while True:
                try:
                    async for event in self._read():
                        yield event
                except _Dropped as dropped:
                    logger.debug("stream of %s dropped: %s", self.run_id, dropped)
                    async for event in self._poll():
                        yield event
                    return
                finally:
                    self._close_response()
                run = self._run
                if run is None or run.is_terminal:
                    return
                if run.status != RunStatus.REQUIRES_ACTION or self.tool_handler is None:
                    return
                outputs = await self._serve_tools(run)
                body = {"tool_outputs": request_converter.unstructure(outputs)}
                await self._open(
                    (*_run_path(run.thread_id, run.id), "submit_tool_outputs"), body
                )
        except asyncio.CancelledError:
            await self._cancel_run_on_caller_cancel()
            raise
        finally:
            self._finished = True

    async def _read(self) -> AsyncIterator[StreamEvent]:
        """Yield the events of the open response until ``[DONE]``.

        Raises:
            _Dropped: The body ended or broke before ``[DONE]``.
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
                if self._remaining() <= 0:
                    await self._on_deadline()
                raise _Dropped("no event within the read timeout") from None
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
                self._observe(event, payload)
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
            raise self._decode_error(
                f"a JSON answer that is not a run: {exc}", response
            ) from None
        name = "created" if self._run is None else str(run.status)
        yield self._synthetic(f"thread.run.{name}", run)

    def _decode_error(
        self, problem: str, response: aiohttp.ClientResponse
    ) -> StreamDecodeError:
        return StreamDecodeError(
            f"the event stream is not what the API sends: {problem}",
            status_code=response.status,
            headers=response.headers,
        )

    def _observe(self, event: StreamEvent, payload: Any) -> None:
        if isinstance(event.data, Run):
            self._run = event.data
            self.run_id = event.data.id
            self.thread_id = event.data.thread_id
        self.snapshots.observe(event.event, payload)

    async def _serve_tools(self, run: Run) -> list[Any]:
        assert self.tool_handler is not None
        try:
            async with asyncio.timeout(self._remaining()):
                return await serve_tool_calls(
                    self.tool_handler, run, limit=self.policy.max_tool_calls
                )
        except TimeoutError:
            await self._on_deadline()
            raise self._timeout_error() from None
        except ToolCallError as exc:
            if self.cancel_on_tool_error:
                exc.run = await self._cancel_shielded() or run
            raise

    async def _on_deadline(self) -> None:
        """At the deadline: cancel the run if asked to, then raise."""
        self._close_response()
        run = self._run
        if self.cancel_on_timeout and run is not None and not run.is_terminal:
            cancelled = await self._cancel_shielded()
            if cancelled is not None:
                self._run = cancelled
        raise self._timeout_error()

    def _timeout_error(self) -> WatchTimeoutError:
        return WatchTimeoutError(
            f"the stream of run {self.run_id} did not end within {self.timeout:g}s",
            self._run,
        )

    async def _cancel_run_on_caller_cancel(self) -> None:
        run = self._run
        if (
            self.cancel_on_caller_cancel
            and not self._cancel_sent
            and run is not None
            and not run.is_terminal
        ):
            await self._cancel_shielded()

    async def _cancel_shielded(self) -> Run | None:
        """Cancel the run on the server, shielded from the caller's cancel."""
        self._cancel_sent = True
        run = self._run
        assert run is not None

        async def cancel() -> Run | None:
            try:
                async with asyncio.timeout(self.policy.cancel_grace):
                    return await self._client.runs.cancel(
                        run.thread_id, run.id, max_retries=0
                    )
            except (TimeoutError, OpenAIRunsError) as exc:
                logger.debug("stream of %s: cancel failed: %s", run.id, exc)
                return None

        return await asyncio.shield(asyncio.ensure_future(cancel()))

    # --- After a dropped connection ---------------------------------------------

    async def _poll(self) -> AsyncIterator[StreamEvent]:
        """Watch the run by polling, yielding events for what changed."""
        thread_id, run_id = self.thread_id, self.run_id
        if thread_id is None or run_id is None:
            raise APIConnectionError(
                "the event stream broke before it named its run; nothing to poll"
            )
        self.reconnects += 1
        remaining = self._remaining()
        if remaining <= 0:
            await self._on_deadline()
        # Only the options every version of RunWatcher takes: the caller's
        # cancel is handled by _produce, which cancels the run itself.
        policy = attrs.evolve(
            self.policy,
            cancel_on_tool_error=self.cancel_on_tool_error,
            cancel_on_caller_cancel=False,
        )
        watcher = RunWatcher(
            self._client,
            thread_id,
            run_id,
            timeout=remaining,
            cancel_on_timeout=self.cancel_on_timeout,
            policy=policy,
            tool_handler=self.tool_handler,
        )
        try:
            async for seen in watcher:
                async for event in self._catch_up(seen):
                    yield event
                last = self._run
                if last is None or last.status != seen.status:
                    yield self._synthetic(f"thread.run.{seen.status}", seen)
                self._run = seen
        except WatchTimeoutError as exc:
            if exc.run is not None:
                self._run = exc.run
            raise self._timeout_error() from exc

    async def _catch_up(self, run: Run) -> AsyncIterator[StreamEvent]:
        """Events for the steps and messages made since the stream last showed them."""
        try:
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
        """An event built from a polled object, observed like a streamed one."""
        event = StreamEvent(name, data)
        self._observe(event, client_converter().unstructure(data))
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


def _run_path(thread_id: str, run_id: str) -> tuple[str, ...]:
    return ("threads", thread_id, "runs", run_id)
