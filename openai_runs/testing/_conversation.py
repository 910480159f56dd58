"""Threads and messages in the emulator: the endpoints, the replies, the lock.

A thread keeps its messages oldest first. When a run ends `completed` (or
`incomplete`) the run's reply (`RunScript.reply`) is appended as an
assistant message, with the id of the run's message-creation step. As on
the live API, a thread with an active run (`queued`, `in_progress`,
`requires_action`, `cancelling`) takes no new run and no new message over
HTTP; the Python control API (`Emulator.create_run`) is not held to it.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from ._script import TERMINAL
from ._state import JSON, ApiError, EmulatorState, Run, _Thread, check_metadata, new_id
from ._state import page as cut_page

ACTIVE: Final = frozenset({"queued", "in_progress", "requires_action", "cancelling"})
_MESSAGE_KEYS: Final = frozenset({"role", "content", "attachments", "metadata"})
_THREAD_KEYS: Final = frozenset({"messages", "tool_resources", "metadata"})
_PART_TYPES: Final = ("text", "image_file", "image_url")


class Conversations:
    """The threads' messages and the thread lock, over an `EmulatorState`."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        state.on_run_end = self._append_reply

    # -- the lock -------------------------------------------------------------

    def active_run(self, thread: _Thread) -> Run | None:
        """The thread's active run, brought up to date, or `None`."""
        now = self.state.clock.now()
        for run in reversed(thread.runs):
            if run.status in TERMINAL:
                continue
            run.advance(now)
            if run.status in ACTIVE:
                return run
        return None

    def check_run_allowed(self, thread_id: str) -> None:
        """Refuse a new run on a thread whose run is active, as the API does.

        Raises:
            ApiError: 404 for an unknown thread, 400 for a locked one.
        """
        with self.state.lock:
            thread = self.state._thread(thread_id)
            if (run := self.active_run(thread)) is not None:
                raise ApiError(
                    400, f"Thread {thread_id} already has an active run {run.id}."
                )

    def _check_message_allowed(self, thread: _Thread) -> None:
        if (run := self.active_run(thread)) is not None:
            raise ApiError(
                400,
                f"Can't add messages to {thread.id} while a run {run.id} is active.",
            )

    # -- threads --------------------------------------------------------------

    def create_thread(self, body: JSON) -> JSON:
        """Create a thread from a `CreateThreadRequest` body."""
        messages = body.get("messages") or []
        if not isinstance(messages, list):
            raise _invalid("messages", "expected an array of messages.")
        checked = [check_message(m, f"messages[{i}]") for i, m in enumerate(messages)]
        resources = _tool_resources(body.get("tool_resources"))
        with self.state.lock:
            payload = self.state.create_thread(body.get("metadata"))
            thread = self.state.threads[payload["id"]]
            thread.tool_resources = resources
            for message in checked:
                self._add(thread, message)
            return self.thread_json(thread)

    def thread(self, thread_id: str) -> _Thread:
        """Return a thread.

        Raises:
            ApiError: 404 if there is none.
        """
        return self.state._thread(thread_id)

    def thread_json(self, thread: _Thread) -> JSON:
        """The thread as the API's `ThreadObject`."""
        return {
            "id": thread.id,
            "object": "thread",
            "created_at": thread.created_at,
            "tool_resources": thread.tool_resources,
            "metadata": thread.metadata,
        }

    def modify_thread(self, thread_id: str, body: JSON) -> JSON:
        """Replace a thread's metadata and tool resources, as given."""
        with self.state.lock:
            thread = self.thread(thread_id)
            if "metadata" in body:
                thread.metadata = check_metadata(body["metadata"])
            if "tool_resources" in body:
                thread.tool_resources = _tool_resources(body["tool_resources"])
            return self.thread_json(thread)

    def delete_thread(self, thread_id: str) -> JSON:
        """Forget a thread, its messages and its runs."""
        with self.state.lock:
            thread = self.thread(thread_id)
            del self.state.threads[thread_id]
            for run in thread.runs:
                self.state.runs.pop(run.id, None)
            return {"id": thread_id, "object": "thread.deleted", "deleted": True}

    # -- messages -------------------------------------------------------------

    def create_message(self, thread_id: str, body: JSON) -> JSON:
        """Add a message from a `CreateMessageRequest` body.

        Raises:
            ApiError: 400 while a run on the thread is active.
        """
        message = check_message(body, None)
        with self.state.lock:
            thread = self.thread(thread_id)
            self._check_message_allowed(thread)
            return self._add(thread, message)

    def add_messages(self, thread_id: str, messages: object) -> None:
        """Add a run's `additional_messages` to its thread, before the run."""
        if messages is None:
            return
        if not isinstance(messages, list):
            raise _invalid("additional_messages", "expected an array of messages.")
        checked = [
            check_message(m, f"additional_messages[{i}]")
            for i, m in enumerate(messages)
        ]
        with self.state.lock:
            thread = self.thread(thread_id)
            for message in checked:
                self._add(thread, message)

    def _add(
        self,
        thread: _Thread,
        message: JSON,
        *,
        run: Run | None = None,
        status: str = "completed",
        now: float | None = None,
        message_id: str | None = None,
    ) -> JSON:
        created = int(self.state.clock.now() if now is None else now)
        payload = {
            "id": message_id or new_id("msg"),
            "object": "thread.message",
            "created_at": created,
            "thread_id": thread.id,
            "status": status,
            "incomplete_details": (
                {"reason": "max_tokens"} if status == "incomplete" else None
            ),
            "completed_at": created if status == "completed" else None,
            "incomplete_at": created if status == "incomplete" else None,
            "role": message["role"],
            "content": message["content"],
            "assistant_id": None if run is None else run.fields["assistant_id"],
            "run_id": None if run is None else run.id,
            "attachments": message["attachments"],
            "metadata": message["metadata"],
        }
        thread.messages.append(payload)
        return payload

    def _append_reply(self, run: Run, now: float) -> None:
        if run.status not in ("completed", "incomplete"):
            return
        thread = self.state.threads.get(run.thread_id)
        if thread is None:
            return
        message_id = next(
            (
                step.details["message_creation"]["message_id"]
                for step in run.steps
                if step.details["type"] == "message_creation"
            ),
            None,
        )
        reply = {
            "role": "assistant",
            "content": [_text(run.script.reply)],
            "attachments": [],
            "metadata": {},
        }
        self._add(
            thread, reply, run=run, status=run.status, now=now, message_id=message_id
        )

    def _settle(self, thread: _Thread) -> None:
        # Runs end lazily: bring the thread's runs up to date so their
        # replies are in before the messages are read.
        now = self.state.clock.now()
        for run in thread.runs:
            if run.status not in TERMINAL:
                run.advance(now)

    def list_messages(
        self, thread_id: str, *, run_id: str | None, **params: Any
    ) -> JSON:
        """One page of a thread's messages as the API's `ListMessagesResponse`."""
        with self.state.lock:
            thread = self.thread(thread_id)
            self._settle(thread)
            messages = [
                m for m in thread.messages if run_id is None or m["run_id"] == run_id
            ]
            data, has_more = cut_page(messages, lambda m: m["id"], **params)
            return {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": has_more,
            }

    def message(self, thread_id: str, message_id: str) -> JSON:
        """Return one message.

        Raises:
            ApiError: 404 if the thread or message does not exist.
        """
        with self.state.lock:
            thread = self.thread(thread_id)
            self._settle(thread)
            for message in thread.messages:
                if message["id"] == message_id:
                    return message
            raise ApiError(404, f"No message found with id '{message_id}'.")

    def modify_message(self, thread_id: str, message_id: str, body: JSON) -> JSON:
        """Replace a message's metadata."""
        with self.state.lock:
            message = self.message(thread_id, message_id)
            if "metadata" in body:
                message["metadata"] = check_metadata(body["metadata"])
            return message

    def delete_message(self, thread_id: str, message_id: str) -> JSON:
        """Remove a message from its thread."""
        with self.state.lock:
            message = self.message(thread_id, message_id)
            self.thread(thread_id).messages.remove(message)
            return {
                "id": message_id,
                "object": "thread.message.deleted",
                "deleted": True,
            }


