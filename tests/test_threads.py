"""client.threads and client.messages against the emulator, over real HTTP.

Also the emulator's side of a conversation: the shapes it answers (checked
against ``threads-messages.openapi.json``), the reply a run appends, the
thread lock, and the official ``openai`` client against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _spec import THREADS, validator
from aiohttp import web

from openai_runs import RunsClient, WatchPolicy
from openai_runs import exceptions as exc
from openai_runs.models import (
    Attachment,
    CodeInterpreterTool,
    FunctionDefinition,
    FunctionTool,
    ImageFile,
    ImageFileContent,
    ImageUrl,
    ImageUrlContent,
    MessageRequest,
    MessageStatus,
    TextContent,
    TextPart,
    ThreadRequest,
)
from openai_runs.testing import Emulator, ManualClock, RunScript

POLICY = WatchPolicy(initial=0.01, multiplier=1.5, maximum=0.03, jitter=0.0)
THREAD = validator("ThreadObject", THREADS)
MESSAGE = validator("MessageObject", THREADS)
MESSAGES = validator("ListMessagesResponse", THREADS)
DELETED_THREAD = validator("DeleteThreadResponse", THREADS)
DELETED_MESSAGE = validator("DeleteMessageResponse", THREADS)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


@contextlib.asynccontextmanager
async def emulated(
    **options: Any,
) -> AsyncIterator[tuple[Emulator, RunsClient, list[tuple[str, str, Any]]]]:
    """An emulator that records every API request, and a client pointed at it."""
    emu = Emulator(**options)
    seen: list[tuple[str, str, Any]] = []

    @web.middleware
    async def record(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if request.path.startswith("/v1/"):
            raw = await request.read()
            seen.append((request.method, request.path, json.loads(raw or b"null")))
        return await handler(request)

    emu.app.middlewares.append(record)
    async with emu, RunsClient(base_url=emu.url, api_key=emu.api_key) as client:
        yield emu, client, seen


async def raw(
    emu: Emulator, method: str, path: str, *, status: int = 200, **kwargs: Any
) -> Any:
    """One request to the emulator without the SDK; returns the JSON body."""
    headers = {"Authorization": f"Bearer {emu.api_key}", "OpenAI-Beta": "assistants=v2"}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, emu.url + path, headers=headers, **kwargs) as resp,
    ):
        body = await resp.json()
        assert resp.status == status, body
        return body


# --- threads -------------------------------------------------------------------


def test_thread_lifecycle() -> None:
    """threads.create/retrieve/update/delete send the API's bodies and parse
    its answers; a deleted thread is then 404."""

    async def main() -> None:
        async with emulated() as (_, client, seen):
            thread = await client.threads.create(
                messages=[MessageRequest(role="user", content="Hi")],
                metadata={"user": "u1"},
                tool_resources={"code_interpreter": {"file_ids": ["file_1"]}},
            )
            assert thread.id.startswith("thread_")
            assert thread.metadata == {"user": "u1"}
            assert thread.tool_resources == {
                "code_interpreter": {"file_ids": ["file_1"]}
            }
            assert seen[-1][2] == {
                "messages": [{"role": "user", "content": "Hi"}],
                "tool_resources": {"code_interpreter": {"file_ids": ["file_1"]}},
                "metadata": {"user": "u1"},
            }
            assert await client.threads.retrieve(thread.id) == thread
            updated = await client.threads.update(thread.id, metadata={"k": "v"})
            assert updated.metadata == {"k": "v"}
            assert seen[-1][:2] == ("POST", f"/v1/threads/{thread.id}")
            deleted = await client.threads.delete(thread.id)
            assert (deleted.id, deleted.deleted) == (thread.id, True)
            assert seen[-1][0] == "DELETE"
            with pytest.raises(exc.NotFoundError):
                await client.threads.retrieve(thread.id)

    run(main())


def test_empty_thread_sends_an_empty_body() -> None:
    """threads.create() with nothing sends ``{}`` and gets an empty thread."""

    async def main() -> None:
        async with emulated() as (_, client, seen):
            thread = await client.threads.create()
            assert seen == [("POST", "/v1/threads", {})]
            page = await client.messages.list(thread.id)
            assert (page.data, page.first_id, page.has_more) == ([], None, False)

    run(main())


# --- messages ------------------------------------------------------------------


def test_message_create_retrieve_list() -> None:
    """messages.create sends a string or parts, and the message comes back with
    the content as the API shapes it; retrieve and list find it."""

    async def main() -> None:
        async with emulated() as (_, client, seen):
            thread = await client.threads.create()
            first = await client.messages.create(thread.id, content="Hello")
            assert seen[-1][2] == {"role": "user", "content": "Hello"}
            assert (first.role, first.text, first.run_id) == ("user", "Hello", None)
            assert first.status is MessageStatus.COMPLETED
            second = await client.messages.create(
                thread.id,
                role="assistant",
                content=[
                    TextContent(text="Look: "),
                    ImageFileContent(image_file=ImageFile(file_id="file_1")),
                    ImageUrlContent(
                        image_url=ImageUrl(url="https://x.test/a.png", detail="low")
                    ),
                ],
                attachments=[
                    Attachment(file_id="file_2", tools=[CodeInterpreterTool()])
                ],
                metadata={"k": "v"},
            )
            assert seen[-1][2] == {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Look: "},
                    {"type": "image_file", "image_file": {"file_id": "file_1"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://x.test/a.png", "detail": "low"},
                    },
                ],
                "attachments": [
                    {"file_id": "file_2", "tools": [{"type": "code_interpreter"}]}
                ],
                "metadata": {"k": "v"},
            }
            assert [type(p) for p in second.content] == [
                TextPart,
                ImageFileContent,
                ImageUrlContent,
            ]
            assert second.text == "Look: "
            assert await client.messages.retrieve(thread.id, first.id) == first
            page = await client.messages.list(thread.id)
            assert [m.id for m in page.data] == [second.id, first.id]
            ascending = await client.messages.list(thread.id, order="asc", limit=1)
            assert [m.id for m in ascending.data] == [first.id]
            assert ascending.has_more
            every = [m.id async for m in client.messages.list(thread.id, limit=1)]
            assert every == [second.id, first.id]
            assert seen[-1][1].endswith("/messages")

    run(main())


def test_update_and_delete_message() -> None:
    """messages.update sets metadata; messages.delete removes the message."""

    async def main() -> None:
        async with emulated() as (_, client, _seen):
            thread = await client.threads.create()
            message = await client.messages.create(thread.id, content="x")
            updated = await client.messages.update(
                thread.id, message.id, metadata={"a": "b"}
            )
            assert updated.metadata == {"a": "b"}
            deleted = await client.messages.delete(thread.id, message.id)
            assert deleted.deleted
            assert (await client.messages.list(thread.id)).data == []
            with pytest.raises(exc.NotFoundError):
                await client.messages.retrieve(thread.id, message.id)

    run(main())


BAD_CALLS: list[tuple[str, Callable[[RunsClient], Awaitable[Any]], str]] = [
    ("empty thread id", lambda c: c.threads.retrieve(""), "thread_id"),
    ("slash in thread id", lambda c: c.threads.delete("a/b"), "thread_id"),
    ("bad metadata", lambda c: c.threads.create(metadata={"k": 1}), "metadata"),  # type: ignore[dict-item]
    (
        "17 metadata keys",
        lambda c: c.threads.update("t", metadata={str(i): "v" for i in range(17)}),
        "metadata",
    ),
    (
        "unknown tool resource",
        lambda c: c.threads.create(tool_resources={"web": {}}),
        "tool_resources",
    ),
    (
        "thread message dict without content",
        lambda c: c.threads.create(messages=[{"role": "user"}]),
        "messages",
    ),
    (
        "thread message role",
        lambda c: c.threads.create(
            messages=[MessageRequest(role="system", content="x")]
        ),
        "messages.role",
    ),
    ("role", lambda c: c.messages.create("t", role="system", content="x"), "role"),
    ("empty content", lambda c: c.messages.create("t", content=""), "content"),
    ("no parts", lambda c: c.messages.create("t", content=[]), "content"),
    (
        "dict part without text",
        lambda c: c.messages.create("t", content=[{"type": "text"}]),
        "content",
    ),
    ("content of None", lambda c: c.messages.create("t", content=None), "content"),  # type: ignore[arg-type]
    (
        "image url",
        lambda c: c.messages.create(
            "t", content=[ImageUrlContent(image_url=ImageUrl(url="file:///etc"))]
        ),
        "content.image_url.url",
    ),
    (
        "attachment",
        lambda c: c.messages.create(
            "t", content="x", attachments=[Attachment(file_id="", tools=[])]
        ),
        "attachments.file_id",
    ),
    ("limit", lambda c: c.messages.list("t", limit=0).first_page(), "limit"),
    ("order", lambda c: c.messages.list("t", order="up").first_page(), "order"),
    ("run id", lambda c: c.messages.list("t", run_id="r?x").first_page(), "run_id"),
    ("message id", lambda c: c.messages.retrieve("t", ".."), "message_id"),
]


@pytest.mark.parametrize(
    ("call", "param"),
    [pytest.param(call, param, id=name) for name, call, param in BAD_CALLS],
)
def test_invalid_arguments_are_refused_before_sending(
    call: Callable[[RunsClient], Awaitable[Any]], param: str
) -> None:
    """Bad ids, metadata, roles, content, limits and orders raise
    InvalidRequestError naming the argument, and nothing is sent."""

    async def main() -> None:
        async with emulated() as (_, client, seen):
            with pytest.raises(exc.InvalidRequestError) as raised:
                await call(client)
            assert raised.value.param == param
            assert seen == []

    run(main())


# --- a run's reply and the thread lock ------------------------------------------


def weather_tool() -> FunctionTool:
    return FunctionTool(function=FunctionDefinition(name="get_weather"))


def test_completed_run_appends_its_scripted_reply() -> None:
    """A run that completes adds one assistant message with the script's reply,
    its run id and the id of its message-creation step."""

    async def main() -> None:
        script = RunScript.completed(0.02, reply="Paris is sunny.")
        async with emulated(default_script=script) as (_, client, _seen):
            thread = await client.threads.create()
            await client.messages.create(thread.id, content="Weather?")
            done = await client.runs.create_and_poll(
                thread.id, assistant_id="asst_1", policy=POLICY
            )
            assert done.status == "completed"
            page = await client.messages.list(thread.id, run_id=done.id)
            assert [(m.role, m.text) for m in page.data] == [
                ("assistant", "Paris is sunny.")
            ]
            reply = page.data[0]
            assert (reply.run_id, reply.assistant_id) == (done.id, "asst_1")
            steps = await client.runs.steps.list(thread.id, done.id)
            creation = [s for s in steps.data if s.type == "message_creation"]
            assert creation[0].step_details.message_creation.message_id == reply.id  # type: ignore[union-attr]
            everything = await client.messages.list(thread.id, order="asc")
            assert [m.role for m in everything.data] == ["user", "assistant"]

    run(main())


@pytest.mark.parametrize(
    ("script", "replies"),
    [
        (RunScript.failed(0.0), 0),
        (RunScript.incomplete(0.0), 1),
        (RunScript.endless(), 0),
    ],
    ids=["failed", "incomplete", "still running"],
)
def test_only_a_finished_answer_is_appended(script: RunScript, replies: int) -> None:
    """A failed or running run adds no message; an incomplete one adds its
    reply marked incomplete."""

    async def main() -> None:
        clock = ManualClock()
        async with emulated(default_script=script, clock=clock) as (_, client, _s):
            created = await client.runs.create_thread_and_run(assistant_id="asst_1")
            clock.advance(5)
            page = await client.messages.list(created.thread_id)
            assert len(page.data) == replies
            if replies:
                assert page.data[0].status == MessageStatus.INCOMPLETE
                assert page.data[0].incomplete_details is not None

    run(main())


def test_create_thread_and_run_and_additional_messages_land_in_the_thread() -> None:
    """The thread of create_thread_and_run and a run's additional_messages are
    added to the thread before the run's reply."""

    async def main() -> None:
        clock = ManualClock()
        script = RunScript.completed(1, reply="ok")
        async with emulated(default_script=script, clock=clock) as (_, client, _s):
            first = await client.runs.create_thread_and_run(
                assistant_id="asst_1",
                thread=ThreadRequest(
                    messages=[MessageRequest(role="user", content="a")]
                ),
            )
            clock.advance(2)
            await client.runs.create(
                first.thread_id,
                assistant_id="asst_1",
                additional_messages=[MessageRequest(role="user", content="b")],
            )
            clock.advance(2)
            page = await client.messages.list(first.thread_id, order="asc")
            assert [m.text for m in page.data] == ["a", "ok", "b", "ok"]

    run(main())


