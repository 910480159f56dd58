"""The ``openai-runs`` command line: the SDK's public API, for people at a terminal."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Final, TextIO

from . import RunsClient, RunWatcher, converter, tool_registry
from .exceptions import OpenAIRunsError, WatchTimeoutError
from .models import (
    CodeInterpreterCall,
    FileSearchCall,
    FunctionCall,
    FunctionDefinition,
    FunctionTool,
    MessageCreationDetails,
    Run,
    RunStatus,
    RunStep,
    ToolCallsDetails,
    as_datetime,
)
from .testing import Emulator, RunScript, run_server
from .testing import FunctionCall as ScriptCall

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_CODES: Final[dict[str, int]] = {
    RunStatus.COMPLETED: EXIT_OK,
    RunStatus.FAILED: 3,
    RunStatus.CANCELLED: 4,
    RunStatus.EXPIRED: 5,
    RunStatus.INCOMPLETE: 6,
    RunStatus.REQUIRES_ACTION: 8,
}
EXIT_TIMEOUT: Final = 7
"""A watch that reached its deadline."""

EPILOG = """\
exit codes: 0 completed (or the call succeeded), 1 API or connection error,
2 usage error, 3 failed, 4 cancelled, 5 expired, 6 incomplete, 7 watch timed
out, 8 requires_action (the run waits for tool outputs).

The key comes from --api-key or OPENAI_API_KEY, the server from --base-url or
OPENAI_BASE_URL. `openai-runs demo` needs neither.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    args = _parser().parse_args(argv)
    try:
        code: int = asyncio.run(args.command(args))
    except KeyboardInterrupt:
        return 130
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openai-runs",
        description="Inspect, watch and emulate OpenAI Assistants runs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base-url", help="the API root (default: OPENAI_BASE_URL)")
    common.add_argument("--api-key", help="the key (default: OPENAI_API_KEY)")
    common.add_argument("--json", action="store_true", help="print JSON")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(
        name: str,
        func: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
        doc: str,
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=doc, description=doc)
        p.set_defaults(command=func)
        return p

    p = command("get", _get, "Show a run.")
    _ids(p, "thread", "run")
    p = command("update", _update, "Set a run's metadata.")
    _ids(p, "thread", "run")
    p.add_argument(
        "--metadata",
        nargs="+",
        metavar="KEY=VALUE",
        required=True,
        type=_pair,
        help="the metadata pairs (replace the run's metadata)",
    )
    p = command("cancel", _cancel, "Ask for a run to be cancelled.")
    _ids(p, "thread", "run")
    p = command("steps", _steps, "List every step of a run, across pages.")
    _ids(p, "thread", "run")
    p.add_argument("--order", choices=["asc", "desc"], help="by creation time")
    p.add_argument("--limit", type=int, help="steps per page (1-100)")
    _include(p)
    p = command("step", _step, "Show one step of a run.")
    _ids(p, "thread", "run", "step")
    _include(p)
    p = command("watch", _watch, "Follow a run until it ends, showing progress.")
    _ids(p, "thread", "run")
    p.add_argument("--timeout", type=float, help="seconds to watch (default 900)")
    p.add_argument(
        "--cancel-on-timeout",
        action="store_true",
        help="cancel the run at the deadline and report how it ended",
    )
    p = command("serve", _serve, "Serve the Runs API emulator.")
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="default 8080")
    p.add_argument("--key", default="sk-emulator", help="the key clients must send")
    p = command("demo", _demo, "Run and watch a batch of runs, on the emulator.")
    p.add_argument(
        "--assistant-id",
        help="with --base-url: the assistant to run on the real server",
    )
    return parser


def _ids(parser: argparse.ArgumentParser, *names: str) -> None:
    for name in names:
        parser.add_argument(f"{name}_id", metavar=name.upper(), help=f"the {name} id")


def _include(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--include",
        action="append",
        metavar="FIELD",
        help="extra fields: step_details.tool_calls[*].file_search.results[*].content",
    )


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def _client(args: argparse.Namespace) -> RunsClient:
    return RunsClient(api_key=args.api_key, base_url=args.base_url)


async def _call(
    args: argparse.Namespace, action: Callable[[RunsClient], Coroutine[Any, Any, int]]
) -> int:
    """Run *action* with a client; print an error as one line, not a traceback."""
    try:
        async with _client(args) as client:
            return await action(client)
    except OpenAIRunsError as error:
        return _fail(error)


def _fail(error: OpenAIRunsError) -> int:
    print(f"openai-runs: error: {error}", file=sys.stderr)
    if isinstance(error, ValueError):
        return EXIT_USAGE
    return EXIT_ERROR


def _emit(args: argparse.Namespace, model: Any, human: str) -> None:
    if args.json:
        print(json.dumps(converter.unstructure(model), indent=2))
    else:
        print(human)


async def _get(args: argparse.Namespace) -> int:
    async def action(client: RunsClient) -> int:
        run = await client.runs.retrieve(args.thread_id, args.run_id)
        _emit(args, run, describe_run(run))
        return EXIT_OK

    return await _call(args, action)


