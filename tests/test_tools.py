"""The tool-call loop against the emulator: create/submit and poll, handlers, registry."""

from __future__ import annotations

import asyncio
import contextlib
import json
import runpy
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from _timing import loop_lag
from aiohttp import web

from openai_runs import (
    LocalBudget,
    Run,
    RunsClient,
    WatchPolicy,
    WatchResult,
    tool_registry,
)
from openai_runs import exceptions as exc
from openai_runs.models import (
    FunctionDefinition,
    FunctionTool,
    MessageRequest,
    NamedToolChoice,
    NamedToolChoiceFunction,
    ToolCall,
    ToolOutput,
)
from openai_runs.testing import Emulator, Fault, Phase, RunScript, ScriptedCall

POLICY = WatchPolicy(initial=0.01, multiplier=1.5, maximum=0.03, jitter=0.0)
KEEP_WAITING = attrs.evolve(POLICY, cancel_on_tool_error=False)
EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "tool_loop.py"


def weather_tool(name: str = "get_weather") -> FunctionTool:
    return FunctionTool(
        function=FunctionDefinition(
            name=name,
            parameters={"type": "object", "properties": {"city": {"type": "string"}}},
        )
    )


def ask(*calls: ScriptedCall, then: float = 0.02) -> RunScript:
    """Ask for *calls* at once after a moment, and complete soon after the outputs."""
    return RunScript.requires_action(*calls, after=0.02, then=then)


def posts(seen: list[tuple[str, Any]], suffix: str) -> list[Any]:
    """The JSON bodies of the POSTs whose path ends with *suffix*."""
    return [body for path, body in seen if path.endswith(suffix)]


@contextlib.asynccontextmanager
async def emulated(
    **options: Any,
) -> AsyncIterator[tuple[Emulator, RunsClient, list[tuple[str, Any]]]]:
    """Serve an emulator that records POST bodies, with a client pointed at it."""
    budget = options.pop("budget", None)
    emu = Emulator(**options)
    seen: list[tuple[str, Any]] = []

    @web.middleware
    async def record(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if request.method == "POST" and request.path.startswith("/v1/"):
            seen.append((request.path, json.loads(await request.read() or b"null")))
        return await handler(request)

    emu.app.middlewares.append(record)
    async with (
        emu,
        RunsClient(base_url=emu.url, api_key=emu.api_key, budget=budget) as client,
    ):
        yield emu, client, seen


def test_create_and_poll_sends_the_create_body_and_serves_the_tools() -> None:
    """create_and_poll POSTs every given field once, serves the calls, returns the end."""

    def get_weather(city: str) -> dict[str, Any]:
        return {"city": city, "celsius": 21}

    async def main() -> None:
        async with emulated(
            default_script=ask(ScriptedCall("get_weather", '{"city": "Oslo"}'))
        ) as (
            emu,
            client,
            seen,
        ):
            thread_id = emu.create_thread()
            statuses: list[str] = []
            run = await client.runs.create_and_poll(
                thread_id,
                assistant_id="asst_1",
                model="gpt-4o",
                instructions="Be brief.",
                additional_messages=[MessageRequest(role="user", content="Oslo?")],
                tools=[weather_tool()],
                metadata={"k": "v"},
                temperature=0.5,
                tool_choice=NamedToolChoice(
                    type="function",
                    function=NamedToolChoiceFunction(name="get_weather"),
                ),
                parallel_tool_calls=True,
                policy=POLICY,
                on_status=lambda run: statuses.append(str(run.status)),
                tool_handler=tool_registry({"get_weather": get_weather}),
            )
            assert (run.status, run.thread_id, run.assistant_id) == (
                "completed",
                thread_id,
                "asst_1",
            )
            assert run.model == "gpt-4o"
            # The create's idempotency key rides along in the metadata.
            assert run.metadata is not None
            key = run.metadata.pop("openai_runs_idempotency_key")
            assert run.metadata == {"k": "v"}
            assert key.startswith("idem_")
            assert run.usage is not None
            assert [
                t.function.name for t in run.tools if isinstance(t, FunctionTool)
            ] == ["get_weather"]
            assert "requires_action" in statuses
            assert statuses[-1] == "completed"
            assert posts(seen, f"/threads/{thread_id}/runs") == [
                {
                    "assistant_id": "asst_1",
                    "model": "gpt-4o",
                    "instructions": "Be brief.",
                    "additional_messages": [{"role": "user", "content": "Oslo?"}],
                    "tools": [
                        {
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "parameters": {
                                    "type": "object",
                                    "properties": {"city": {"type": "string"}},
                                },
                            },
                        }
                    ],
                    "metadata": {"k": "v", "openai_runs_idempotency_key": key},
                    "temperature": 0.5,
                    "tool_choice": {
                        "type": "function",
                        "function": {"name": "get_weather"},
                    },
                    "parallel_tool_calls": True,
                }
            ]
            [submitted] = posts(seen, "/submit_tool_outputs")
            [output] = submitted["tool_outputs"]
            assert json.loads(output["output"]) == {"city": "Oslo", "celsius": 21}
            assert output["tool_call_id"].startswith("call_")

    asyncio.run(main())


