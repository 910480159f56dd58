"""The `openai-runs` command line: the SDK's public API, for people at a terminal."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from . import RunsClient, RunWatcher, _cli_many, _observe, converter, tool_registry
from ._client import FOUNDRY_ENDPOINT_ENV
from .auth import TokenCredential
from .exceptions import (
    APIStatusError,
    InvalidRequestError,
    NotFoundError,
    OpenAIRunsError,
    WatchTimeoutError,
)
from .models import (
    CodeInterpreterCall,
    FileSearchCall,
    FunctionCall,
    FunctionDefinition,
    FunctionTool,
    MessageCreationDetails,
    MessageDelta,
    Run,
    RunStatus,
    RunStep,
    TextPartDelta,
    ToolCallsDetails,
    as_datetime,
)

if TYPE_CHECKING:
    from .testing import Assistant

# The emulator (openai_runs.testing, and aiohttp.web with it) is imported by
# the commands that serve it: every other command starts without it.

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
EXIT_BROKEN_PIPE: Final = 141
"""Standard output was closed early, as by `| head` (128 + SIGPIPE, as shells say)."""

EPILOG = """\
exit codes: 0 completed (or the call succeeded), 1 API or connection error,
2 usage error, 3 failed, 4 cancelled, 5 expired, 6 incomplete, 7 watch timed
out, 8 requires_action (the run waits for tool outputs), 141 output closed
early (a broken pipe, as under `| head`).

The key comes from --api-key or OPENAI_API_KEY, the server from --base-url or
OPENAI_BASE_URL. `openai-runs demo` needs neither.

Azure AI Foundry: --foundry-endpoint (or AZURE_AI_PROJECT_ENDPOINT, when no
--base-url or OPENAI_BASE_URL is set) names the project endpoint; requests
then authenticate with azure-identity's DefaultAzureCredential (pip install
azure-identity), or with --api-key as a bearer token.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    args = _parser().parse_args(argv)
    try:
        with _log_requests() if args.verbose else contextlib.nullcontext():
            code: int = asyncio.run(args.command(args))
        sys.stdout.flush()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`--json | head`): nothing more can be shown,
        # and Python's own flush at exit must not fail again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code