@pytest.mark.parametrize(
    "script",
    [
        RunScript.endless(),
        RunScript.requires_action(after=0.0),
    ],
    ids=["in_progress", "requires_action"],
)
def test_thread_lock_raises_a_typed_error(script: RunScript) -> None:
    """While a run is active, runs.create and messages.create raise
    ThreadLockedError (a BadRequestError) naming the thread and the run, with
    the live API's words; once it has ended both work again."""

    async def main() -> None:
        clock = ManualClock()
        async with emulated(default_script=script, clock=clock) as (emu, client, _s):
            active = await client.runs.create_thread_and_run(
                assistant_id="asst_1", tools=[weather_tool()]
            )
            clock.advance(0.1)
            t = active.thread_id
            with pytest.raises(exc.ThreadLockedError) as on_message:
                await client.messages.create(t, content="more")
            assert isinstance(on_message.value, exc.BadRequestError)
            assert on_message.value.status_code == 400
            assert (on_message.value.thread_id, on_message.value.run_id) == (
                t,
                active.id,
            )
            assert str(on_message.value).startswith(
                f"Can't add messages to {t} while a run {active.id} is active."
            )
            with pytest.raises(exc.ThreadLockedError) as on_run:
                await client.runs.create(t, assistant_id="asst_1")
            assert on_run.value.run_id == active.id
            assert on_run.value.message == (
                f"Thread {t} already has an active run {active.id}."
            )
            emu.cancel(active.id)
            with pytest.raises(exc.ThreadLockedError):  # still cancelling
                await client.messages.create(t, content="more")
            clock.advance(5)
            await client.messages.create(t, content="more")
            emu.set_default_script(RunScript.completed(1))
            await client.runs.create(t, assistant_id="asst_1")

    run(main())


