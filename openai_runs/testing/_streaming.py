"""Runs as server-sent events: what the emulator answers to `stream: true`.

A stream watches one run of the lazy state: each tick brings the run up to
the clock, compares it with what the stream has already told the client
(`RunView`), and writes the events for the difference, in the order the
live API sends them:

    thread.created                       (create thread and run only)
    thread.run.created
    thread.run.queued
    thread.run.in_progress
    thread.run.step.created              (per step, when it appears)
    thread.run.step.in_progress
    thread.run.step.delta                (tool calls: id and name, then arguments)
    thread.message.created               (for a message creation step)
    thread.message.in_progress
    thread.message.delta                 (the reply text, a word at a time)
    thread.message.completed
    thread.run.step.completed
    thread.run.requires_action | thread.run.completed | failed | ...
    done                                 (data: [DONE])

The reply's words are spread over the message step's time on the
emulator's clock, so a `ManualClock` moves a stream as it moves a run. A
cancel or an expiry seen mid-stream is streamed as it happens.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from typing import Any

import attrs
from aiohttp import web

from ._script import TERMINAL
from ._state import JSON, EmulatorState, Run, _Step

_TICK = 0.05
"""The longest real pause between two looks at the run, in seconds."""

_WORD_SECONDS = 0.05
"""Emulator seconds per word when the message step has no planned end."""

# A message's status when the run ends while the message is being written.
_MESSAGE_END = {
    "completed": ("completed", None),
    "incomplete": ("incomplete", "max_tokens"),
    "failed": ("incomplete", "run_failed"),
    "cancelled": ("incomplete", "run_cancelled"),
    "expired": ("incomplete", "run_expired"),
}


@attrs.define
class _MessageProgress:
    words: list[str]
    start: float
    per_word: float
    sent: int = 0
    done: bool = False


@attrs.define
class RunView:
    """What a stream has told its client about a run.

    Attributes:
        status: The last run status sent, `None` before the first.
        steps: The last status sent for each step, by step id.
        messages: Each message being written, by message id.
    """

    status: str | None = None
    steps: dict[str, str] = attrs.Factory(dict)
    messages: dict[str, _MessageProgress] = attrs.Factory(dict)

    @classmethod
    def of(cls, run: Run) -> RunView:
        """A view that has seen *run* as it is now (before tool outputs)."""
        view = cls(status=run.status)
        for step in run.steps:
            view.steps[step.id] = step.status
            if step.details["type"] == "message_creation":
                message_id = step.details["message_creation"]["message_id"]
                view.messages[message_id] = _MessageProgress([], 0.0, 0.0, done=True)
        return view


def _sse(event: str, data: Any) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"event: {event}\ndata: {text}\n\n".encode()


def _opening(step_json: JSON) -> JSON:
    """*step_json* as it looked when it appeared: in progress, details empty."""
    details = step_json["step_details"]
    if details["type"] == "tool_calls":
        details = {**details, "tool_calls": []}
    return {
        **step_json,
        "status": "in_progress",
        "step_details": details,
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "usage": None,
    }


def _call_deltas(step_id: str, calls: list[JSON]) -> list[bytes]:
    """Deltas that build *calls* by index: id and name first, then arguments."""
    events = []
    for index, call in enumerate(calls):
        first: JSON = {"index": index, "id": call["id"], "type": call["type"]}
        fragments: list[str] = []
        if call["type"] == "function":
            arguments = call["function"]["arguments"]
            first["function"] = {"name": call["function"]["name"], "arguments": ""}
            # Two fragments at least, so that clients must append them.
            half = len(arguments) // 2
            fragments = [part for part in (arguments[:half], arguments[half:]) if part]
        else:
            first[call["type"]] = call.get(call["type"], {})
        deltas = [first] + [
            {"index": index, "type": "function", "function": {"arguments": fragment}}
            for fragment in fragments
        ]
        for delta in deltas:
            events.append(
                _sse(
                    "thread.run.step.delta",
                    {
                        "id": step_id,
                        "object": "thread.run.step.delta",
                        "delta": {
                            "step_details": {
                                "type": "tool_calls",
                                "tool_calls": [delta],
                            }
                        },
                    },
                )
            )
    return events


class RunStreamer:
    """Turns the changes of one run into events, tick by tick.

    Args:
        state: The emulator's state.
        run: The run to stream.
        view: What the client has already been told.
    """

    def __init__(self, state: EmulatorState, run: Run, view: RunView) -> None:
        self.state = state
        self.run = run
        self.view = view

    def tick(self, *, advance: bool = True) -> tuple[list[bytes], float | None]:
        """Events for what changed since the last tick, and when to look again.

        Steps already shown go first (their last words, their ends), then a
        new status, then new steps; a status that ends the stream goes last.

        Args:
            advance: Bring the run up to the clock first; `False` streams it
                as it stands (right after a create or a submit, so that the
                client sees `queued` before `in_progress`).

        Returns:
            The events to write, and the emulator time of the next change
            (`None` once the stream is over: the run ended or waits for
            tool outputs).
        """
        with self.state.lock:
            run = self.run
            if advance:
                run = self.state.run(run.thread_id, run.id)
            now = self.state.clock.now()
            status = run.status
            pausing = status in TERMINAL or status == "requires_action"
            events: list[bytes] = []
            known = [step for step in run.steps if step.id in self.view.steps]
            new = [step for step in run.steps if step.id not in self.view.steps]
            for step in known:
                events += self._step_events(run, step, now)
            changed = status != self.view.status
            if changed and not pausing:
                events.append(self._run_event(run))
            for step in new:
                events += self._step_events(run, step, now)
            if changed and pausing:
                events.append(self._run_event(run))
            if pausing:
                events.append(_sse("done", "[DONE]"))
                return events, None
            return events, self._next_change(run, now)

    def _run_event(self, run: Run) -> bytes:
        self.view.status = run.status
        return _sse(f"thread.run.{run.status}", run.to_json())

    def _next_change(self, run: Run, now: float) -> float:
        due = [when for when, _, _ in run._events[:1]]
        due += [
            progress.start + (progress.sent + 1) * progress.per_word
            for progress in self.view.messages.values()
            if not progress.done and progress.sent < len(progress.words)
        ]
        if run.expires is not None:
            due.append(run.expires)
        return min(due, default=now + _TICK)

    def _step_events(self, run: Run, step: _Step, now: float) -> list[bytes]:
        events: list[bytes] = []
        sent = self.view.steps.get(step.id)
        if sent is None:
            opening = _opening(run.step_json(step, content=False))
            events.append(_sse("thread.run.step.created", opening))
            events.append(_sse("thread.run.step.in_progress", opening))
            self.view.steps[step.id] = "in_progress"
            if step.details["type"] == "tool_calls":
                events += _call_deltas(step.id, step.details["tool_calls"])
            else:
                events += self._open_message(run, step, now)
        if step.details["type"] == "message_creation":
            events += self._write_message(run, step, now)
        if step.status != self.view.steps[step.id]:
            self.view.steps[step.id] = step.status
            step_json = run.step_json(step, content=False)
            events.append(_sse(f"thread.run.step.{step.status}", step_json))
        return events

    def _message_id(self, step: _Step) -> str:
        message_id: str = step.details["message_creation"]["message_id"]
        return message_id

    def _open_message(self, run: Run, step: _Step, now: float) -> list[bytes]:
        words = re.findall(r"\S+\s*", run.script.reply) or [run.script.reply]
        # The message is written over the time until the run's next planned
        # change (its end, for the last step), or a word per _WORD_SECONDS.
        ends = [when for when, _, _ in run._events if when > step.created]
        span = (min(ends) - step.created) if ends else _WORD_SECONDS * len(words)
        progress = _MessageProgress(words, step.created, span / max(len(words), 1))
        self.view.messages[self._message_id(step)] = progress
        message = self._message_json(
            run, step, "", status="in_progress", reason=None, now=now
        )
        return [
            _sse("thread.message.created", message),
            _sse("thread.message.in_progress", message),
        ]

    def _write_message(self, run: Run, step: _Step, now: float) -> list[bytes]:
        message_id = self._message_id(step)
        progress = self.view.messages[message_id]
        if progress.done:
            return []
        finished = step.status != "in_progress"
        due = progress.sent  # a cancelled or failed run writes no more words
        if step.status == "completed":
            due = len(progress.words)
        elif run.status == "in_progress" and progress.per_word > 0:
            written = int((now - progress.start) / progress.per_word)
            due = max(due, min(len(progress.words), written))
        events = []
        for index in range(progress.sent, due):
            delta = {
                "id": message_id,
                "object": "thread.message.delta",
                "delta": {
                    "content": [
                        {
                            "index": 0,
                            "type": "text",
                            "text": {"value": progress.words[index], "annotations": []},
                        }
                    ]
                },
            }
            events.append(_sse("thread.message.delta", delta))
        progress.sent = max(progress.sent, due)
        if finished:
            progress.done = True
            status, reason = _MESSAGE_END.get(run.status, ("completed", None))
            text = "".join(progress.words[: progress.sent])
            message = self._message_json(
                run, step, text, status=status, reason=reason, now=now
            )
            events.append(_sse(f"thread.message.{status}", message))
        return events

    def _message_json(
        self,
        run: Run,
        step: _Step,
        text: str,
        *,
        status: str,
        reason: str | None,
        now: float,
    ) -> JSON:
        ended = step.ended_at if step.ended_at is not None else int(now)
        return {
            "id": self._message_id(step),
            "object": "thread.message",
            "created_at": int(step.created),
            "thread_id": run.thread_id,
            "status": status,
            "incomplete_details": None if reason is None else {"reason": reason},
            "completed_at": ended if status == "completed" else None,
            "incomplete_at": ended if status == "incomplete" else None,
            "role": "assistant",
            "content": (
                [{"type": "text", "text": {"value": text, "annotations": []}}]
                if text
                else []
            ),
            "assistant_id": run.fields["assistant_id"],
            "run_id": run.id,
            "attachments": [],
            "metadata": {},
        }


async def stream_run(
    request: web.Request,
    state: EmulatorState,
    run: Run,
    view: RunView,
    *,
    opening: Sequence[bytes] = (),
) -> web.StreamResponse:
    """Answer *request* with the events of *run* until it ends or pauses.

    Args:
        request: The create or submit request that asked for a stream.
        state: The emulator's state.
        run: The run to stream.
        view: What the client already knows of the run.
        opening: Events to send first (`thread.created`, `thread.run.created`).
    """
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    streamer = RunStreamer(state, run, view)
    try:
        events, next_change = streamer.tick(advance=False)
        await response.write(b"".join([*opening, *events]))
        while next_change is not None:
            wait = next_change - state.clock.now()
            await asyncio.sleep(min(max(wait, 0.001), _TICK))
            events, next_change = streamer.tick()
            if events:
                await response.write(b"".join(events))
        await response.write_eof()
    except ConnectionError:
        pass  # the client left; the run goes on without it, as on the live API
    return response


def created_events(run: Run, thread: JSON | None = None) -> list[bytes]:
    """The events that open a stream of a new run (and its new *thread*)."""
    events = [] if thread is None else [_sse("thread.created", thread)]
    events.append(_sse("thread.run.created", run.to_json()))
    return events