@contextlib.contextmanager
def _log_requests() -> Iterator[None]:
    """`--verbose`: each HTTP attempt, one line on stderr (never the key)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("openai-runs: %(message)s"))
    log = _observe.request_log
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    _observe.install("verbose", _observe.RequestLog())
    try:
        yield
    finally:
        _observe.uninstall("verbose")
        log.removeHandler(handler)


def _add_verbose(
    parser: argparse.ArgumentParser, common: argparse.ArgumentParser
) -> None:
    """`--verbose` before the command or after it: `openai-runs -v get ...`."""
    verbose = "log each HTTP request in one line on stderr"
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose)
    # SUPPRESS: a command without the flag keeps the one given before it.
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose
    )


def _parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - a line per option
    parser = argparse.ArgumentParser(
        prog="openai-runs",
        description="Inspect, watch and emulate OpenAI Assistants runs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base-url", help="the API root (default: OPENAI_BASE_URL)")
    common.add_argument("--api-key", help="the key (default: OPENAI_API_KEY)")
    common.add_argument(
        "--foundry-endpoint",
        help="an Azure AI Foundry project endpoint, "
        "https://NAME.services.ai.azure.com/api/projects/PROJECT "
        "(default: AZURE_AI_PROJECT_ENDPOINT)",
    )
    common.add_argument("--json", action="store_true", help="print JSON")
    _add_verbose(parser, common)
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
    p = command("create", _create, "Start a run of an assistant on a thread.")
    _ids(p, "thread")
    p.add_argument("--assistant", required=True, metavar="ID", help="the assistant")
    p.add_argument("--instructions", help="replace the assistant's instructions")
    p.add_argument(
        "--metadata", nargs="+", metavar="KEY=VALUE", type=_pair, help="tag the run"
    )
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
    p = command(
        "watch-many",
        _watch_many,
        "Watch many runs (ids as JSON lines) with a store: resumable after a crash.",
    )
    _cli_many.add_arguments(p)
    p = command(
        "stream", _stream, "Start a run on a thread and print its reply as it comes."
    )
    p.add_argument("thread_id", metavar="THREAD", help="the thread to run")
    p.add_argument("--assistant", required=True, help="the assistant to run it with")
    p.add_argument("--timeout", type=float, help="seconds for the whole stream")
    p = command(
        "run",
        _run,
        "Say something to an assistant: a thread, your message, a run, the reply.",
    )
    _run_options(p)
    # serve talks to no server, so it takes none of the client options.
    doc = "Serve the Runs API emulator until Ctrl-C."
    p = sub.add_parser("serve", help=doc, description=doc)
    p.set_defaults(command=_serve)
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="default 8080; 0 picks one")
    p.add_argument(
        "--key",
        help="the key clients must send (default: any key, as local emulators take)",
    )
    p.add_argument(
        "--dialect",
        choices=["openai", "foundry"],
        default="openai",
        help="serve OpenAI's shape at /v1 (default), or Azure AI Foundry's at "
        "/api/projects/PROJECT (any bearer token; --key unused)",
    )
    _serve_options(p)
    p = command("demo", _demo, "Run and watch a batch of runs, on the emulator.")
    p.add_argument(
        "--assistant-id",
        help="with --base-url: the assistant to run on the real server",
    )
    return parser


def _serve_options(p: argparse.ArgumentParser) -> None:
    """The emulator's settings, for test suites that drive it from outside."""
    p.add_argument(
        "--project", default="emulator", help="the Foundry project name in the URL"
    )
    p.add_argument(
        "--manual-clock",
        action="store_true",
        help="time moves only on POST /_emulator/clock/advance (starts at now)",
    )
    p.add_argument(
        "--poll-after-ms",
        type=int,
        metavar="MS",
        help="send this openai-poll-after-ms hint on run responses",
    )
    p.add_argument(
        "--expires-after",
        type=_seconds_or_never,
        default=600.0,
        metavar="SECONDS",
        help="seconds from a run's creation to its expiry, or 'never' (default 600)",
    )
    p.add_argument(
        "--cancel-delay",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="seconds a cancelled run spends cancelling (default 0.5)",
    )
    p.add_argument(
        "--require-beta",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="require OpenAI-Beta: assistants=v2, as the live API does (default)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seeds faults with a probability"
    )
    p.add_argument(
        "--assistants",
        type=Path,
        metavar="FILE",
        help="a JSON array of assistants ({id, model, instructions, tools, ...}) "
        "whose runs inherit them",
    )
    p.add_argument(
        "--metadata-update",
        choices=["replace", "merge"],
        default="replace",
        help="how modifying a run treats its metadata (live behaviour undocumented)",
    )
    p.add_argument(
        "--unknown-cursor",
        choices=["error", "empty"],
        default="error",
        help="a list's answer to an unknown after/before id: 400 or an empty page",
    )
    p.add_argument(
        "--rate-limit",
        type=_requests_per_second,
        metavar="N",
        help="answer 429 rate_limit_exceeded, with Retry-After, when one key sends "
        "more than N requests a second (default: no limit)",
    )
    p.add_argument(
        "--strict-assistants",
        action="store_true",
        help="answer 404 for an assistant_id not registered (default: accept any)",
    )


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("message", help="what the user says")
    parser.add_argument(
        "--assistant", required=True, metavar="ID", help="the assistant"
    )
    parser.add_argument(
        "--thread", metavar="ID", help="go on with this thread (default: a new one)"
    )
    parser.add_argument("--timeout", type=float, help="seconds to watch (default 900)")


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
    if not key:
        raise argparse.ArgumentTypeError(f"{text!r} has an empty key")
    return key, value


@contextlib.asynccontextmanager
async def _client(args: argparse.Namespace) -> AsyncIterator[RunsClient]:
    """The client the global options describe: OpenAI's, or a Foundry project's."""
    endpoint = args.foundry_endpoint
    if endpoint is None and not (args.base_url or os.environ.get("OPENAI_BASE_URL")):
        endpoint = os.environ.get(FOUNDRY_ENDPOINT_ENV)
    if not endpoint:
        async with RunsClient(api_key=args.api_key, base_url=args.base_url) as client:
            yield client
        return
    if args.api_key:
        async with RunsClient.foundry(endpoint, api_key=args.api_key) as client:
            yield client
        return
    async with (
        _azure_credential() as credential,
        RunsClient.foundry(endpoint, credential=credential) as client,
    ):
        yield client


@contextlib.asynccontextmanager
async def _azure_credential() -> AsyncIterator[TokenCredential]:
    """azure-identity's DefaultAzureCredential, closed after use."""
    try:
        # By name: azure-identity is optional, and has no stubs for mypy.
        identity = importlib.import_module("azure.identity.aio")
    except ImportError:
        raise InvalidRequestError(
            "foundry-endpoint",
            "needs an Azure credential: pip install azure-identity "
            "(or pass --api-key with a token)",
        ) from None
    credential = identity.DefaultAzureCredential()
    try:
        yield credential
    finally:
        await credential.close()


async def _call(
    args: argparse.Namespace, action: Callable[[RunsClient], Coroutine[Any, Any, int]]
) -> int:
    """Run *action* with a client; print an error as one line, not a traceback."""
    base_url = None
    try:
        async with _client(args) as client:
            base_url = client.base_url
            return await action(client)
    except OpenAIRunsError as error:
        return _fail(error, _hint(args, error, base_url))


