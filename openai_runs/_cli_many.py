"""`openai-runs watch-many`: a file of runs watched with a store, resumable."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Final, TextIO

from . import RunsClient, WatchResult, converter
from ._validation import check_id
from .exceptions import InvalidRequestError, WatchTimeoutError
from .models import Run, RunStatus
from .store import RunStore, SQLiteRunStore

__all__ = [
    "Progress",
    "add_arguments",
    "exit_code",
    "outcome_of",
    "read_refs",
    "result_line",
    "watch_many_command",
]

REDIS_SCHEMES: Final = ("redis://", "rediss://", "unix://")
PROGRESS_EVERY: Final = 0.5
"""Seconds between redraws of the progress line."""

Ref = tuple[str, str, Any]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `watch-many`."""
    p.add_argument(
        "--from",
        dest="source",
        metavar="FILE",
        help='the runs, one JSON object a line: {"thread_id": ..., "run_id": ...} '
        '(and an optional "key"); - reads standard input',
    )
    p.add_argument(
        "--store",
        metavar="PATH|URL",
        help="record the runs here, to go on after a crash: a SQLite file "
        "(created if missing), or a redis:// URL (pip install 'openai-runs[redis]'); "
        "without --from, go on with the store's runs that had not ended",
    )
    p.add_argument(
        "--store-name",
        default="default",
        metavar="NAME",
        help="with a redis:// store: the store's name (default 'default')",
    )
    p.add_argument(
        "--lease",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a claim on a run lasts unless renewed: after a crash, "
        "another worker takes the runs over this long later (default 30)",
    )
    p.add_argument("--timeout", type=float, help="seconds to watch each run (900)")
    p.add_argument(
        "--cancel-on-timeout",
        action="store_true",
        help="cancel a run at its deadline and report how it ended",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress line on stderr (default: only when stderr is a terminal)",
    )


