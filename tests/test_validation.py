"""Input the API would refuse is refused before anything is sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from _recorder import (
    INCLUDE,
    api,
)

from openai_runs import RunsClient
from openai_runs import exceptions as exc
from openai_runs.models import (
    MessageRequest,
    ThreadRequest,
    ToolOutput,
)

BAD_CALLS: list[tuple[str, Callable[[RunsClient], Any], str]] = [
    ("empty thread id", lambda c: c.runs.retrieve("", "run_1"), "thread_id"),
    ("slash in run id", lambda c: c.runs.retrieve("thread_1", "run/../x"), "run_id"),
    ("dot-dot id", lambda c: c.runs.cancel("thread_1", ".."), "run_id"),
    ("question mark", lambda c: c.runs.retrieve("thread_1?x=1", "run_1"), "thread_id"),
    ("hash", lambda c: c.runs.retrieve("thread_1", "run#1"), "run_id"),
    ("space", lambda c: c.runs.retrieve("thread 1", "run_1"), "thread_id"),
    ("CRLF", lambda c: c.runs.retrieve("thread_1\r\nX: y", "run_1"), "thread_id"),
    ("percent", lambda c: c.runs.retrieve("thread_%2F", "run_1"), "thread_id"),
    ("non-string id", lambda c: c.runs.retrieve(123, "run_1"), "thread_id"),
    (
        "empty step id",
        lambda c: c.runs.steps.retrieve("thread_1", "run_1", ""),
        "step_id",
    ),
    (
        "17 metadata keys",
        lambda c: c.runs.update("t", "r", metadata={str(i): "v" for i in range(17)}),
        "metadata",
    ),
    (
        "long key",
        lambda c: c.runs.update("t", "r", metadata={"k" * 65: "v"}),
        "metadata",
    ),
    (
        "long value",
        lambda c: c.runs.update("t", "r", metadata={"k": "v" * 513}),
        "metadata",
    ),
    (
        "non-string value",
        lambda c: c.runs.update("t", "r", metadata={"k": 1}),
        "metadata",
    ),
    ("limit 0", lambda c: c.runs.steps.list("t", "r", limit=0).first_page(), "limit"),
    (
        "limit 101",
        lambda c: c.runs.steps.list("t", "r", limit=101).first_page(),
        "limit",
    ),
    (
        "limit bool",
        lambda c: c.runs.steps.list("t", "r", limit=True).first_page(),
        "limit",
    ),
    (
        "unknown order",
        lambda c: c.runs.steps.list("t", "r", order="up").first_page(),
        "order",
    ),
    (
        "unknown include",
        lambda c: c.runs.steps.list("t", "r", include=["x"]).first_page(),
        "include",
    ),
    (
        "include as str",
        lambda c: c.runs.steps.retrieve("t", "r", "s", include=INCLUDE),
        "include",
    ),
    (
        "unsafe cursor",
        lambda c: c.runs.steps.list("t", "r", after="a/b").first_page(),
        "after",
    ),
]


@pytest.mark.parametrize(
    ("call", "param"),
    [(c, p) for _, c, p in BAD_CALLS],
    ids=[n for n, _, _ in BAD_CALLS],
)
def test_bad_input_is_refused_before_sending(
    call: Callable[[RunsClient], Any], param: str
) -> None:
    """Each bad argument raises a typed ValueError naming it, and nothing is sent."""

    async def main() -> None:
        async with api() as (server, client):
            with pytest.raises(exc.InvalidRequestError) as info:
                await call(client)
        assert isinstance(info.value, ValueError)
        assert info.value.param == param
        assert server.seen == []

    asyncio.run(main())


def test_metadata_at_its_limits_is_sent() -> None:
    """Metadata of exactly 16 keys, 64-char keys and 512-char values is allowed."""
    metadata = {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}

    async def main() -> None:
        async with api() as (server, client):
            await client.runs.update("thread_1", "run_1", metadata=metadata)
        assert json.loads(server.seen[0].body) == {"metadata": metadata}

    asyncio.run(main())


BAD_CREATES: list[tuple[str, dict[str, Any], str]] = [
    ("temperature NaN", {"temperature": float("nan")}, "temperature"),
    ("temperature a string", {"temperature": "hot"}, "temperature"),
    ("prompt tokens a float", {"max_prompt_tokens": 300.5}, "max_prompt_tokens"),
    ("a tool dict without its function", {"tools": [{"type": "function"}]}, "tools"),
    ("tools as a string", {"tools": "code_interpreter"}, "tools"),
    ("a tool_choice of the wrong shape", {"tool_choice": {"bogus": 1}}, "tool_choice"),
    (
        "a truncation without type",
        {"truncation_strategy": {"x": 1}},
        "truncation_strategy",
    ),
    (
        "system role",
        {"additional_messages": [MessageRequest(role="system", content="x")]},
        "messages",
    ),
    (
        "message metadata",
        {
            "additional_messages": [
                MessageRequest(role="user", content="x", metadata={"k": "v" * 600})
            ]
        },
        "metadata",
    ),
    ("run metadata", {"metadata": {str(i): "v" for i in range(17)}}, "metadata"),
    ("unsafe assistant", {"assistant_id": "asst/../x"}, "assistant_id"),
]


@pytest.mark.parametrize(
    ("options", "param"),
    [(o, p) for _, o, p in BAD_CREATES],
    ids=[n for n, _, _ in BAD_CREATES],
)
def test_bad_create_is_refused_before_sending(
    options: dict[str, Any], param: str
) -> None:
    """Each out-of-range create option raises InvalidRequestError naming it; nothing is sent."""

    async def main() -> None:
        async with api() as (server, client):
            with pytest.raises(exc.InvalidRequestError) as info:
                await client.runs.create(
                    "thread_1", **{"assistant_id": "asst_1", **options}
                )
        assert info.value.param == param
        assert server.seen == []

    asyncio.run(main())


def test_create_thread_and_run_checks_the_thread() -> None:
    """The thread's metadata is checked before sending."""

    async def main() -> None:
        async with api() as (server, client):
            with pytest.raises(exc.InvalidRequestError):
                await client.runs.create_thread_and_run(
                    assistant_id="a", thread=ThreadRequest(metadata={"k" * 70: "v"})
                )
        assert server.seen == []

    asyncio.run(main())


