"""The emulator over loopback: shapes, lifecycles, errors, faults, pagination."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import aiohttp
import attrs
import pytest
from _spec import validator

from openai_runs.testing import (
    Emulator,
    Fault,
    ManualClock,
    Phase,
    RunScript,
    ScriptedCall,
    SystemClock,
)

INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"
RUN = validator("RunObject")
STEP = validator("RunStepObject")
RUNS = validator("ListRunsResponse")
STEPS = validator("ListRunStepsResponse")
ERROR = validator("ErrorResponse")
CODE = {"type": "code_interpreter"}
SEARCH = {"type": "file_search"}
WEATHER = {"type": "function", "function": {"name": "get_weather"}}


T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Api:
    """A thin caller of the emulator's API that checks shapes as it goes."""

    def __init__(self, emu: Emulator, session: aiohttp.ClientSession) -> None:
        self.emu = emu
        self.session = session
        self.headers = {
            "Authorization": f"Bearer {emu.api_key}",
            "OpenAI-Beta": "assistants=v2",
        }

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
        status: int = 200,
    ) -> Any:
        async with self.session.request(
            method,
            self.emu.url + path,
            json=json,
            params=params,
            headers=self.headers if headers is None else headers,
        ) as response:
            body = await response.json()
            assert response.status == status, body
            assert response.headers["x-request-id"].startswith("req_")
            if status >= 400:
                ERROR.validate(body)
            self.last = response
            return body

    async def create(self, thread_id: str | None = None, **body: Any) -> Any:
        body.setdefault("assistant_id", "asst_1")
        if thread_id is None:
            return await self.call("POST", "/threads/runs", json=body)
        return await self.call("POST", f"/threads/{thread_id}/runs", json=body)

    async def get(self, r: Any) -> Any:
        body = await self.call("GET", f"/threads/{r['thread_id']}/runs/{r['id']}")
        RUN.validate(body)
        return body

    async def steps(self, r: Any, **params: Any) -> Any:
        path = f"/threads/{r['thread_id']}/runs/{r['id']}/steps"
        body = await self.call("GET", path, params=params)
        if body["data"]:
            STEPS.validate(body)
        return body


@contextlib.asynccontextmanager
async def emulated(**options: Any) -> AsyncIterator[tuple[Emulator, Api]]:
    options.setdefault("clock", ManualClock())
    async with Emulator(**options) as emu, aiohttp.ClientSession() as session:
        yield emu, Api(emu, session)


def advance(emu: Emulator, seconds: float) -> None:
    clock = emu.clock
    assert isinstance(clock, ManualClock)
    clock.advance(seconds)


# -- shapes and lifecycles ----------------------------------------------------


def test_create_thread() -> None:
    """POST /threads creates a thread with a thread_ id and its metadata."""

    async def main() -> None:
        async with emulated() as (_, api):
            thread = await api.call("POST", "/threads", json={"metadata": {"a": "b"}})
            assert thread["id"].startswith("thread_")
            assert thread["object"] == "thread"
            assert thread["metadata"] == {"a": "b"}

    run(main())


def test_create_run_on_thread_and_with_thread() -> None:
    """Both create calls answer a queued RunObject that echoes the request."""

    async def main() -> None:
        async with emulated() as (_, api):
            thread = await api.call("POST", "/threads", json={})
            on_thread = await api.create(
                thread["id"], instructions="Be brief.", metadata={"k": "v"}
            )
            with_thread = await api.create(thread={"messages": []}, tools=[CODE])
            for r in (on_thread, with_thread):
                RUN.validate(r)
                assert r["id"].startswith("run_")
                assert r["status"] == "queued"
                assert r["started_at"] is None
                assert r["usage"] is None
                assert r["expires_at"] == r["created_at"] + 600
            assert on_thread["thread_id"] == thread["id"]
            assert on_thread["instructions"] == "Be brief."
            assert on_thread["metadata"] == {"k": "v"}
            assert with_thread["thread_id"].startswith("thread_")
            assert with_thread["tools"] == [CODE]

    run(main())