def _fail(error: OpenAIRunsError, hint: str | None = None) -> int:
    print(f"openai-runs: error: {error}", file=sys.stderr)
    if hint is not None:
        print(f"openai-runs: hint: {hint}", file=sys.stderr)
    if isinstance(error, ValueError):
        return EXIT_USAGE
    return EXIT_ERROR


def _hint(
    args: argparse.Namespace, error: OpenAIRunsError, base_url: str | None
) -> str | None:
    """What the user most likely got wrong, for the errors people get lost in."""
    if not isinstance(error, APIStatusError):
        return None
    thread_id = getattr(args, "thread_id", "")
    run_id = getattr(args, "run_id", "")
    order = "the thread id comes first, then the run id"
    if thread_id.startswith("run_"):
        return f"THREAD {thread_id!r} looks like a run id: {order}"
    if run_id.startswith("thread_"):
        return f"RUN {run_id!r} looks like a thread id: {order}"
    if (
        isinstance(error, NotFoundError)
        and "Invalid URL" in str(error)
        and base_url is not None
        and not base_url.rstrip("/").endswith("/v1")
        # A Foundry project endpoint has no /v1, rightly.
        and "/api/projects/" not in base_url
    ):
        return (
            f"the base URL {base_url} has no /v1; the API is usually under it "
            f"(--base-url or OPENAI_BASE_URL {base_url.rstrip('/')}/v1)"
        )
    return None


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


async def _create(args: argparse.Namespace) -> int:
    async def action(client: RunsClient) -> int:
        run = await client.runs.create(
            args.thread_id,
            assistant_id=args.assistant,
            instructions=args.instructions,
            metadata=dict(args.metadata) if args.metadata else None,
        )
        _emit(args, run, describe_run(run))
        return EXIT_OK

    return await _call(args, action)


async def _run(args: argparse.Namespace) -> int:
    started = time.monotonic()

    def progress(run: Run) -> None:
        print(f"{time.monotonic() - started:7.1f}s  {run.status}", file=sys.stderr)

    async def action(client: RunsClient) -> int:
        if args.thread is None:
            thread_id = (await client.threads.create()).id
        else:
            thread_id = args.thread
        await client.messages.create(thread_id, content=args.message)
        run = await client.runs.create(thread_id, assistant_id=args.assistant)
        print(f"thread {thread_id}  run {run.id}", file=sys.stderr)
        try:
            run = await client.runs.poll(
                thread_id, run.id, timeout=args.timeout, on_status=progress
            )
        except WatchTimeoutError as error:
            print(f"openai-runs: {error}", file=sys.stderr)
            if error.run is not None:
                _emit(args, error.run, describe_run(error.run))
            return EXIT_TIMEOUT
        if args.json:
            _emit(args, run, "")
        else:
            replies = client.messages.list(thread_id, run_id=run.id, order="asc")
            said = [m.text async for m in replies if m.role == "assistant"]
            print("\n\n".join(said) if said else describe_run(run))
        return exit_code(run)

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
        if args.timeout == 0:
            # "Has it ended?": a deadline of now still looks once.
            run = await client.runs.retrieve(args.thread_id, args.run_id)
            if run.is_terminal or run.status == RunStatus.REQUIRES_ACTION:
                _emit(args, run, describe_run(run))
                return exit_code(run)
            if not args.cancel_on_timeout:
                print(f"openai-runs: run {run.id} has not ended", file=sys.stderr)
                _emit(args, run, describe_run(run))
                return EXIT_TIMEOUT
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


async def _watch_many(args: argparse.Namespace) -> int:
    return await _call(args, lambda client: _cli_many.watch_many_command(args, client))


async def _stream(args: argparse.Namespace) -> int:
    async def action(client: RunsClient) -> int:
        stream = client.runs.stream(
            args.thread_id, assistant_id=args.assistant, timeout=args.timeout
        )
        try:
            async with stream:
                async for event in stream:
                    if args.json:
                        data = converter.unstructure(event.data)
                        line = {"event": event.event, "data": data}
                        print(json.dumps(line), flush=True)
                    elif isinstance(event.data, MessageDelta):
                        for part in event.data.delta.content or ():
                            if isinstance(part, TextPartDelta) and part.text:
                                print(part.text.value or "", end="", flush=True)
                run = await stream.final_run()
        except WatchTimeoutError as error:
            print(f"\nopenai-runs: {error}", file=sys.stderr)
            return EXIT_TIMEOUT
        if not args.json:
            print()
            print(f"[{run.id} {run.status}]", file=sys.stderr)
        return exit_code(run)

    return await _call(args, action)


def exit_code(run: Run) -> int:
    """The exit code that says how *run* ended."""
    if run.status == RunStatus.COMPLETED and run.incomplete_details is not None:
        # Azure AI Foundry has no `incomplete` status: a run cut short by a
        # token limit may end `completed`, with `incomplete_details` set.
        return EXIT_CODES[RunStatus.INCOMPLETE]
    return EXIT_CODES.get(run.status, EXIT_ERROR)