@pytest.mark.parametrize(
    "outputs",
    [
        [{"tool_call_id": "c"}],
        "not a list",
        [ToolOutput(tool_call_id="", output="x")],
        [ToolOutput(tool_call_id="c", output=1)],
    ],
)
def test_bad_tool_outputs_are_refused(outputs: list[Any]) -> None:
    """Tool outputs that are not ToolOutputs with an id and a string are refused unsent."""

    async def main() -> None:
        async with api() as (server, client):
            with pytest.raises(exc.InvalidRequestError):
                await client.runs.submit_tool_outputs(
                    "thread_1", "run_1", tool_outputs=outputs
                )
        assert server.seen == []

    asyncio.run(main())


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": "2"}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
    ],
)
def test_bad_per_call_options_are_refused_before_sending(
    options: dict[str, Any], param: str
) -> None:
    """A per-call timeout or retry count that makes no sense is a typed error, unsent."""

    async def main() -> None:
        async with api() as (server, client):
            with pytest.raises(exc.InvalidRequestError) as info:
                await client.runs.retrieve("thread_1", "run_1", **options)
        assert info.value.param == param
        assert server.seen == []

    asyncio.run(main())


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": "2"}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
    ],
)
def test_bad_client_options_are_refused_at_construction(
    options: dict[str, Any], param: str
) -> None:
    """A client's timeout or retry count of the wrong type is a typed error too."""
    with pytest.raises(exc.InvalidRequestError) as info:
        RunsClient(api_key="sk-x", **options)
    assert info.value.param == param
