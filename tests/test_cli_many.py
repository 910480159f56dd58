"""`openai-runs watch-many`: a file of runs, a store, a kill, a second run; each run once."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _redis import redis_server_fixture, redis_url_fixture  # noqa: F401

from openai_runs._cli import main
from openai_runs.store import SQLiteRunStore
from openai_runs.testing import Emulator, ManualClock, RunScript

KEY = "sk-cli-many"
OPENAI_RUNS = str(Path(sys.executable).with_name("openai-runs"))


def child_env(emu: Emulator) -> dict[str, str]:
    # As a user runs it: not in asyncio's debug mode, whose reports of slow
    # callbacks on a loaded machine would be taken for the command's output.
    debug = {"PYTHONASYNCIODEBUG", "PYTHONDEVMODE"}
    env = {k: v for k, v in os.environ.items() if k not in debug}
    return {**env, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": emu.url}


@pytest.fixture(name="clock")
def _clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(name="emu")
def _emu(clock: ManualClock) -> Iterator[Emulator]:
    emulator = Emulator(api_key=KEY, clock=clock, poll_after_ms=20)
    with emulator.running_in_thread():
        yield emulator


def ids_file(path: Path, emu: Emulator, *scripts: RunScript) -> list[str]:
    """Create a run per script and write their ids as JSON lines; return the run ids."""
    runs = [emu.create_run(script=script) for script in scripts]
    lines = [
        json.dumps({"thread_id": run["thread_id"], "run_id": run["id"], "key": i})
        for i, run in enumerate(runs)
    ]
    path.write_text("\n".join(lines) + "\n")
    return [run["id"] for run in runs]


def watch_many(emu: Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPENAI_RUNS, "watch-many", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=child_env(emu),
    )


def reported(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_watch_many_reports_each_run_and_a_summary(
    emu: Emulator, tmp_path: Path
) -> None:
    """A line per finished run, a summary; exit 3 when a run did not complete."""
    ids = ids_file(
        tmp_path / "ids.jsonl",
        emu,
        RunScript.completed(after=0.0),
        RunScript.completed(after=0.0),
        RunScript.failed(after=0.0),
    )
    result = watch_many(
        emu, "--from", str(tmp_path / "ids.jsonl"), "--store", str(tmp_path / "r.db")
    )
    assert result.returncode == 3, result.stderr
    lines = result.stdout.splitlines()
    assert sorted(line.split()[0] for line in lines[:3]) == sorted(ids)
    assert lines[3].startswith("3 runs reported in ")
    assert "completed 2, failed 1" in lines[3]
    assert result.stderr == ""  # piped: no progress


def test_watch_many_json_lines_and_a_second_run_reports_nothing_again(
    emu: Emulator, tmp_path: Path
) -> None:
    """--json prints one object per run; run again, it reports none of them twice."""
    ids = ids_file(tmp_path / "ids.jsonl", emu, *[RunScript.completed(after=0.0)] * 4)
    args = ("--from", str(tmp_path / "ids.jsonl"), "--store", str(tmp_path / "r.db"))
    first = watch_many(emu, *args, "--json")
    assert first.returncode == 0, first.stderr
    objects = reported(first.stdout)
    assert sorted(o["run_id"] for o in objects) == sorted(ids)
    assert {o["outcome"] for o in objects} == {"completed"}
    assert {o["key"] for o in objects} == {0, 1, 2, 3}
    assert all(o["run"]["status"] == "completed" for o in objects)
    assert "4 runs reported" in first.stderr  # the summary stays off stdout
    again = watch_many(emu, *args, "--json")
    assert again.returncode == 0
    assert again.stdout == ""
    assert "0 runs reported" in again.stderr
    assert "4 had ended before" in again.stderr


def test_a_killed_watch_many_goes_on_where_it_stopped(
    emu: Emulator, clock: ManualClock, tmp_path: Path
) -> None:
    """Killed mid-way and run again: every run is reported, and exactly once."""
    quick = [RunScript.completed(after=0.0)] * 5
    slow = [RunScript.completed(after=100.0)] * 5
    ids = ids_file(tmp_path / "ids.jsonl", emu, *quick, *slow)
    args = [
        "--from",
        str(tmp_path / "ids.jsonl"),
        "--store",
        str(tmp_path / "r.db"),
        "--json",
        "--lease",
        "0.5",
    ]
    worker = subprocess.Popen(
        [OPENAI_RUNS, "watch-many", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(emu),
    )
    assert worker.stdout is not None
    first: list[dict[str, Any]] = []
    try:
        while len(first) < 5:  # the quick runs; the slow ones are still working
            line = worker.stdout.readline()
            assert line, worker.stderr.read() if worker.stderr else ""
            first.append(json.loads(line))
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=30)
    clock.advance(200.0)
    started = time.monotonic()
    second = watch_many(emu, *args)
    assert second.returncode == 0, second.stderr
    rest = reported(second.stdout)
    assert sorted(o["run_id"] for o in first + rest) == sorted(ids)
    assert time.monotonic() - started < 30


def test_two_workers_over_one_store_report_each_run_once(
    emu: Emulator, tmp_path: Path
) -> None:
    """Two processes resuming the same SQLite store split its runs, no overlap."""
    ids = ids_file(tmp_path / "ids.jsonl", emu, *[RunScript.completed(after=0.0)] * 30)
    store = str(tmp_path / "r.db")

    async def record_only() -> None:
        # A worker that recorded the runs and stopped before watching them.
        async with SQLiteRunStore(store) as runs:
            refs = [(emu.retrieve(rid)["thread_id"], rid, None) for rid in ids]
            await runs.add("stopped", refs)
            await runs.release("stopped")

    asyncio.run(record_only())
    workers = [
        subprocess.Popen(
            [OPENAI_RUNS, "watch-many", "--store", store, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(emu),
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=60) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    runs = [o["run_id"] for out, _ in outputs for o in reported(out)]
    assert sorted(runs) == sorted(ids)


def test_watch_many_with_a_redis_store(
    emu: Emulator, tmp_path: Path, redis_url: str
) -> None:
    """--store redis://... records the runs in Redis; a second run reports none again."""
    ids = ids_file(tmp_path / "ids.jsonl", emu, *[RunScript.completed(after=0.0)] * 3)
    args = ("--from", str(tmp_path / "ids.jsonl"), "--store", redis_url, "--json")
    first = watch_many(emu, *args, "--store-name", "nightly")
    assert first.returncode == 0, first.stderr
    assert sorted(o["run_id"] for o in reported(first.stdout)) == sorted(ids)
    again = watch_many(emu, *args, "--store-name", "nightly")
    assert again.stdout == ""