@pytest.mark.parametrize(
    "message",
    [
        "Thread thread_1 already has an active run run_2",
        "Can't add messages to thread_1 while a run run_2 is active.",
    ],
)
def test_lock_message_without_the_period_is_still_recognised(message: str) -> None:
    """error_from_response reads the thread and run ids out of either message."""
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}})

    error = exc.error_from_response(400, {}, body.encode())

    assert isinstance(error, exc.ThreadLockedError)
    assert (error.thread_id, error.run_id) == ("thread_1", "run_2")


def test_other_400s_stay_plain_bad_requests() -> None:
    """A 400 of another kind is a BadRequestError, not a ThreadLockedError."""
    body = b'{"error": {"message": "Invalid \'limit\'", "type": "x"}}'

    error = exc.error_from_response(400, {}, body)

    assert type(error) is exc.BadRequestError


# --- the emulator's answers, against the spec -------------------------------------


def test_emulator_answers_validate_against_the_spec() -> None:
    """Every thread and message endpoint answers with its schema's shape."""

    async def main() -> None:
        clock = ManualClock()
        emu = Emulator(clock=clock, default_script=RunScript.completed(1, reply="R"))
        async with emu:
            thread = await raw(
                emu,
                "POST",
                "/threads",
                json={
                    "messages": [
                        {"role": "user", "content": "x", "metadata": {"a": "b"}},
                        {
                            "role": "user",
                            "content": [
                                {"type": "text", "text": "y"},
                                {
                                    "type": "image_url",
                                    "image_url": {"url": "https://x"},
                                },
                            ],
                        },
                    ],
                    "tool_resources": {
                        "file_search": {"vector_stores": [{"file_ids": ["f"]}]}
                    },
                },
            )
            THREAD.validate(thread)
            assert len(thread["tool_resources"]["file_search"]["vector_store_ids"]) == 1
            t = thread["id"]
            THREAD.validate(await raw(emu, "GET", f"/threads/{t}"))
            await raw(emu, "POST", f"/threads/{t}/runs", json={"assistant_id": "a"})
            clock.advance(2)
            page = await raw(emu, "GET", f"/threads/{t}/messages")
            MESSAGES.validate(page)
            assert [m["content"][0]["text"]["value"] for m in page["data"]] == [
                "R",
                "y",
                "x",
            ]
            m = page["data"][0]["id"]
            MESSAGE.validate(await raw(emu, "GET", f"/threads/{t}/messages/{m}"))
            MESSAGE.validate(
                await raw(emu, "POST", f"/threads/{t}/messages/{m}", json={})
            )
            DELETED_MESSAGE.validate(
                await raw(emu, "DELETE", f"/threads/{t}/messages/{m}")
            )
            DELETED_THREAD.validate(await raw(emu, "DELETE", f"/threads/{t}"))

    run(main())


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"role": "system", "content": "x"}, "role"),
        ({"role": "user"}, "content"),
        ({"role": "user", "content": []}, "content"),
        ({"role": "user", "content": [{"type": "audio"}]}, "content[0].type"),
        ({"role": "user", "content": "x", "metadata": {"k": 1}}, "metadata.k"),
        ({"role": "user", "content": "x", "file_ids": []}, None),
    ],
)
def test_emulator_refuses_bad_messages(body: dict[str, Any], param: str) -> None:
    """The emulator answers 400 for a message the API refuses."""

    async def main() -> None:
        async with Emulator() as emu:
            t = emu.create_thread()
            error = await raw(
                emu, "POST", f"/threads/{t}/messages", json=body, status=400
            )
            assert error["error"]["param"] == param

    run(main())