def test_run_completes_on_schedule() -> None:
    """A run completes exactly when its script says, with timestamps and usage."""

    async def main() -> None:
        async with emulated(default_script=RunScript.completed(after=2)) as (emu, api):
            r = await api.create()
            assert (await api.get(r))["status"] == "in_progress"
            advance(emu, 1.99)
            middle = await api.get(r)
            assert middle["status"] == "in_progress"
            assert middle["started_at"] == r["created_at"]
            advance(emu, 0.01)
            done = await api.get(r)
            assert done["status"] == "completed"
            assert done["completed_at"] == r["created_at"] + 2
            assert done["usage"] == {
                "prompt_tokens": 120,
                "completion_tokens": 40,
                "total_tokens": 160,
            }
            assert done["expires_at"] is None
            steps = await api.steps(done)
            assert [s["type"] for s in steps["data"]] == ["message_creation"]
            assert steps["data"][0]["status"] == "completed"
            message = steps["data"][0]["step_details"]["message_creation"]
            assert message["message_id"].startswith("msg_")

    run(main())


def test_tool_steps_appear_as_the_run_progresses() -> None:
    """Code interpreter, file search and message steps appear one by one."""

    async def main() -> None:
        script = RunScript.completed(after=3)
        async with emulated(default_script=script) as (emu, api):
            r = await api.create(tools=[CODE, SEARCH])
            seen = []
            for _ in range(4):
                steps = await api.steps(r, order="asc")
                seen.append([(s["type"], s["status"]) for s in steps["data"]])
                advance(emu, 1)
            assert seen == [
                [("tool_calls", "in_progress")],
                [("tool_calls", "completed"), ("tool_calls", "in_progress")],
                [
                    ("tool_calls", "completed"),
                    ("tool_calls", "completed"),
                    ("message_creation", "in_progress"),
                ],
                [
                    ("tool_calls", "completed"),
                    ("tool_calls", "completed"),
                    ("message_creation", "completed"),
                ],
            ]
            code, search, _ = steps["data"]
            call = code["step_details"]["tool_calls"][0]
            assert call["id"].startswith("call_")
            assert call["code_interpreter"]["outputs"] == [
                {"type": "logs", "logs": "42.0\n"}
            ]
            found = search["step_details"]["tool_calls"][0]["file_search"]
            assert found["ranking_options"]["ranker"] == "default_2024_08_21"
            assert "content" not in found["results"][0]
            path = f"/threads/{r['thread_id']}/runs/{r['id']}/steps/{search['id']}"
            full = await api.call("GET", path, params={"include[]": INCLUDE})
            STEP.validate(full)
            results = full["step_details"]["tool_calls"][0]["file_search"]["results"]
            assert results[0]["content"][0]["type"] == "text"
            listed = await api.steps(r, order="asc", **{"include[]": INCLUDE})
            assert listed["data"][1] == full

    run(main())


def test_failed_run_reports_last_error() -> None:
    """A failing script ends the run failed with its last_error, step too."""

    async def main() -> None:
        script = RunScript.failed(after=1, code="rate_limit_exceeded", message="Slow.")
        async with emulated(default_script=script) as (emu, api):
            r = await api.create()
            advance(emu, 1)
            failed = await api.get(r)
            assert failed["status"] == "failed"
            assert failed["last_error"] == {
                "code": "rate_limit_exceeded",
                "message": "Slow.",
            }
            assert failed["failed_at"] == r["created_at"] + 1
            assert failed["completed_at"] is None
            (step,) = (await api.steps(r))["data"]
            assert step["status"] == "failed"
            assert step["failed_at"] == failed["failed_at"]
            assert step["last_error"]["code"] == "rate_limit_exceeded"

    run(main())


def test_incomplete_run_reports_reason() -> None:
    """An incomplete script ends the run incomplete with incomplete_details."""

    async def main() -> None:
        script = RunScript.incomplete(after=1, reason="max_prompt_tokens")
        async with emulated(default_script=script) as (emu, api):
            r = await api.create()
            advance(emu, 5)
            ended = await api.get(r)
            assert ended["status"] == "incomplete"
            assert ended["incomplete_details"] == {"reason": "max_prompt_tokens"}
            assert ended["usage"] is not None

    run(main())