async def _update(args: argparse.Namespace) -> int:
    async def action(client: RunsClient) -> int:
        run = await client.runs.update(
            args.thread_id, args.run_id, metadata=dict(args.metadata)
        )
        _emit(args, run, describe_run(run))
        return EXIT_OK

    return await _call(args, action)


async def _cancel(args: argparse.Namespace) -> int:
    async def action(client: RunsClient) -> int:
        run = await client.runs.cancel(args.thread_id, args.run_id)
        _emit(args, run, describe_run(run))
        return EXIT_OK

    return await _call(args, action)


async def _steps(args: argparse.Namespace) -> int:
    async def action(client: RunsClient) -> int:
        pager = client.runs.steps.list(
            args.thread_id,
            args.run_id,
            order=args.order,
            limit=args.limit,
            include=args.include,
        )
        steps = [step async for step in pager]
        if args.json:
            print(json.dumps(converter.unstructure(steps), indent=2))
        else:
            print(steps_table(steps))
        return EXIT_OK

    return await _call(args, action)


async def _step(args: argparse.Namespace) -> int:
    async def action(client: RunsClient) -> int:
        step = await client.runs.steps.retrieve(
            args.thread_id, args.run_id, args.step_id, include=args.include
        )
        _emit(args, step, steps_table([step]))
        return EXIT_OK

    return await _call(args, action)


async def _watch(args: argparse.Namespace) -> int:
    started = time.monotonic()

    def progress(run: Run) -> None:
        print(f"{time.monotonic() - started:7.1f}s  {run.status}", file=sys.stderr)

    async def action(client: RunsClient) -> int:
        watcher = RunWatcher(
            client,
            args.thread_id,
            args.run_id,
            timeout=args.timeout,
            cancel_on_timeout=args.cancel_on_timeout,
            on_status=progress,
        )
        # The watch logs repeated failures at WARNING: say what is failing
        # while it retries, not only at the deadline.
        failing = logging.StreamHandler(sys.stderr)
        failing.setLevel(logging.WARNING)
        failing.setFormatter(logging.Formatter("openai-runs: %(message)s"))
        logger = logging.getLogger("openai_runs")
        logger.addHandler(failing)
        try:
            run = await watcher.wait()
        except WatchTimeoutError as error:
            print(f"openai-runs: {error}", file=sys.stderr)
            if error.run is not None:
                _emit(args, error.run, describe_run(error.run))
            return EXIT_TIMEOUT
        finally:
            logger.removeHandler(failing)
        _emit(args, run, describe_run(run))
        return exit_code(run)

    return await _call(args, action)


def exit_code(run: Run) -> int:
    """The exit code that says how *run* ended."""
    return EXIT_CODES.get(run.status, EXIT_ERROR)


async def _serve(args: argparse.Namespace) -> int:
    print(
        f"Serving the Runs API emulator on http://{args.host}:{args.port}/v1 "
        f"(key {args.key!r}); Ctrl-C stops it.",
        file=sys.stderr,
    )
    try:
        await run_server(Emulator(api_key=args.key), host=args.host, port=args.port)
    except OSError as error:  # the port is taken, or the host is not ours
        print(f"openai-runs: error: cannot serve: {error}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


# --- human output -------------------------------------------------------------


def _when(timestamp: int | None) -> str:
    moment = as_datetime(timestamp)
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%SZ")


def describe_run(run: Run) -> str:
    """A readable summary of *run*, a few lines long."""
    lines = [
        f"{run.id}  {run.status}",
        f"  thread     {run.thread_id}",
        f"  assistant  {run.assistant_id}   model {run.model or '-'}",
        f"  created    {_when(run.created_at)}   started {_when(run.started_at)}",
    ]
    for label, stamp in (
        ("completed", run.completed_at),
        ("failed", run.failed_at),
        ("cancelled", run.cancelled_at),
        ("expires", run.expires_at if not run.is_terminal else None),
    ):
        if stamp is not None:
            lines.append(f"  {label:<10} {_when(stamp)}")
    if run.last_error is not None:
        lines.append(f"  error      {run.last_error.code}: {run.last_error.message}")
    if run.incomplete_details is not None:
        lines.append(f"  incomplete {run.incomplete_details.reason}")
    for call in run.tool_calls:
        lines.append(
            f"  needs      {call.id} {call.function.name}({call.function.arguments})"
        )
    if run.usage is not None:
        u = run.usage
        lines.append(
            f"  usage      {u.prompt_tokens} prompt + {u.completion_tokens} "
            f"completion = {u.total_tokens} tokens"
        )
    if run.metadata:
        pairs = " ".join(f"{k}={v}" for k, v in sorted(run.metadata.items()))
        lines.append(f"  metadata   {pairs}")
    return "\n".join(lines)


def _step_summary(step: RunStep) -> str:
    details = step.step_details
    if isinstance(details, MessageCreationDetails):
        return f"message {details.message_creation.message_id}"
    if not isinstance(details, ToolCallsDetails):
        return details.type
    parts = []
    for call in details.tool_calls:
        if isinstance(call, FunctionCall):
            parts.append(f"{call.function.name}({call.function.arguments})")
        elif isinstance(call, CodeInterpreterCall):
            parts.append(f"code_interpreter ({len(call.code_interpreter.outputs)} out)")
        elif isinstance(call, FileSearchCall):
            found = len(call.file_search.results or [])
            parts.append(f"file_search ({found} results)")
        else:
            parts.append(call.type)
    return ", ".join(parts)


def steps_table(steps: Sequence[RunStep]) -> str:
    """A table of *steps*, one line each."""
    if not steps:
        return "no steps"
    rows = [("STEP", "TYPE", "STATUS", "CREATED", "DETAILS")]
    rows += [
        (s.id, s.type, str(s.status), _when(s.created_at), _step_summary(s))
        for s in steps
    ]
    return _table(rows)


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    )