def test_official_openai_client_works_with_threads_and_messages() -> None:
    """The official openai client creates, reads, updates and deletes threads
    and messages, and reads a run's reply, against the emulator."""
    openai = pytest.importorskip("openai")

    async def main() -> None:
        script = RunScript.completed(0.05, reply="Hello from the run.")
        async with (
            Emulator(default_script=script, poll_after_ms=10) as emu,
            openai.AsyncOpenAI(
                base_url=emu.url, api_key=emu.api_key, max_retries=0
            ) as client,
        ):
            threads = client.beta.threads
            thread = await threads.create(
                messages=[{"role": "user", "content": "Hi"}], metadata={"a": "b"}
            )
            assert (await threads.retrieve(thread.id)).metadata == {"a": "b"}
            updated = await threads.update(thread.id, metadata={"c": "d"})
            assert updated.metadata == {"c": "d"}
            message = await threads.messages.create(
                thread.id, role="user", content=[{"type": "text", "text": "Again"}]
            )
            assert message.content[0].text.value == "Again"  # type: ignore[union-attr]
            done = await threads.runs.create_and_poll(
                thread_id=thread.id, assistant_id="asst_1"
            )
            assert done.status == "completed"
            replies = await threads.messages.list(thread.id, run_id=done.id)
            assert replies.data[0].content[0].text.value == "Hello from the run."  # type: ignore[union-attr]
            listed = [m.id async for m in threads.messages.list(thread.id, limit=1)]
            assert len(listed) == 3
            got = await threads.messages.retrieve(listed[-1], thread_id=thread.id)
            assert got.content[0].text.value == "Hi"  # type: ignore[union-attr]
            await threads.messages.update(
                got.id, thread_id=thread.id, metadata={"x": "y"}
            )
            assert (await threads.messages.delete(got.id, thread_id=thread.id)).deleted
            endless = emu.create_run(thread.id, script=RunScript.endless())
            with pytest.raises(openai.BadRequestError, match="is active"):
                await threads.messages.create(thread.id, role="user", content="x")
            emu.cancel(endless["id"])
            assert (await threads.delete(thread.id)).deleted

    with warnings.catch_warnings():
        # The openai client marks the Assistants API deprecated.
        warnings.simplefilter("ignore", DeprecationWarning)
        run(main())


def test_create_thread_takes_no_body() -> None:
    """POST /threads with an empty body (createThread's curl example sends
    ``-d ''``) creates an empty thread."""

    async def main() -> None:
        async with Emulator() as emu:
            thread = await raw(emu, "POST", "/threads", data=b"")
            THREAD.validate(thread)

    run(main())


def test_readme_conversation_turn_runs() -> None:
    """The README's conversation block (thread, message, a run with a tool,
    the reply) runs as written and prints the assistant's reply."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## A conversation turn", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    result = subprocess.run(
        [sys.executable, "-c", code.group(1)],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "completed -> It is 21 °C in Paris."