def test_without_a_handler_the_run_comes_back_requiring_action() -> None:
    """create_and_poll with no tool_handler hands back requires_action with its calls."""

    async def main() -> None:
        async with emulated(default_script=ask(ScriptedCall("lookup"))) as (
            emu,
            client,
            seen,
        ):
            run = await client.runs.create_and_poll(
                emu.create_thread(), assistant_id="asst_1", policy=POLICY
            )
            assert run.status == "requires_action"
            assert [c.function.name for c in run.tool_calls] == ["lookup"]
            assert posts(seen, "/submit_tool_outputs") == []

    asyncio.run(main())


def test_submit_tool_outputs_and_poll_resumes_to_the_end() -> None:
    """submit_tool_outputs_and_poll POSTs the outputs in order and returns the final run."""

    async def main() -> None:
        calls = (ScriptedCall("a"), ScriptedCall("b"))
        async with emulated() as (emu, client, seen):
            created = emu.create_run(script=ask(*calls))
            run = await client.runs.poll(
                created["thread_id"], created["id"], policy=POLICY
            )
            assert run.status == "requires_action"
            outputs = [
                ToolOutput(tool_call_id=c.id, output=c.function.name * 2)
                for c in run.tool_calls
            ]
            final = await client.runs.submit_tool_outputs_and_poll(
                run.thread_id, run.id, tool_outputs=outputs, policy=POLICY
            )
            assert (final.id, final.status) == (run.id, "completed")
            assert posts(seen, "/submit_tool_outputs") == [
                {
                    "tool_outputs": [
                        {"tool_call_id": run.tool_calls[0].id, "output": "aa"},
                        {"tool_call_id": run.tool_calls[1].id, "output": "bb"},
                    ]
                }
            ]

    asyncio.run(main())


def test_several_rounds_of_tool_calls_are_served_until_the_end() -> None:
    """A run that asks twice gets two submissions, each answering its own calls."""
    script = RunScript(
        [
            Phase("queued", 0.0),
            Phase("in_progress", 0.02),
            Phase("requires_action", tool_calls=[ScriptedCall("a", '{"n": 1}')]),
            Phase("in_progress", 0.02),
            Phase(
                "requires_action",
                tool_calls=[
                    ScriptedCall("b", '{"n": 2}'),
                    ScriptedCall("a", '{"n": 3}'),
                ],
            ),
            Phase("in_progress", 0.02),
            Phase("completed"),
        ]
    )

    async def main() -> None:
        async with emulated() as (emu, client, seen):
            created = emu.create_run(script=script)
            handler = tool_registry({"a": lambda n: f"a{n}", "b": lambda n: f"b{n}"})
            run = await client.runs.poll(
                created["thread_id"], created["id"], policy=POLICY, tool_handler=handler
            )
            assert run.status == "completed"
            sent = [
                [o["output"] for o in b["tool_outputs"]]
                for b in posts(seen, "/submit_tool_outputs")
            ]
            assert sent == [["a1"], ["b2", "a3"]]

    asyncio.run(main())