def test_function_tools_require_action_then_resume() -> None:
    """Function tools lead to requires_action; tool outputs resume the run."""

    async def main() -> None:
        async with emulated() as (emu, api):
            r = await api.create(tools=[WEATHER])
            advance(emu, 0.5)
            waiting = await api.get(r)
            assert waiting["status"] == "requires_action"
            calls = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
            assert [c["function"]["name"] for c in calls] == ["get_weather"]
            (step,) = (await api.steps(r))["data"]
            assert step["status"] == "in_progress"
            assert step["step_details"]["tool_calls"][0]["function"]["output"] is None
            path = f"/threads/{r['thread_id']}/runs/{r['id']}/submit_tool_outputs"
            wrong = {"tool_outputs": [{"tool_call_id": "call_x", "output": "1"}]}
            await api.call("POST", path, json=wrong, status=400)
            outputs = [{"tool_call_id": calls[0]["id"], "output": "sunny"}]
            resumed = await api.call("POST", path, json={"tool_outputs": outputs})
            RUN.validate(resumed)
            assert resumed["status"] == "queued"
            assert resumed["required_action"] is None
            advance(emu, 0.5)
            assert (await api.get(r))["status"] == "completed"
            steps = (await api.steps(r, order="asc"))["data"]
            function = steps[0]["step_details"]["tool_calls"][0]["function"]
            assert function["output"] == "sunny"
            assert [s["type"] for s in steps] == ["tool_calls", "message_creation"]

    run(main())


def test_scripted_tool_calls_are_asked_for() -> None:
    """A requires_action phase asks for exactly the scripted function calls."""

    async def main() -> None:
        call = ScriptedCall("lookup_order", '{"id": 7}')
        script = RunScript.requires_action(call, after=0)
        async with emulated(default_script=script) as (_, api):
            r = await api.get(await api.create())
            (asked,) = r["required_action"]["submit_tool_outputs"]["tool_calls"]
            assert asked["function"] == {
                "name": "lookup_order",
                "arguments": '{"id": 7}',
            }

    run(main())


def test_run_left_in_requires_action_expires() -> None:
    """A run waiting for tool outputs past expires_at becomes expired."""

    async def main() -> None:
        async with emulated(expires_after=60) as (emu, api):
            r = await api.create(tools=[WEATHER])
            advance(emu, 59)
            assert (await api.get(r))["status"] == "requires_action"
            advance(emu, 1)
            expired = await api.get(r)
            assert expired["status"] == "expired"
            assert expired["expires_at"] == r["created_at"] + 60
            assert expired["required_action"] is None
            (step,) = (await api.steps(r))["data"]
            assert step["status"] == "expired"
            assert step["expired_at"] == expired["expires_at"]

    run(main())


def test_cancel_goes_through_cancelling() -> None:
    """A cancel answers cancelling and the run is cancelled after the delay."""

    async def main() -> None:
        script = RunScript.endless()
        async with emulated(default_script=script, cancel_delay=2) as (emu, api):
            r = await api.create()
            path = f"/threads/{r['thread_id']}/runs/{r['id']}/cancel"
            cancelling = await api.call("POST", path)
            RUN.validate(cancelling)
            assert cancelling["status"] == "cancelling"
            await api.call("POST", path, status=400)
            advance(emu, 1.9)
            assert (await api.get(r))["status"] == "cancelling"
            advance(emu, 0.1)
            cancelled = await api.get(r)
            assert cancelled["status"] == "cancelled"
            assert cancelled["cancelled_at"] == r["created_at"] + 2
            (step,) = (await api.steps(r))["data"]
            assert step["status"] == "cancelled"
            error = await api.call("POST", path, status=400)
            assert error["error"]["message"] == (
                "Cannot cancel run with status 'cancelled'."
            )

    run(main())


def test_cancel_after_the_end_is_refused() -> None:
    """Cancelling a completed run is a 400 with the API's message."""

    async def main() -> None:
        async with emulated() as (emu, api):
            r = await api.create()
            advance(emu, 10)
            path = f"/threads/{r['thread_id']}/runs/{r['id']}/cancel"
            error = await api.call("POST", path, status=400)
            assert error["error"] == {
                "message": "Cannot cancel run with status 'completed'.",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }

    run(main())


def test_tool_outputs_only_when_required() -> None:
    """Submitting tool outputs to a run not in requires_action is a 400."""

    async def main() -> None:
        async with emulated() as (_, api):
            r = await api.create()
            path = f"/threads/{r['thread_id']}/runs/{r['id']}/submit_tool_outputs"
            error = await api.call("POST", path, json={"tool_outputs": []}, status=400)
            assert "do not accept tool outputs" in error["error"]["message"]

    run(main())


def test_endless_run_never_ends() -> None:
    """An endless script stays in progress until cancelled."""

    async def main() -> None:
        options = {"default_script": RunScript.endless(), "expires_after": None}
        async with emulated(**options) as (emu, api):
            r = await api.create()
            advance(emu, 10**7)
            endless = await api.get(r)
            assert endless["status"] == "in_progress"
            assert endless["expires_at"] is None

    run(main())