# --- the demo -----------------------------------------------------------------

DEMO_RUNS: Final = (
    ("completes quickly", "quick"),
    ("completes", "steady"),
    ("completes slowly", "slow"),
    ("fails: server error", "server_error"),
    ("fails: rate limit", "rate_limited"),
    ("ends incomplete", "incomplete"),
    ("needs a tool output", "tool"),
    ("never ends: cancelled on timeout", "endless"),
)
DEMO_TIMEOUT: Final = 4.0


def _get_weather(city: str = "somewhere") -> dict[str, Any]:
    return {"city": city, "forecast": "sunny", "celsius": 21}


async def _demo(args: argparse.Namespace) -> int:
    if args.base_url:
        if not args.assistant_id:
            print(
                "openai-runs: error: --base-url needs --assistant-id", file=sys.stderr
            )
            return EXIT_USAGE
        try:
            async with _client(args) as client:
                return await _demo_batch(client, args.assistant_id, scripted=False)
        except OpenAIRunsError as error:
            return _fail(error)
    emulator = Emulator(scripts=_demo_scripts(), poll_after_ms=200)
    async with emulator:
        print(f"Emulator serving {emulator.url}", file=sys.stderr)
        async with RunsClient(
            base_url=emulator.url, api_key=emulator.api_key
        ) as client:
            return await _demo_batch(client, "asst_demo", scripted=True)


def _demo_scripts() -> dict[str, Any]:
    return {
        "quick": RunScript.completed(after=0.5),
        "steady": RunScript.completed(after=1.5),
        "slow": RunScript.completed(after=2.5),
        "server_error": RunScript.failed(after=1.0, code="server_error"),
        "rate_limited": RunScript.failed(
            after=2.0, code="rate_limit_exceeded", message="Slow down."
        ),
        "incomplete": RunScript.incomplete(after=1.2),
        "tool": RunScript.requires_action(
            ScriptCall("get_weather", '{"city": "Lisbon"}'), after=0.8, then=1.0
        ),
        "endless": RunScript.endless(),
    }


async def _demo_batch(client: RunsClient, assistant_id: str, *, scripted: bool) -> int:
    started = time.monotonic()
    out: TextIO = sys.stderr
    weather = FunctionTool(
        function=FunctionDefinition(
            name="get_weather",
            description="The weather in a city.",
            parameters={"type": "object", "properties": {"city": {"type": "string"}}},
        )
    )
    labels: dict[str, str] = {}
    refs: list[tuple[str, str, str]] = []
    for label, script in DEMO_RUNS:
        metadata = {"emulator_script": script} if scripted else {"demo": script}
        run = await client.runs.create_thread_and_run(
            assistant_id=assistant_id,
            tools=[weather] if script == "tool" else None,
            metadata=metadata,
        )
        labels[run.id] = label
        refs.append((run.thread_id, run.id, label))
    width = max(len(label) for label, _ in DEMO_RUNS)
    print(f"Watching {len(labels)} runs at once:", file=out)

    def progress(run: Run) -> None:
        elapsed = time.monotonic() - started
        print(f"  {elapsed:5.1f}s  {labels[run.id]:<{width}}  {run.status}", file=out)

    rows = [("RUN", "SCRIPT", "STATUS", "NOTE")]
    watches = client.runs.watch_many(
        refs,
        timeout=DEMO_TIMEOUT if scripted else None,
        cancel_on_timeout=True,
        on_status=progress,
        tool_handler=tool_registry({"get_weather": _get_weather}),
    )
    async with contextlib.aclosing(watches):
        async for result in watches:
            final, note = result.run, ""
            if isinstance(result.error, WatchTimeoutError):
                final, note = result.error.run, "timed out, cancelled"
            elif result.error is not None:
                note = f"error: {result.error}"
            status = "-" if final is None else str(final.status)
            if final is not None and final.last_error is not None:
                note = note or final.last_error.message
            rows.append((result.run_id, str(result.key), status, note))
    print(_table(rows))
    print(f"{len(rows) - 1} runs in {time.monotonic() - started:.1f}s", file=out)
    return EXIT_OK