def _invalid(param: str, message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, f"Invalid '{param}': {message}", param=param, code=code)


def _text(value: str) -> JSON:
    return {"type": "text", "text": {"value": value, "annotations": []}}


def check_message(body: object, where: str | None) -> JSON:
    """Check a `CreateMessageRequest` and return it with content as stored.

    Args:
        body: The request's message.
        where: Its place in the request (`messages[0]`), `None` for the body.

    Raises:
        ApiError: 400 for what the API refuses.
    """
    at = f"{where}." if where else ""
    if not isinstance(body, dict):
        raise _invalid(where or "body", "expected a message object.")
    for key in body:
        if key not in _MESSAGE_KEYS:
            raise ApiError(400, f"Unrecognized request argument supplied: {at}{key}")
    for key in ("role", "content"):
        if key not in body:
            raise ApiError(
                400,
                f"Missing required parameter: '{at}{key}'.",
                param=f"{at}{key}",
                code="missing_required_parameter",
            )
    if body["role"] not in ("user", "assistant"):
        raise _invalid(
            f"{at}role",
            f"expected one of 'user' or 'assistant', got {body['role']!r}.",
        )
    attachments = body.get("attachments") or []
    if not isinstance(attachments, list) or not all(
        isinstance(a, dict) and isinstance(a.get("file_id"), str) for a in attachments
    ):
        raise _invalid(f"{at}attachments", "expected an array of attachments.")
    return {
        "role": body["role"],
        "content": _content(body["content"], f"{at}content"),
        "attachments": attachments,
        "metadata": check_metadata(body.get("metadata"), f"{at}metadata"),
    }