def test_modify_replaces_metadata() -> None:
    """Modifying a run sets its metadata, which later reads return."""

    async def main() -> None:
        async with emulated() as (_, api):
            r = await api.create(metadata={"a": "1"})
            path = f"/threads/{r['thread_id']}/runs/{r['id']}"
            body = {"metadata": {"b": "2"}}
            RUN.validate(await api.call("POST", path, json=body))
            assert (await api.get(r))["metadata"] == {"b": "2"}

    run(main())


# -- errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "param"),
    [
        ({f"k{i}": "v" for i in range(17)}, "metadata"),
        ({"k" * 65: "v"}, "metadata"),
        ({"k": "v" * 513}, "metadata.k"),
        ({"k": 1}, "metadata.k"),
        ("text", "metadata"),
    ],
)
def test_metadata_limits(metadata: Any, param: str) -> None:
    """Metadata beyond 16 keys, 64-char keys or 512-char strings is a 400."""

    async def main() -> None:
        async with emulated() as (_, api):
            error = await api.call(
                "POST",
                "/threads/runs",
                json={"assistant_id": "a", "metadata": metadata},
                status=400,
            )
            assert error["error"]["param"] == param

    run(main())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"assistant_id": "a", "colour": "red"}, "Unrecognized request argument"),
        ({}, "Missing required parameter: 'assistant_id'."),
        ({"assistant_id": 1}, "Invalid type for 'assistant_id'"),
        ({"assistant_id": "a", "stream": "yes"}, "Invalid type for 'stream'"),
        ({"assistant_id": "a", "temperature": 3}, "Invalid 'temperature'"),
        ({"assistant_id": "a", "top_p": "high"}, "Invalid type for 'top_p'"),
        ({"assistant_id": "a", "max_prompt_tokens": 10}, "Invalid 'max_prompt"),
        ({"assistant_id": "a", "tools": [{"type": "web"}]}, "tools[0].type"),
        ({"assistant_id": "a", "tools": [{"type": "function"}]}, "tools[0].function"),
        ({"assistant_id": "a", "thread": {"x": 1}}, "Unknown parameter: 'thread.x'"),
        ([1], "must be a JSON object"),
    ],
)
def test_invalid_bodies(body: Any, message: str) -> None:
    """Invalid create bodies are 400s naming the problem."""

    async def main() -> None:
        async with emulated() as (_, api):
            error = await api.call("POST", "/threads/runs", json=body, status=400)
            assert message in error["error"]["message"]

    run(main())


def test_unparsable_body() -> None:
    """A body that is not JSON is a 400."""

    async def main() -> None:
        async with (
            emulated() as (emu, api),
            api.session.post(
                emu.url + "/threads", data=b"{nope", headers=api.headers
            ) as response,
        ):
            assert response.status == 400
            ERROR.validate(await response.json())

    run(main())


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": "0"}, "integer_below_min_value"),
        ({"limit": "101"}, "integer_above_max_value"),
        ({"limit": "many"}, "invalid_type"),
        ({"order": "up"}, "invalid_value"),
        ({"after": "run_unknown"}, None),
        ({"include[]": "everything"}, "invalid_value"),
    ],
)
def test_invalid_list_params(params: dict[str, str], code: str | None) -> None:
    """Out-of-range limits, bad orders, cursors and includes are 400s."""

    async def main() -> None:
        async with emulated() as (_, api):
            r = await api.create()
            path = f"/threads/{r['thread_id']}/runs/{r['id']}/steps"
            if "include[]" not in params:
                path = f"/threads/{r['thread_id']}/runs"
            error = await api.call("GET", path, params=params, status=400)
            assert error["error"]["code"] == code

    run(main())