def _seconds_or_never(text: str) -> float | None:
    if text == "never":
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected seconds or 'never', got {text!r}"
        ) from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}")
    return seconds


def _requests_per_second(text: str) -> int:
    """Parse --rate-limit: a whole number of requests, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _load_assistants(path: Path | None) -> list[Assistant]:
    """Read `--assistants`: a JSON array of objects with Assistant's fields.

    Raises:
        ValueError: If the file is unreadable or its assistants invalid.
        TypeError: If the file is not a JSON array.
    """
    from .testing import Assistant  # noqa: PLC0415 - see the imports

    if path is None:
        return []
    try:
        items = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"--assistants {path}: {error}") from None
    if not isinstance(items, list):
        raise TypeError(f"--assistants {path}: expected a JSON array of assistants")
    try:
        return [Assistant(**item) for item in items]
    except TypeError as error:
        raise ValueError(f"--assistants {path}: {error}") from None


async def _serve(args: argparse.Namespace) -> int:
    from .testing import Emulator, ManualClock, RateLimit  # noqa: PLC0415

    try:
        assistants = _load_assistants(args.assistants)
    except (ValueError, TypeError) as error:
        print(f"openai-runs: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    emulator = Emulator(
        api_key=args.key,
        dialect=args.dialect,
        project=args.project,
        clock=ManualClock(time.time()) if args.manual_clock else None,
        poll_after_ms=args.poll_after_ms,
        expires_after=args.expires_after,
        cancel_delay=args.cancel_delay,
        require_beta=args.require_beta,
        seed=args.seed,
        assistants=assistants,
        strict_assistants=args.strict_assistants,
        metadata_update=args.metadata_update,
        unknown_cursor=args.unknown_cursor,
        rate_limit=None
        if args.rate_limit is None
        else RateLimit(requests=args.rate_limit, per=1.0),
    )
    try:
        await emulator.start(args.host, args.port)
    except OSError as error:  # the port is taken, or the host is not ours
        print(f"openai-runs: error: cannot serve: {error}", file=sys.stderr)
        return EXIT_ERROR
    key = "any key" if args.key is None else f"key {args.key!r}"
    if args.dialect == "foundry":
        key = "any bearer token, api-version=v1"
    if args.rate_limit is not None:
        key += f", at most {args.rate_limit} requests a second per key"
    print(
        f"Serving the Runs API emulator on {emulator.url} ({key}); Ctrl-C stops it.",
        file=sys.stderr,
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await emulator.close()
    return EXIT_OK


# --- human output -------------------------------------------------------------


def _when(timestamp: int | None) -> str:
    try:
        moment = as_datetime(timestamp)
    except ValueError:  # beyond the years 1 to 9999: show the number itself
        return f"{timestamp} (out of range)"
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
                return await _demo_batch(
                    client, args.assistant_id, scripted=False, as_json=args.json
                )
        except OpenAIRunsError as error:
            return _fail(error)
    for option, given in (
        ("--api-key", args.api_key),
        ("--assistant-id", args.assistant_id),
    ):
        if given:
            print(
                f"openai-runs: error: {option} needs --base-url "
                "(without it the demo runs on the emulator)",
                file=sys.stderr,
            )
            return EXIT_USAGE
    from .testing import Emulator  # noqa: PLC0415 - see the imports

    emulator = Emulator(scripts=_demo_scripts(), poll_after_ms=200)
    async with emulator:
        print(f"Emulator serving {emulator.url}", file=sys.stderr)
        async with RunsClient(
            base_url=emulator.url, api_key=emulator.api_key
        ) as client:
            return await _demo_batch(
                client, "asst_demo", scripted=True, as_json=args.json
            )


def _demo_scripts() -> dict[str, Any]:
    from .testing import RunScript, ScriptedCall  # noqa: PLC0415 - see the imports

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
            ScriptedCall("get_weather", '{"city": "Lisbon"}'), after=0.8, then=1.0
        ),
        "endless": RunScript.endless(),
    }


async def _demo_batch(
    client: RunsClient, assistant_id: str, *, scripted: bool, as_json: bool
) -> int:
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
    ended: list[dict[str, Any]] = []
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
            ended.append(
                {
                    "thread_id": result.thread_id,
                    "run_id": result.run_id,
                    "script": result.key,
                    "status": None if final is None else str(final.status),
                    "note": note or None,
                    "run": None if final is None else converter.unstructure(final),
                }
            )
    if as_json:
        print(json.dumps(ended, indent=2))
    else:
        print(_table(rows))
    print(f"{len(rows) - 1} runs in {time.monotonic() - started:.1f}s", file=out)
    return EXIT_OK