def test_parallel_calls_run_concurrently_within_the_bound_and_submit_in_api_order() -> (
    None
):
    """Four calls overlap two at a time; outputs go in one request in the API's order."""
    calls = [ScriptedCall("work", json.dumps({"i": i})) for i in range(4)]
    running = 0
    peak = 0
    finished: list[int] = []

    async def work(i: int) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.1 if i % 2 == 0 else 0.05)  # later calls finish first
        running -= 1
        finished.append(i)
        return f"out{i}"

    async def main() -> None:
        async with emulated() as (emu, client, seen):
            created = emu.create_run(script=ask(*calls))
            run = await client.runs.poll(
                created["thread_id"],
                created["id"],
                policy=WatchPolicy(
                    initial=0.01, maximum=0.03, jitter=0.0, max_tool_calls=2
                ),
                tool_handler=tool_registry({"work": work}),
            )
            assert run.status == "completed"
            [submitted] = posts(seen, "/submit_tool_outputs")
            assert [o["output"] for o in submitted["tool_outputs"]] == [
                "out0",
                "out1",
                "out2",
                "out3",
            ]
            # Two at a time (never serial, never more), not a wall-clock
            # bound a loaded machine could break.
            assert peak == 2
            assert finished != [0, 1, 2, 3]

    asyncio.run(main())


def test_plain_functions_run_in_threads_so_parallel_calls_overlap() -> None:
    """Blocking plain functions run in worker threads, concurrently, off the loop."""
    threads: set[int] = set()
    # Each call returns only once all three are running at once: serial calls,
    # or calls on the loop's thread, break the barrier (a load-independent
    # proof of overlap, where a wall-clock bound failed on a loaded machine).
    together = threading.Barrier(3, timeout=10)

    def slow(i: int) -> int:
        threads.add(threading.get_ident())
        together.wait()
        return i

    async def main() -> None:
        calls = [ScriptedCall("slow", json.dumps({"i": i})) for i in range(3)]
        async with emulated() as (emu, client, seen):
            created = emu.create_run(script=ask(*calls))
            run = await client.runs.poll(
                created["thread_id"],
                created["id"],
                policy=POLICY,
                tool_handler=tool_registry({"slow": slow}),
            )
            assert run.status == "completed"
            [submitted] = posts(seen, "/submit_tool_outputs")
            assert [o["output"] for o in submitted["tool_outputs"]] == ["0", "1", "2"]
        assert threading.get_ident() not in threads
        assert len(threads) == 3

    asyncio.run(main())


def test_a_callable_object_with_an_async_call_is_awaited() -> None:
    """A handler object whose __call__ is a coroutine function works like a function."""

    class Echo:
        async def __call__(self, call: ToolCall) -> str:
            return call.function.arguments

    async def main() -> None:
        async with emulated() as (emu, client, seen):
            created = emu.create_run(script=ask(ScriptedCall("x", '{"a": 1}')))
            run = await client.runs.poll(
                created["thread_id"], created["id"], policy=POLICY, tool_handler=Echo()
            )
            assert run.status == "completed"
            [submitted] = posts(seen, "/submit_tool_outputs")
            assert submitted["tool_outputs"][0]["output"] == '{"a": 1}'

    asyncio.run(main())


def test_a_failing_handler_ends_the_watch_and_cancels_the_run() -> None:
    """A handler that raises gives ToolCallError with the call and the cancelled run."""

    def broken(call: ToolCall) -> str:
        if call.function.name == "bad":
            raise RuntimeError("boom")
        return "fine"

    async def main() -> None:
        async with emulated() as (emu, client, seen):
            created = emu.create_run(
                script=ask(ScriptedCall("good"), ScriptedCall("bad"))
            )
            with pytest.raises(exc.ToolCallError) as caught:
                await client.runs.poll(
                    created["thread_id"],
                    created["id"],
                    policy=POLICY,
                    tool_handler=broken,
                )
            error = caught.value
            assert error.tool_call.function.name == "bad"
            assert isinstance(error.__cause__, RuntimeError)
            assert error.run.status == "cancelling"
            assert error.cancel_landed is True
            assert emu.retrieve(created["id"])["status"] in {"cancelling", "cancelled"}
            assert posts(seen, "/submit_tool_outputs") == []

    asyncio.run(main())