def test_unknown_ids_are_404() -> None:
    """Unknown threads, runs, steps and paths are 404s in the API's shape."""

    async def main() -> None:
        async with emulated() as (_, api):
            r = await api.create()
            other = await api.call("POST", "/threads", json={})
            t, i = r["thread_id"], r["id"]
            paths = [
                "/threads/thread_nope/runs",
                "/threads/thread_nope/runs/" + i,
                f"/threads/{t}/runs/run_nope",
                f"/threads/{other['id']}/runs/{i}",
                f"/threads/{t}/runs/{i}/steps/step_nope",
                "/nowhere",
            ]
            messages = [
                (await api.call("GET", p, status=404))["error"]["message"]
                for p in paths
            ]
            assert messages[:3] == [
                "No thread found with id 'thread_nope'.",
                "No thread found with id 'thread_nope'.",
                "No run found with id 'run_nope'.",
            ]
            assert messages[5] == "Invalid URL (GET /v1/nowhere)"

    run(main())


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"OpenAI-Beta": "assistants=v2"}, 401, None),
        (
            {"Authorization": "Bearer sk-wrong-key", "OpenAI-Beta": "assistants=v2"},
            401,
            "invalid_api_key",
        ),
        ({"Authorization": "Bearer sk-emulator"}, 400, "invalid_beta"),
        ({"api-key": "sk-emulator", "OpenAI-Beta": "assistants=v2"}, 200, None),
    ],
)
def test_key_and_beta_header(headers: dict[str, str], status: int, code: str) -> None:
    """A missing or wrong key is 401, a missing beta header 400 invalid_beta."""

    async def main() -> None:
        async with emulated() as (_, api):
            body = await api.call(
                "POST", "/threads", json={}, headers=headers, status=status
            )
            if status != 200:
                assert body["error"]["code"] == code

    run(main())


def test_beta_header_can_be_optional() -> None:
    """With require_beta=False and no key, a bare request is served."""

    async def main() -> None:
        async with emulated(require_beta=False, api_key=None) as (_, api):
            await api.call("POST", "/threads", json={}, headers={})

    run(main())


# -- pagination ---------------------------------------------------------------


def test_list_runs_pages_like_the_api() -> None:
    """limit, order, after, before, has_more, first_id and last_id work as the API's."""

    async def main() -> None:
        async with emulated() as (emu, api):
            thread = await api.call("POST", "/threads", json={})
            t = thread["id"]
            ids = []
            for _ in range(5):
                ids.append((await api.create(t))["id"])
                advance(emu, 2)  # the thread takes one active run at a time
            path = f"/threads/{t}/runs"

            async def page(**params: Any) -> Any:
                body = await api.call("GET", path, params=params)
                RUNS.validate(body)
                assert body["object"] == "list"
                assert body["first_id"] == body["data"][0]["id"]
                assert body["last_id"] == body["data"][-1]["id"]
                return [r["id"] for r in body["data"]], body["has_more"]

            assert await page() == (ids[::-1], False)
            assert await page(limit=2) == ([ids[4], ids[3]], True)
            assert await page(limit=2, after=ids[3]) == ([ids[2], ids[1]], True)
            assert await page(limit=2, after=ids[1]) == ([ids[0]], False)
            assert await page(order="asc", limit=3) == (ids[:3], True)
            assert await page(order="asc", after=ids[2]) == (ids[3:], False)
            assert await page(order="asc", limit=2, before=ids[4]) == (
                ids[2:4],
                True,
            )
            assert await page(limit=2, before=ids[1]) == ([ids[3], ids[2]], True)
            assert await page(after=ids[4], before=ids[1]) == ([ids[3], ids[2]], False)
            empty = await api.call("GET", path, params={"after": ids[0]})
            # The spec types the ids as strings, but an empty page has null ids.
            assert empty == {
                "object": "list",
                "data": [],
                "first_id": None,
                "last_id": None,
                "has_more": False,
            }

    run(main())


def test_list_steps_pages_like_the_api() -> None:
    """Steps page with limit, order and cursors, newest first by default."""

    async def main() -> None:
        async with emulated(default_script=RunScript.completed(3)) as (emu, api):
            r = await api.create(tools=[CODE, SEARCH])
            advance(emu, 3)
            everything = (await api.steps(r, order="asc"))["data"]
            ids = [s["id"] for s in everything]
            assert len(ids) == 3
            first = await api.steps(r, limit=1)
            assert [s["id"] for s in first["data"]] == [ids[2]]
            assert first["has_more"] is True
            rest = await api.steps(r, limit=5, after=first["last_id"])
            assert [s["id"] for s in rest["data"]] == [ids[1], ids[0]]
            assert rest["has_more"] is False
            before = await api.steps(r, order="asc", before=ids[2])
            assert [s["id"] for s in before["data"]] == ids[:2]

    run(main())


# -- faults and hints ---------------------------------------------------------