def test_progress_is_drawn_on_request_and_quiet_when_piped(
    emu: Emulator, tmp_path: Path
) -> None:
    """--progress draws counts by status, rate and elapsed time on stderr."""
    ids_file(tmp_path / "ids.jsonl", emu, *[RunScript.completed(after=0.0)] * 3)
    result = watch_many(emu, "--from", str(tmp_path / "ids.jsonl"), "--progress")
    assert result.returncode == 0, result.stderr
    assert "3/3 ended (completed 3)" in result.stderr
    assert "elapsed" in result.stderr
    assert "/s" in result.stderr
    assert "\x1b[K" not in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"thread_id": "t", "run_id": "r"}\nnot json\n', "ids.jsonl:2: not JSON"),
        ('\n\n["t", "r"]\n', "ids.jsonl:3: expected"),
        ('{"thread_id": "t"}\n', "ids.jsonl:1: no 'run_id'"),
        ('{"thread_id": "t/x", "run_id": "r"}\n', "ids.jsonl:1: thread_id"),
        ('{"thread_id": 7, "run_id": "r"}\n', "ids.jsonl:1: thread_id"),
    ],
    ids=["not json", "not an object", "no run id", "unsafe id", "not a string"],
)
def test_a_bad_ids_file_names_the_line(
    emu: Emulator,
    tmp_path: Path,
    content: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad line is a usage error naming the file and line; nothing is watched."""
    for name, value in child_env(emu).items():
        monkeypatch.setenv(name, value)
    (tmp_path / "ids.jsonl").write_text(content)
    sent = emu.counts.total
    assert main(["watch-many", "--from", str(tmp_path / "ids.jsonl")]) == 2
    assert message in capsys.readouterr().err
    assert emu.counts.total == sent


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "needs --from FILE, --store PATH"),
        (("--from", "missing.jsonl"), "cannot read missing.jsonl"),
        (("--store", "no/such/dir/r.db"), "no directory"),
        (("--store", "r.db", "--lease", "0"), "lease"),
    ],
    ids=["nothing to watch", "missing file", "bad store path", "bad lease"],
)
def test_usage_errors_are_one_line(
    emu: Emulator,
    tmp_path: Path,
    args: tuple[str, ...],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Missing input, a missing file, a bad store path or lease: one line, no traceback."""
    for name, value in child_env(emu).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    assert main(["watch-many", *args]) in (1, 2)
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_ids_can_come_from_standard_input(
    emu: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--from - reads the JSON lines from standard input."""
    for name, value in child_env(emu).items():
        monkeypatch.setenv(name, value)
    ids = ids_file(tmp_path / "ids.jsonl", emu, *[RunScript.completed(after=0.0)] * 2)
    monkeypatch.setattr("sys.stdin", io.StringIO((tmp_path / "ids.jsonl").read_text()))
    assert main(["watch-many", "--from", "-", "--json"]) == 0
    out = capsys.readouterr().out
    assert sorted(o["run_id"] for o in reported(out)) == sorted(ids)