def test_a_handler_raising_cancelled_error_is_a_tool_error() -> None:
    """A handler that raises CancelledError by itself fails the watch as a
    ToolCallError; nothing was cancelled, so no CancelledError escapes."""

    async def rogue(call: ToolCall) -> str:
        raise asyncio.CancelledError

    async def main() -> None:
        async with emulated() as (emu, client, _):
            created = emu.create_run(script=ask(ScriptedCall("x")))
            with pytest.raises(exc.ToolCallError, match="CancelledError") as caught:
                await client.runs.poll(
                    created["thread_id"],
                    created["id"],
                    policy=KEEP_WAITING,
                    tool_handler=rogue,
                )
            assert caught.value.tool_call.function.name == "x"
            refs = [(created["thread_id"], created["id"])]
            results = [
                r
                async for r in client.runs.watch_many(
                    refs, policy=KEEP_WAITING, tool_handler=rogue
                )
            ]
            assert len(results) == 1
            assert isinstance(results[0].error, exc.ToolCallError)

    asyncio.run(main())


def test_a_failing_handler_may_leave_the_run_waiting() -> None:
    """With WatchPolicy(cancel_on_tool_error=False) the run stays in requires_action for the caller."""

    async def fail(call: ToolCall) -> str:
        raise ValueError("no")

    async def main() -> None:
        async with emulated() as (emu, client, _):
            created = emu.create_run(script=ask(ScriptedCall("x")))
            with pytest.raises(exc.ToolCallError) as caught:
                await client.runs.poll(
                    created["thread_id"],
                    created["id"],
                    policy=KEEP_WAITING,
                    tool_handler=fail,
                )
            assert caught.value.run.status == "requires_action"
            assert emu.retrieve(created["id"])["status"] == "requires_action"

    asyncio.run(main())


def test_a_handler_that_returns_no_string_is_a_tool_call_error() -> None:
    """A raw handler must return a str: anything else is reported as its failure."""

    async def main() -> None:
        async with emulated() as (emu, client, _):
            created = emu.create_run(script=ask(ScriptedCall("x")))
            with pytest.raises(exc.ToolCallError, match="returned int"):
                await client.runs.poll(
                    created["thread_id"],
                    created["id"],
                    policy=POLICY,
                    tool_handler=lambda call: 42,  # type: ignore[arg-type]
                )

    asyncio.run(main())


def test_a_run_that_expires_while_the_handler_works_is_reported_expired() -> None:
    """The submit is refused because the run expired; the watch returns it expired."""

    async def slow(call: ToolCall) -> str:
        await asyncio.sleep(0.5)
        return "late"

    async def main() -> None:
        async with emulated(expires_after=0.3) as (emu, client, seen):
            created = emu.create_run(script=ask(ScriptedCall("x")))
            run = await client.runs.poll(
                created["thread_id"], created["id"], policy=POLICY, tool_handler=slow
            )
            assert run.status == "expired"
            assert posts(seen, "/submit_tool_outputs") != []  # tried, and refused

    asyncio.run(main())