def test_rate_limit_fault_with_retry_after() -> None:
    """A 429 fault answers Retry-After and retry-after-ms for its N requests."""

    async def main() -> None:
        async with emulated() as (emu, api):
            r = await api.create()
            emu.inject(Fault(status=429, retry_after=1.5, times=2))
            for _ in range(2):
                error = await api.call(
                    "GET", f"/threads/{r['thread_id']}/runs/{r['id']}", status=429
                )
                assert error["error"]["code"] == "rate_limit_exceeded"
                assert api.last.headers["Retry-After"] == "2"
                assert api.last.headers["retry-after-ms"] == "1500"
            await api.get(r)

    run(main())


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_error_faults(status: int) -> None:
    """Server error faults answer their status with the API's error body."""

    async def main() -> None:
        async with emulated() as (emu, api):
            emu.inject(Fault(status=status, times=1))
            error = await api.call("POST", "/threads", json={}, status=status)
            assert error["error"]["type"] == "server_error"

    run(main())


def test_faults_for_one_run_spare_others() -> None:
    """A fault scoped to a run affects only requests about that run."""

    async def main() -> None:
        async with emulated() as (emu, api):
            hit, spared = await api.create(), await api.create()
            emu.inject(Fault(run_id=hit["id"], status=500))
            await api.get(spared)
            path = f"/threads/{hit['thread_id']}/runs/{hit['id']}"
            await api.call("GET", path, status=500)
            await api.call("GET", path, status=500)
            emu.clear_faults()
            await api.get(hit)

    run(main())


def test_fault_probability_is_reproducible() -> None:
    """Faults with a probability follow the emulator's seed."""

    async def statuses(seed: int) -> list[int]:
        async with emulated(seed=seed) as (emu, api):
            emu.inject(Fault(status=503, probability=0.5))
            found = []
            for _ in range(20):
                async with api.session.post(
                    emu.url + "/threads", json={}, headers=api.headers
                ) as response:
                    found.append(response.status)
            return found

    first, again = run(statuses(7)), run(statuses(7))
    assert first == again
    assert set(first) == {200, 503}


def test_latency_fault_delays_answers() -> None:
    """A delay fault holds the answer back for its seconds."""

    async def main() -> None:
        async with emulated() as (emu, api):
            emu.inject(Fault(delay=0.2, times=1))
            started = time.monotonic()
            await api.call("POST", "/threads", json={})
            assert time.monotonic() - started >= 0.2

    run(main())


def test_disconnect_fault_resets_the_connection() -> None:
    """A disconnect fault closes the connection without an answer."""

    async def main() -> None:
        async with emulated() as (emu, api):
            emu.inject(Fault(disconnect=True, times=1))
            connector = aiohttp.TCPConnector(force_close=True)
            async with aiohttp.ClientSession(connector=connector) as session:
                with pytest.raises(aiohttp.ServerDisconnectedError):
                    await session.post(
                        emu.url + "/threads", json={}, headers=api.headers
                    )
            await api.call("POST", "/threads", json={})

    run(main())


@pytest.mark.parametrize("body", ["malformed", "truncated"])
def test_body_faults_break_the_json(body: Any) -> None:
    """Malformed and truncated body faults answer 200 with broken JSON."""

    async def main() -> None:
        async with emulated() as (emu, api):
            emu.inject(Fault(body=body, times=1))
            async with api.session.post(
                emu.url + "/threads", json={}, headers=api.headers
            ) as response:
                assert response.status == 200
                with pytest.raises(json.JSONDecodeError):
                    json.loads(await response.read())

    run(main())


def test_poll_after_hint_globally_and_per_run() -> None:
    """Run responses carry openai-poll-after-ms, from the run's script first."""

    async def main() -> None:
        async with emulated(poll_after_ms=250) as (emu, api):
            plain = await api.create()
            assert api.last.headers["openai-poll-after-ms"] == "250"
            script = RunScript.completed(1)
            fast = emu.create_run(script=attrs.evolve(script, poll_after_ms=10))
            await api.get(fast)
            assert api.last.headers["openai-poll-after-ms"] == "10"
            await api.get(plain)
            assert api.last.headers["openai-poll-after-ms"] == "250"

    run(main())


def test_request_counts() -> None:
    """The emulator counts requests in total and retrieves per run."""

    async def main() -> None:
        async with emulated() as (emu, api):
            r = await api.create()
            for _ in range(3):
                await api.get(r)
            await api.steps(r)
            assert emu.counts.total == 5
            assert emu.counts.retrieves[r["id"]] == 3
            assert emu.counts.by_run[r["id"]] == 4
            emu.retrieve(r["id"])
            assert emu.counts.total == 5

    run(main())


# -- the Python API and the control channel -----------------------------------