def read_refs(source: str) -> list[Ref]:
    """Read `{"thread_id", "run_id"[, "key"]}` JSON lines from *source* ('-': stdin).

    Raises:
        InvalidRequestError: The file cannot be read, or a line is not such
            an object (the message names the line).
    """
    if source == "-":
        return list(_parse_lines(sys.stdin, "<stdin>"))
    path = Path(source)
    try:
        with path.open(encoding="utf-8") as lines:
            return list(_parse_lines(lines, source))
    except OSError as exc:
        raise InvalidRequestError(
            "from", f"cannot read {source}: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError as exc:
        raise InvalidRequestError("from", f"{source}: not UTF-8 text ({exc})") from None


def _parse_lines(lines: Iterator[str] | TextIO, name: str) -> Iterator[Ref]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise InvalidRequestError("from", f"{where}: not JSON ({exc})") from None
        if not isinstance(item, dict):
            raise InvalidRequestError(
                "from",
                f'{where}: expected {{"thread_id": ..., "run_id": ...}}, '
                f"got {line.strip()[:80]}",
            )
        ids = []
        for field in ("thread_id", "run_id"):
            if field not in item:
                raise InvalidRequestError("from", f"{where}: no {field!r}")
            try:
                ids.append(check_id(field, item[field]))
            except InvalidRequestError as exc:
                raise InvalidRequestError("from", f"{where}: {exc}") from None
        yield ids[0], ids[1], item.get("key")


@contextlib.asynccontextmanager
async def open_store(args: argparse.Namespace) -> AsyncIterator[RunStore | None]:
    """The store `--store` names, opened; *None* without one."""
    if args.store is None:
        yield None
        return
    if args.store.startswith(REDIS_SCHEMES):
        try:
            # By name: redis-py is the optional [redis] extra.
            from .redis import RedisRunStore  # noqa: PLC0415
        except ImportError:
            raise InvalidRequestError(
                "store", "a redis:// store needs pip install 'openai-runs[redis]'"
            ) from None
        async with RedisRunStore(
            args.store, name=args.store_name, lease=args.lease
        ) as redis_store:
            yield redis_store
        return
    async with SQLiteRunStore(args.store, lease=args.lease) as sqlite_store:
        yield sqlite_store


class Progress:
    """One line on a terminal: ended and watching runs by status, rate, time.

    Drawn on *out* (stderr) every [PROGRESS_EVERY][] seconds; cleared before
    a result line is printed so the two never mix, and redrawn at the next
    tick.
    """

    def __init__(self, out: TextIO, *, total: int, ended_before: int) -> None:
        self.out = out
        self.total = total
        self.ended_before = ended_before
        self.started = time.monotonic()
        self.watching: dict[str, str] = {}
        self.ended: Counter[str] = Counter()
        self.shown = False

    def status(self, run: Run) -> None:
        """A watched run changed status."""
        if not run.is_terminal:
            self.watching[run.id] = str(run.status)

    async def tick(self) -> None:
        """Redraw every [PROGRESS_EVERY][] seconds, until cancelled."""
        while True:
            self.draw()
            await asyncio.sleep(PROGRESS_EVERY)

    def finish(self) -> None:
        """Draw the last state and leave it on its own line."""
        self.clear()
        self.draw()
        self.out.write("\n")
        self.out.flush()
        self.shown = False

    def end(self, result: WatchResult, outcome: str) -> None:
        """A run was reported."""
        self.watching.pop(result.run_id, None)
        self.ended[outcome] += 1

    def clear(self) -> None:
        if self.shown:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self.shown = False

    def draw(self) -> None:
        now = time.monotonic()
        elapsed = now - self.started
        done = sum(self.ended.values())
        total = max(self.total, self.ended_before + done + len(self.watching))
        parts = [f"{self.ended_before + done}/{total} ended"]
        if self.ended:
            parts[0] += f" ({_by_count(self.ended)})"
        if self.watching:
            watching = Counter(self.watching.values())
            parts.append(f"{len(self.watching)} watching ({_by_count(watching)})")
        rate = done / elapsed if elapsed > 0 else 0.0
        parts.append(f"{rate:.1f}/s")
        left = total - self.ended_before - done
        if rate > 0 and left > 0:
            parts.append(f"~{_duration(left / rate)} left")
        parts.append(f"{_duration(elapsed)} elapsed")
        self.out.write("\r\x1b[K" + " · ".join(parts))
        self.out.flush()
        self.shown = True


def _by_count(counts: Counter[str]) -> str:
    return ", ".join(f"{status} {n}" for status, n in counts.most_common())


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def outcome_of(result: WatchResult) -> str:
    """How a reported run stands: its final status, or `timed out` / `error`."""
    if isinstance(result.error, WatchTimeoutError):
        return "timed out"
    if result.error is not None:
        return "error"
    assert result.run is not None
    return str(result.run.status)


def result_line(result: WatchResult, *, as_json: bool) -> str:
    """One finished run, as a line of text or of JSON."""
    final = result.final_run
    outcome = outcome_of(result)
    if as_json:
        return json.dumps(
            {
                "thread_id": result.thread_id,
                "run_id": result.run_id,
                "key": result.key,
                "status": None if final is None else str(final.status),
                "outcome": outcome,
                "error": None if result.error is None else str(result.error),
                "run": None if final is None else converter.unstructure(final),
            }
        )
    note = ""
    if result.error is not None:
        note = str(result.error)
    elif final is not None and final.last_error is not None:
        note = final.last_error.message
    return "  ".join(
        part for part in (result.run_id, result.thread_id, outcome, note) if part
    )


async def watch_many_command(args: argparse.Namespace, client: RunsClient) -> int:
    """Watch the runs of `--from` (and the store's open runs); report each once."""
    from ._cli import EXIT_USAGE  # noqa: PLC0415

    if args.source is None and args.store is None:
        print(
            "openai-runs: error: watch-many needs --from FILE, --store PATH, or both",
            file=sys.stderr,
        )
        return EXIT_USAGE
    refs = [] if args.source is None else read_refs(args.source)
    options: dict[str, Any] = {
        "timeout": args.timeout,
        "cancel_on_timeout": args.cancel_on_timeout,
    }
    show = sys.stderr.isatty() if args.progress is None else args.progress
    reported: Counter[str] = Counter()
    started = time.monotonic()
    async with open_store(args) as store:
        before = {} if store is None else await store.counts()
        ended_before = sum(n for outcome, n in before.items() if outcome != "open")
        progress = None
        if show:
            known = sum(before.values())
            progress = Progress(
                sys.stderr,
                total=max(known, len({r[:2] for r in refs})),
                ended_before=ended_before,
            )
            options["on_status"] = progress.status
        phases: list[AsyncGenerator[WatchResult, None]] = []
        if refs:
            phases.append(client.runs.watch_many(refs, store=store, **options))
        if store is not None:
            # Runs a killed worker (or this command, killed before) held, and
            # runs in the store not in the file: taken over, reported once.
            phases.append(client.runs.resume_many(store, **options))
        ticker = None if progress is None else asyncio.create_task(progress.tick())
        try:
            await _report(phases, reported, progress, as_json=args.json)
        finally:
            if ticker is not None:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
        if progress is not None:
            progress.finish()
        after = None if store is None else await store.counts()
    elapsed = time.monotonic() - started
    summary = _summary(reported, after, ended_before, elapsed)
    print(summary, file=sys.stderr if args.json else sys.stdout, flush=True)
    return exit_code(set(reported) | set(after or {}))


async def _report(
    phases: list[AsyncGenerator[WatchResult, None]],
    reported: Counter[str],
    progress: Progress | None,
    *,
    as_json: bool,
) -> None:
    """Print each result as it comes, one line, flushed: a kill loses none."""
    for phase in phases:
        async with contextlib.aclosing(phase) as results:
            async for result in results:
                outcome = outcome_of(result)
                reported[outcome] += 1
                if progress is not None:
                    progress.clear()
                    progress.end(result, outcome)
                print(result_line(result, as_json=as_json), flush=True)


def exit_code(outcomes: set[str]) -> int:
    """The exit code for how the runs stand, the worst first.

    1 if a watch failed or a run is left open, 7 if one timed out, 3 if a
    run ended other than `completed`, else 0.
    """
    from ._cli import EXIT_ERROR, EXIT_OK, EXIT_TIMEOUT  # noqa: PLC0415

    if outcomes & {"error", "open"}:
        return EXIT_ERROR
    if "timed out" in outcomes:
        return EXIT_TIMEOUT
    if outcomes - {RunStatus.COMPLETED}:
        return 3
    return EXIT_OK


def _summary(
    reported: Counter[str],
    stored: dict[str, int] | None,
    ended_before: int,
    elapsed: float,
) -> str:
    total = sum(reported.values())
    line = f"{total} runs reported in {elapsed:.1f}s"
    if reported:
        line += f": {_by_count(reported)}"
    if stored is not None:
        line += (
            f"; the store holds {sum(stored.values())}: {_by_count(Counter(stored))}"
        )
        if ended_before:
            line += f" ({ended_before} had ended before this run)"
    return line