@pytest.mark.parametrize("cancel", [False, True])
def test_a_handler_slower_than_the_deadline_times_the_watch_out(cancel: bool) -> None:
    """The handler's time counts: at the deadline it is cancelled and the watch times out."""
    cancelled = asyncio.Event()

    async def endless(call: ToolCall) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"  # pragma: no cover

    async def main() -> None:
        # A deadline a loaded machine's first answers cannot miss (0.3 s
        # did: the watch ended before it saw the run), checked against the
        # loop's own measured lateness.
        timeout = 1.0
        async with (
            loop_lag() as lag,
            emulated(cancel_delay=0.02) as (emu, client, seen),
        ):
            created = emu.create_run(script=ask(ScriptedCall("x")))
            started = time.monotonic()
            with pytest.raises(exc.WatchTimeoutError) as caught:
                await client.runs.poll(
                    created["thread_id"],
                    created["id"],
                    timeout=timeout,
                    cancel_on_timeout=cancel,
                    policy=POLICY,
                    tool_handler=endless,
                )
            assert time.monotonic() - started < timeout + 0.7 + lag.worst
            assert cancelled.is_set()
            assert caught.value.run is not None
            assert caught.value.run.status == (
                "cancelled" if cancel else "requires_action"
            )
            assert posts(seen, "/submit_tool_outputs") == []

    asyncio.run(main())


def test_outputs_the_api_refuses_end_the_watch() -> None:
    """A refused submit while the run still waits on the same calls raises, not loops."""

    async def main() -> None:
        async with emulated() as (emu, client, _):
            created = emu.create_run(script=ask(ScriptedCall("x")))

            def answer(call: ToolCall) -> str:
                emu.inject(Fault(run_id=created["id"], status=400, times=1))
                return "ok"

            with pytest.raises(exc.BadRequestError):
                await client.runs.poll(
                    created["thread_id"],
                    created["id"],
                    policy=POLICY,
                    tool_handler=answer,
                )
            assert emu.retrieve(created["id"])["status"] == "requires_action"

    asyncio.run(main())


BAD_CALLS = [
    ScriptedCall("nope", "{}"),
    ScriptedCall("get", "{not json"),
    ScriptedCall("get", "[1, 2]"),
    ScriptedCall("get", '{"town": "Oslo"}'),
    ScriptedCall("get", '{"city": "Oslo"}'),
]


def test_the_registry_reports_bad_calls_to_the_model() -> None:
    """Unknown names and bad arguments become error outputs; good calls are JSON-encoded."""

    async def main() -> None:
        async with emulated() as (emu, client, seen):
            created = emu.create_run(script=ask(*BAD_CALLS))
            run = await client.runs.poll(
                created["thread_id"],
                created["id"],
                policy=POLICY,
                tool_handler=tool_registry({"get": lambda city: [city, 1]}),
            )
            assert run.status == "completed"
            [submitted] = posts(seen, "/submit_tool_outputs")
            outputs = [json.loads(o["output"]) for o in submitted["tool_outputs"]]
            assert outputs[-1] == ["Oslo", 1]
            errors = [o["error"] for o in outputs[:-1]]
            assert "unknown function 'nope'; known: get" in errors[0]
            assert "not valid JSON" in errors[1]
            assert "must be a JSON object" in errors[2]
            assert "bad arguments for 'get'" in errors[3]

    asyncio.run(main())


def test_the_registry_can_raise_on_bad_calls_instead() -> None:
    """bad_calls="raise" turns an unknown function into a ToolCallError."""

    async def main() -> None:
        async with emulated() as (emu, client, _):
            created = emu.create_run(script=ask(ScriptedCall("nope")))
            with pytest.raises(exc.ToolCallError) as caught:
                await client.runs.poll(
                    created["thread_id"],
                    created["id"],
                    policy=POLICY,
                    tool_handler=tool_registry({}, bad_calls="raise"),
                )
            assert caught.value.tool_call.function.name == "nope"
            assert "unknown function" in str(caught.value.__cause__)

    asyncio.run(main())


def test_the_registry_passes_any_argument_name_through() -> None:
    """A tool argument named like the registry's own parameters reaches the tool."""

    async def main() -> None:
        async with emulated() as (emu, client, seen):
            call = ScriptedCall("f", arguments='{"fn": "a", "args": "b"}')
            created = emu.create_run(script=ask(call))
            run = await client.runs.poll(
                created["thread_id"],
                created["id"],
                policy=POLICY,
                tool_handler=tool_registry({"f": lambda fn, args: fn + args}),
            )
            assert run.status == "completed"
            [submitted] = posts(seen, "/submit_tool_outputs")
            assert submitted["tool_outputs"][0]["output"] == "ab"

    asyncio.run(main())