def test_python_api_scripts_runs() -> None:
    """Runs created, rescripted and cancelled from Python follow their scripts."""

    async def main() -> None:
        async with emulated() as (emu, api):
            r = emu.create_run(script=RunScript.endless(), metadata={"a": "b"})
            RUN.validate(r)
            assert (await api.get(r))["status"] == "in_progress"
            emu.set_script(r["id"], RunScript((Phase("failed"),)))
            assert (await api.get(r))["status"] == "failed"
            other = emu.create_run(r["thread_id"], script=RunScript.endless())
            assert emu.cancel(other["id"])["status"] == "cancelling"
            emu.set_default_script(RunScript.failed(0))
            advance(emu, 0)
            assert (await api.get(await api.create()))["status"] == "failed"

    run(main())


def test_script_validation() -> None:
    """Scripts whose phases cannot be followed are refused."""
    with pytest.raises(ValueError, match="at least one"):
        RunScript(())
    with pytest.raises(ValueError, match="only the last"):
        RunScript((Phase("completed"), Phase("failed")))
    with pytest.raises(ValueError, match="terminal or last forever"):
        RunScript((Phase("in_progress", 1.0),))
    with pytest.raises(ValueError, match="must be >= 0"):
        Phase("queued", -1)
    with pytest.raises(ValueError, match="probability"):
        Fault(probability=2)
    with pytest.raises(ValueError, match="cannot go back"):
        ManualClock().advance(-1)


def test_control_channel() -> None:
    """The /_emulator routes drive the clock, faults, scripts and stats."""

    async def main() -> None:
        async with emulated() as (emu, api):
            root = emu.url.removesuffix("/v1") + "/_emulator"
            session = api.session

            async def control(method: str, path: str, body: Any = None) -> Any:
                async with session.request(method, root + path, json=body) as resp:
                    return resp.status, await resp.json()

            script = {
                "phases": [
                    {"status": "in_progress", "seconds": 5},
                    {"status": "incomplete"},
                ],
                "incomplete_reason": "max_prompt_tokens",
            }
            assert (await control("PUT", "/scripts/short", script))[0] == 200
            r = await api.create(metadata={"emulator_script": "short"})
            assert r["status"] == "in_progress"
            status, now = await control("POST", "/clock/advance", {"seconds": 5})
            assert (status, now["now"]) == (200, emu.clock.now())
            assert (await api.get(r))["incomplete_details"] == {
                "reason": "max_prompt_tokens"
            }

            other = await api.create()
            status, body = await control(
                "POST",
                f"/runs/{other['id']}/script",
                {"phases": [{"status": "failed"}]},
            )
            assert (status, body["status"]) == (200, "failed")
            await control(
                "PUT", "/scripts/default", {"phases": [{"status": "expired"}]}
            )
            assert (await api.create())["status"] == "expired"

            fault = {"status": 429, "retry_after": 1, "times": 1}
            status, body = await control("POST", "/faults", fault)
            assert body["faults"][0]["status"] == 429
            assert (await control("GET", "/faults"))[1]["faults"][0]["times"] == 1
            assert (await control("DELETE", "/faults"))[1] == {"faults": []}

            status, stats = await control("GET", "/stats")
            assert stats["requests"] == emu.counts.total
            assert stats["runs"][r["id"]] == {"requests": 1, "retrieves": 1}

            errors = [
                await control("POST", "/faults", {"status": 429, "colour": 1}),
                await control("POST", "/faults", {"probability": 3}),
                await control("PUT", "/scripts/x", {"phases": []}),
                await control("POST", "/runs/run_nope/script", script),
                await control("POST", "/clock/advance", {"seconds": -1}),
            ]
            for status, body in errors:
                assert status in (400, 404)
                ERROR.validate(body)
            body = {"assistant_id": "a", "metadata": {"emulator_script": "nope"}}
            error = await api.call("POST", "/threads/runs", json=body, status=400)
            assert error["error"]["param"] == "metadata.emulator_script"

    run(main())


def test_clock_advance_needs_a_manual_clock() -> None:
    """Advancing the real clock over the control channel is a 400."""

    async def main() -> None:
        async with emulated(clock=SystemClock()) as (emu, api):
            url = emu.url.removesuffix("/v1") + "/_emulator/clock/advance"
            async with api.session.post(url, json={"seconds": 1}) as response:
                assert response.status == 400

    run(main())