def _content(content: object, param: str) -> list[JSON]:
    if isinstance(content, str):
        return [_text(content)]
    if not isinstance(content, list) or not content:
        raise _invalid(
            param, "expected a string or an array of at least one content part."
        )
    parts = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in _PART_TYPES:
            raise _invalid(f"{param}[{i}].type", f"unknown content type {kind!r}.")
        assert isinstance(part, dict)
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise _invalid(f"{param}[{i}].text", "expected a string.")
            parts.append(_text(part["text"]))
        elif not isinstance(part.get(kind), dict):
            raise _invalid(f"{param}[{i}].{kind}", "expected an object.")
        else:
            parts.append({"type": kind, kind: part[kind]})
    return parts


def _tool_resources(resources: object) -> JSON:
    if resources is None:
        return {}
    if not isinstance(resources, dict) or not resources.keys() <= {
        "code_interpreter",
        "file_search",
    }:
        raise _invalid("tool_resources", "expected code_interpreter or file_search.")
    stored = {}
    if isinstance(code := resources.get("code_interpreter"), dict):
        stored["code_interpreter"] = {"file_ids": list(code.get("file_ids") or [])}
    if isinstance(search := resources.get("file_search"), dict):
        # The request-side `vector_stores` helper makes a store; it is never
        # echoed back, only the ids are.
        ids = list(search.get("vector_store_ids") or [])
        ids += [new_id("vs") for _ in search.get("vector_stores") or []]
        stored["file_search"] = {"vector_store_ids": ids}
    return stored


# -- the endpoints --------------------------------------------------------------

CONVERSATIONS = web.AppKey("conversations", Conversations)


def routes() -> list[web.RouteDef]:
    """The Threads and Messages endpoints, for the API sub-application."""
    return [
        web.get("/threads/{thread_id}", _get_thread),
        web.post("/threads/{thread_id}", _modify_thread),
        web.delete("/threads/{thread_id}", _delete_thread),
        web.get("/threads/{thread_id}/messages", _list_messages),
        web.post("/threads/{thread_id}/messages", _create_message),
        web.get("/threads/{thread_id}/messages/{message_id}", _get_message),
        web.post("/threads/{thread_id}/messages/{message_id}", _modify_message),
        web.delete("/threads/{thread_id}/messages/{message_id}", _delete_message),
    ]


async def body_of(request: web.Request, allowed: frozenset[str]) -> JSON:
    """The JSON object body of *request*, with only *allowed* keys."""
    try:
        body = await request.json() if request.body_exists else {}
    except ValueError:
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. The OpenAI API "
            "expects a JSON payload.",
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    for key in body:
        if key not in allowed:
            raise ApiError(400, f"Unrecognized request argument supplied: {key}")
    return body


def _conversations(request: web.Request) -> Conversations:
    return request.config_dict[CONVERSATIONS]


async def _get_thread(request: web.Request) -> web.Response:
    conversations = _conversations(request)
    with conversations.state.lock:
        thread = conversations.thread(request.match_info["thread_id"])
        return web.json_response(conversations.thread_json(thread))


async def _modify_thread(request: web.Request) -> web.Response:
    body = await body_of(request, frozenset({"metadata", "tool_resources"}))
    payload = _conversations(request).modify_thread(
        request.match_info["thread_id"], body
    )
    return web.json_response(payload)


async def _delete_thread(request: web.Request) -> web.Response:
    payload = _conversations(request).delete_thread(request.match_info["thread_id"])
    return web.json_response(payload)


async def _create_message(request: web.Request) -> web.Response:
    body = await body_of(request, _MESSAGE_KEYS)
    payload = _conversations(request).create_message(
        request.match_info["thread_id"], body
    )
    return web.json_response(payload)


async def _list_messages(request: web.Request) -> web.Response:
    from ._app import _page_params  # noqa: PLC0415 - _app imports this module

    params = _page_params(request)
    run_id = request.query.get("run_id")
    payload = _conversations(request).list_messages(
        request.match_info["thread_id"], run_id=run_id, **params
    )
    return web.json_response(payload)


async def _get_message(request: web.Request) -> web.Response:
    info = request.match_info
    payload = _conversations(request).message(info["thread_id"], info["message_id"])
    return web.json_response(payload)


async def _modify_message(request: web.Request) -> web.Response:
    body = await body_of(request, frozenset({"metadata"}))
    info = request.match_info
    payload = _conversations(request).modify_message(
        info["thread_id"], info["message_id"], body
    )
    return web.json_response(payload)


async def _delete_message(request: web.Request) -> web.Response:
    info = request.match_info
    payload = _conversations(request).delete_message(
        info["thread_id"], info["message_id"]
    )
    return web.json_response(payload)