def test_the_registry_refuses_an_unknown_bad_calls_mode() -> None:
    """bad_calls accepts only "report" and "raise"."""
    with pytest.raises(exc.InvalidRequestError):
        tool_registry({}, bad_calls="ignore")  # type: ignore[arg-type]


def test_watch_many_serves_tools_and_reports_statuses() -> None:
    """watch_many serves each run's calls, reports each change, isolates a failure."""
    seen_statuses: list[tuple[str, str]] = []

    def tool(call: ToolCall) -> str:
        if call.function.name == "bad":
            raise RuntimeError("boom")
        return "ok"

    async def main() -> list[WatchResult]:
        async with emulated(budget=LocalBudget(max_in_flight=1)) as (emu, client, _):
            good = [emu.create_run(script=ask(ScriptedCall("good"))) for _ in range(3)]
            bad = emu.create_run(script=ask(ScriptedCall("bad")))
            refs = [(r["thread_id"], r["id"]) for r in [*good, bad]]
            results = [
                result
                async for result in client.runs.watch_many(
                    refs,
                    policy=POLICY,
                    on_status=lambda run: seen_statuses.append(
                        (run.id, str(run.status))
                    ),
                    tool_handler=tool,
                )
            ]
            by_id = {r.run_id: r for r in results}
            for ref in good:
                result = by_id[ref["id"]]
                assert result.run is not None
                assert result.run.status == "completed"
                assert (ref["id"], "requires_action") in seen_statuses
                assert (ref["id"], "completed") in seen_statuses
            assert isinstance(by_id[bad["id"]].error, exc.ToolCallError)
            return results

    assert len(asyncio.run(main())) == 4


def test_watch_many_cancels_runs_at_their_deadline() -> None:
    """With cancel_on_timeout, a run past its deadline is cancelled and reported so."""

    async def main() -> None:
        async with emulated(cancel_delay=0.02) as (emu, client, _):
            stuck = emu.create_run(script=RunScript.endless())
            quick = emu.create_run(script=RunScript.completed(after=0.02))
            refs = [(r["thread_id"], r["id"]) for r in (stuck, quick)]
            # Long enough for a loaded machine's first answers (0.2 s was not:
            # the quick run, or any answer at all, came after the deadline).
            results = {
                r.run_id: r
                async for r in client.runs.watch_many(
                    refs, timeout=1.0, cancel_on_timeout=True, policy=POLICY
                )
            }
            error = results[stuck["id"]].error
            assert isinstance(error, exc.WatchTimeoutError)
            assert error.run is not None
            assert error.run.status == "cancelled"
            assert emu.retrieve(stuck["id"])["status"] == "cancelled"
            assert results[quick["id"]].ok

    asyncio.run(main())


def test_the_docs_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/examples/tool_loop.py completes its run with both tools' outputs."""
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "final: completed" in out
    assert (
        'get_weather -> {"city": "Paris", "temperature": 21, "unit": "celsius"}' in out
    )
    assert "get_time -> 12:00 in Paris" in out


def test_the_run_passed_to_handlers_is_a_parsed_run() -> None:
    """ToolCallError.run is a Run model, not a dict."""

    async def main() -> None:
        async with emulated() as (emu, client, _):
            created = emu.create_run(script=ask(ScriptedCall("x")))
            with pytest.raises(exc.ToolCallError) as caught:
                await client.runs.poll(
                    created["thread_id"],
                    created["id"],
                    policy=POLICY,
                    tool_handler=tool_registry({"x": lambda: 1 / 0}),
                )
            assert isinstance(caught.value.run, Run)
            assert isinstance(caught.value.__cause__, ZeroDivisionError)

    asyncio.run(main())