def test_ten_thousand_runs_need_no_tasks() -> None:
    """Runs advance lazily: 10,000 runs add no tasks, and reading them all once
    they have ended costs about what creating them did."""

    async def main() -> None:
        async with emulated() as (emu, api):
            tasks = len(asyncio.all_tasks())
            thread_id = emu.create_thread()
            # CPU time of this process, not wall time: other processes on a
            # loaded machine do not count, and the baseline is measured here,
            # under the same coverage tracing and debug mode.
            started = time.process_time()
            ids = [emu.create_run(thread_id)["id"] for _ in range(10_000)]
            created = time.process_time() - started
            assert len(asyncio.all_tasks()) == tasks
            advance(emu, 5)
            started = time.process_time()
            assert {emu.retrieve(i)["status"] for i in ids} == {"completed"}
            # About 1x measured; a read that steps a run through its elapsed
            # time or scans the other runs costs orders of magnitude more.
            assert time.process_time() - started < 5 * created
            page = await api.call("GET", f"/threads/{thread_id}/runs")
            assert len(page["data"]) == 20

    run(main())


def test_serve_blocks_serving_until_interrupted() -> None:
    """serve() serves on loopback until Ctrl-C, then returns quietly."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = f"from openai_runs.testing import serve; serve(port={port})"
    server = subprocess.Popen(
        [sys.executable, "-c", code], stderr=subprocess.PIPE, text=True
    )
    try:

        async def main() -> int:
            async with aiohttp.ClientSession() as session, asyncio.timeout(60):
                # Until the server has bound its port: seconds when a loaded
                # machine starts the child under coverage.
                while True:
                    with contextlib.suppress(aiohttp.ClientConnectionError):
                        url = f"http://127.0.0.1:{port}/_emulator/stats"
                        async with session.get(url) as answer:
                            return answer.status
                    await asyncio.sleep(0.025)

        assert run(main()) == 200
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, err = server.communicate(timeout=30)
        finally:
            if server.poll() is None:  # never left running, whatever failed
                server.kill()
                server.wait()
    assert server.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.emulator(clock=ManualClock(), default_script=RunScript.completed(1))
def test_fixture_serves_across_event_loops(emulator: Emulator) -> None:
    """The emulator fixture serves from a thread, across several asyncio.run calls."""

    async def create() -> Any:
        async with aiohttp.ClientSession() as session:
            return await Api(emulator, session).create()

    async def get(r: Any) -> Any:
        async with aiohttp.ClientSession() as session:
            return await Api(emulator, session).get(r)

    r = run(create())
    advance(emulator, 1)
    assert run(get(r))["status"] == "completed"


# -- the official client ------------------------------------------------------


def test_official_openai_client_works() -> None:
    """The official openai client retrieves, updates, cancels, lists, polls."""
    openai = pytest.importorskip("openai")

    async def main() -> None:
        options = {"clock": SystemClock(), "poll_after_ms": 10}
        async with (
            emulated(**options) as (emu, _),
            openai.AsyncOpenAI(
                base_url=emu.url, api_key=emu.api_key, max_retries=0
            ) as client,
        ):
            runs = client.beta.threads.runs
            quick = RunScript.completed(0.2)
            r = emu.create_run(script=quick, tools=[CODE, SEARCH])
            polled = await runs.poll(r["id"], thread_id=r["thread_id"])
            assert polled.status == "completed"
            got = await runs.retrieve(r["id"], thread_id=r["thread_id"])
            assert got.usage is not None
            assert got.usage.total_tokens == 160
            updated = await runs.update(
                r["id"], thread_id=r["thread_id"], metadata={"k": "v"}
            )
            assert updated.metadata == {"k": "v"}
            steps = [
                step
                async for step in runs.steps.list(
                    r["id"], thread_id=r["thread_id"], limit=1
                )
            ]
            assert len(steps) == 3
            one = await runs.steps.retrieve(
                steps[0].id,
                thread_id=r["thread_id"],
                run_id=r["id"],
                include=[INCLUDE],
            )
            assert one.id == steps[0].id
            endless = emu.create_run(script=RunScript.endless())
            cancelled = await runs.cancel(endless["id"], thread_id=endless["thread_id"])
            assert cancelled.status == "cancelling"
            with pytest.raises(openai.BadRequestError):
                await runs.cancel(r["id"], thread_id=r["thread_id"])

    with warnings.catch_warnings():
        # The openai client marks the Assistants API deprecated.
        warnings.simplefilter("ignore", DeprecationWarning)
        run(main())
