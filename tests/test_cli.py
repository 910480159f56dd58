"""The openai-runs command line, through its entry point, against the emulator."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openai_runs._cli import main
from openai_runs.testing import Emulator, RunScript, ScriptedCall

KEY = "sk-cli-test"
# The installed console script: what a user types.
OPENAI_RUNS = str(Path(sys.executable).with_name("openai-runs"))


# As a user runs it: not in asyncio's debug mode, whose reports of slow
# callbacks on a loaded machine would be taken for the command's output.
def child_env() -> dict[str, str]:
    # PYTHONDEVMODE turns asyncio's debug mode on as well.
    debug = {"PYTHONASYNCIODEBUG", "PYTHONDEVMODE"}
    return {k: v for k, v in os.environ.items() if k not in debug}


@pytest.fixture(name="emu", scope="module")
def _emu() -> Iterator[Emulator]:
    emulator = Emulator(api_key=KEY, poll_after_ms=20)
    with emulator.running_in_thread():
        yield emulator


@pytest.fixture(name="env", autouse=True)
def _env(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.url)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def new_run(emu: Emulator, script: RunScript, **options: Any) -> tuple[str, str]:
    run = emu.create_run(script=script, **options)
    return run["thread_id"], run["id"]


def test_get_prints_a_readable_summary(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """get shows the run's id, status, thread and assistant in plain text."""
    thread, run = new_run(emu, RunScript.endless())
    code, out, _ = cli(capsys, "get", thread, run)
    assert code == 0
    assert out.splitlines()[0].split() == [run, "in_progress"]
    assert f"thread     {thread}" in out


def test_get_json_is_the_api_object(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """get --json prints the run as the API's JSON."""
    thread, run = new_run(emu, RunScript.endless())
    code, out, _ = cli(capsys, "get", thread, run, "--json")
    assert code == 0
    data = json.loads(out)
    assert (data["id"], data["object"], data["status"]) == (
        run,
        "thread.run",
        "in_progress",
    )


def test_update_sets_metadata(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """update --metadata k=v ... replaces the run's metadata."""
    thread, run = new_run(emu, RunScript.endless())
    code, out, _ = cli(
        capsys, "update", thread, run, "--metadata", "a=1", "b=x=y", "--json"
    )
    assert code == 0
    assert json.loads(out)["metadata"] == {"a": "1", "b": "x=y"}


def test_cancel_answers_cancelling(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """cancel asks for the cancel and shows the run, now cancelling."""
    thread, run = new_run(emu, RunScript.endless())
    code, out, _ = cli(capsys, "cancel", thread, run)
    assert code == 0
    assert out.split()[:2] == [run, "cancelling"]


def test_steps_lists_every_page_as_a_table(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """steps prints one row per step, across pages, in the order asked."""
    thread, run = new_run(emu, RunScript.completed(after=0.0))
    code, out, _ = cli(capsys, "steps", thread, run, "--json", "--order", "asc")
    assert code == 0
    everything = json.loads(out)
    assert everything, "a completed run has steps"
    code, out, _ = cli(capsys, "steps", thread, run, "--order", "asc", "--limit", "1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["STEP", "TYPE", "STATUS", "CREATED", "DETAILS"]
    assert [line.split()[0] for line in lines[1:]] == [s["id"] for s in everything]


def test_step_shows_one_step(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    """step prints one step, or its JSON."""
    thread, run = new_run(emu, RunScript.completed(after=0.0))
    _, out, _ = cli(capsys, "steps", thread, run, "--json")
    step_id = json.loads(out)[0]["id"]
    code, out, _ = cli(capsys, "step", thread, run, step_id, "--json")
    assert code == 0
    assert json.loads(out)["id"] == step_id


@pytest.mark.parametrize(
    ("script", "code", "status"),
    [
        (RunScript.completed(after=0.05), 0, "completed"),
        (RunScript.failed(after=0.05), 3, "failed"),
        (RunScript.incomplete(after=0.05), 6, "incomplete"),
        (
            RunScript.requires_action(ScriptedCall("f"), after=0.05),
            8,
            "requires_action",
        ),
    ],
    ids=["completed", "failed", "incomplete", "requires_action"],
)
def test_watch_exit_code_says_how_the_run_ended(
    emu: Emulator,
    capsys: pytest.CaptureFixture[str],
    script: RunScript,
    code: int,
    status: str,
) -> None:
    """watch follows the run, shows progress, and exits with the status's code."""
    thread, run = new_run(emu, script)
    got, out, err = cli(capsys, "watch", thread, run, "--timeout", "10")
    assert got == code
    assert out.split()[:2] == [run, status]
    assert status in err  # progress lines on stderr


def test_watch_timeout_with_cancel_reports_the_final_run(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """watch --timeout --cancel-on-timeout exits 7 and shows the run cancelled."""
    thread, run = new_run(emu, RunScript.endless())
    code, out, err = cli(
        capsys,
        "watch",
        thread,
        run,
        "--timeout",
        "0.2",
        "--cancel-on-timeout",
        "--json",
    )
    assert code == 7
    assert json.loads(out)["status"] == "cancelled"
    assert "openai-runs:" in err


def test_api_error_is_one_line_with_request_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unknown run exits 1 with one error line naming the request id, no traceback."""
    code, out, err = cli(capsys, "get", "thread_nope", "run_nope")
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "request id req_" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [
        ["steps", "thread_1", "run_1", "--limit", "0"],
        ["get", "thread/1", "run_1"],
    ],
)
def test_bad_input_exits_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    """An argument the SDK refuses exits 2 with its message."""
    code, _, err = cli(capsys, *args)
    assert code == 2
    assert "error:" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed command line exits 2, as argparse does."""
    with pytest.raises(SystemExit) as info:
        main(["update", "t", "r", "--metadata", "novalue"])
    assert info.value.code == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_missing_key_is_a_clear_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a key, the command says how to give one and exits 2."""
    monkeypatch.delenv("OPENAI_API_KEY")
    code, _, err = cli(capsys, "get", "thread_1", "run_1")
    assert code == 2
    assert "OPENAI_API_KEY" in err


def test_demo_runs_a_batch_on_the_emulator(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """demo needs no key or server, and ends with every scripted outcome in its table."""
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    code, out, err = cli(capsys, "demo")
    assert code == 0
    rows = {line.split("  ")[1].strip(): line for line in out.splitlines()[1:]}
    assert len(rows) == 8
    assert " completed " in rows["needs a tool output"]
    assert " cancelled " in rows["never ends: cancelled on timeout"]
    assert " failed " in rows["fails: server error"]
    assert " incomplete " in rows["ends incomplete"]
    assert "needs a tool output               requires_action" in err


def test_serve_on_a_taken_port_is_one_error_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """serve on a port already in use exits 1 with one line, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, _, err = cli(capsys, "serve", "--port", str(taken.getsockname()[1]))
    assert code == 1
    assert "cannot serve" in err
    assert "Traceback" not in err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_entry_point_serves_and_answers() -> None:
    """`openai-runs serve` binds loopback and `python -m openai_runs get` talks to it."""
    port = _free_port()
    env = {
        **child_env(),
        "OPENAI_API_KEY": "sk-emulator",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "openai_runs", "serve", "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        result = subprocess.run(
            [sys.executable, "-m", "openai_runs", "get", "thread_x", "run_x"],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    finally:
        server.terminate()
        _, server_err = server.communicate(timeout=10)
    assert result.returncode == 1
    assert "No thread found" in result.stderr or "not found" in result.stderr.lower()
    assert f"http://127.0.0.1:{port}/v1" in server_err


def entry_point(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed `openai-runs` command."""
    return subprocess.run(
        [OPENAI_RUNS, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**child_env(), **(env or {})},
    )


@contextlib.contextmanager
def serving(*args: str) -> Iterator[str]:
    """Run `openai-runs serve --port 0 ARGS`; yield its URL once it listens."""
    server = subprocess.Popen(
        [OPENAI_RUNS, "serve", "--port", "0", *args],
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    assert server.stderr is not None
    try:
        # The announcement, after anything else the child logs first (asyncio's
        # debug mode reports a slow start-up on a loaded machine).
        seen: list[str] = []
        url = None
        while line := server.stderr.readline():
            seen.append(line)
            if url := re.search(r"http://127\.0\.0\.1:\d+/v1", line):
                break
        assert url is not None, seen
        yield url.group(0)
    finally:
        server.send_signal(signal.SIGINT)
        _, rest = server.communicate(timeout=10)
    assert "Traceback" not in rest


def new_thread(url: str, key: str | None) -> int:
    """POST /threads with *key*; return the HTTP status."""
    headers = {"OpenAI-Beta": "assistants=v2", "Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"{url}/threads", b"{}", headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_serve_accepts_any_key_by_default() -> None:
    """serve without --key answers a client whatever key it sends, as moto does."""
    with serving() as url:
        assert new_thread(url, "sk-whatever-the-environment-has") == 200
        assert new_thread(url, "another") == 200


def test_serve_key_requires_that_key() -> None:
    """serve --key KEY answers 401 to any other key, and 200 to KEY."""
    with serving("--key", "sk-right") as url:
        assert new_thread(url, "sk-wrong") == 401
        assert new_thread(url, None) == 401
        assert new_thread(url, "sk-right") == 200


def post_thread(url: str, key: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    """POST /threads with *key*; return the status, headers and JSON body."""
    headers = {
        "OpenAI-Beta": "assistants=v2",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {key}",
    }
    request = urllib.request.Request(f"{url}/threads", b"{}", headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status), dict(answer.headers), json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.load(error)


def test_serve_rate_limit_answers_429_past_n_a_second() -> None:
    """serve --rate-limit N answers a key's requests past N a second with the API's 429 and Retry-After."""
    with serving("--rate-limit", "3") as url:
        started = time.monotonic()
        answers = [post_thread(url, "sk-busy") for _ in range(12)]
        elapsed = time.monotonic() - started
        # Another key has its own allowance.
        assert post_thread(url, "sk-calm")[0] == 200
    statuses = [status for status, _, _ in answers]
    assert statuses[:3] == [200, 200, 200]
    # 3 at once, then 3 more each second.
    assert statuses.count(200) <= 3 + int(3 * elapsed) + 1
    refused = [(h, body) for status, h, body in answers if status == 429]
    assert refused
    headers, body = refused[0]
    assert int(headers["Retry-After"]) >= 1
    assert 0 < int(headers["retry-after-ms"]) <= 1000
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert body["error"]["type"] == "requests"


@pytest.mark.parametrize("bad", ["0", "-5", "2.5", "many"])
def test_serve_rate_limit_must_be_a_positive_whole_number(bad: str) -> None:
    """serve --rate-limit 0, negative, fractional or not a number is a usage error (exit 2)."""
    result = entry_point("serve", "--port", "0", "--rate-limit", bad)
    assert result.returncode == 2
    assert "--rate-limit" in result.stderr
    assert "Serving" not in result.stderr


def test_serve_help_lists_only_options_that_work() -> None:
    """serve --help offers --host, --port and --key, and no client options it would ignore."""
    result = entry_point("serve", "--help")
    assert result.returncode == 0
    for option in ("--host", "--port", "--key"):
        assert option in result.stdout
    for ignored in ("--base-url", "--api-key", "--json"):
        assert ignored not in result.stdout
    assert entry_point("serve", "--json").returncode == 2


def test_serve_on_a_busy_port_fails_before_announcing() -> None:
    """serve on a taken port exits 1 with one error line and never says it is serving."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = entry_point("serve", "--port", str(taken.getsockname()[1]))
    assert result.returncode == 1
    assert "Serving" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "cannot serve" in result.stderr


def test_create_starts_a_bare_run_on_a_thread(emu: Emulator) -> None:
    """create THREAD --assistant ID starts a run there and prints it; --json the API object."""
    thread = emu.create_thread()
    result = entry_point(
        "create", thread, "--assistant", "asst_cli", "--metadata", "team=cli"
    )
    assert result.returncode == 0, result.stderr
    run_id, status = result.stdout.splitlines()[0].split()
    assert status == "queued"
    metadata = emu.retrieve(run_id)["metadata"]
    assert metadata.pop("openai_runs_idempotency_key").startswith("idem_")
    assert metadata == {"team": "cli"}
    # Another thread: this one's run is still active.
    other = emu.create_thread()
    as_json = entry_point("create", other, "--assistant", "asst_cli", "--json")
    run = json.loads(as_json.stdout)
    assert (run["object"], run["thread_id"], run["assistant_id"]) == (
        "thread.run",
        other,
        "asst_cli",
    )


def test_create_needs_an_assistant(emu: Emulator) -> None:
    """create without --assistant is a usage error, and no run is started."""
    thread = emu.create_thread()
    result = entry_point("create", thread)
    assert result.returncode == 2
    assert "--assistant" in result.stderr


def test_demo_json_prints_each_run_as_json() -> None:
    """demo --json prints a JSON array, one object per run with its final status."""
    result = entry_point("demo", "--json")
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout)
    assert len(runs) == 8
    by_script = {run["script"]: run for run in runs}
    assert by_script["completes quickly"]["status"] == "completed"
    assert (
        by_script["fails: server error"]["run"]["last_error"]["code"] == "server_error"
    )
    assert (
        by_script["never ends: cancelled on timeout"]["note"] == "timed out, cancelled"
    )


@pytest.mark.parametrize(
    "option", [["--api-key", "sk-x"], ["--assistant-id", "asst_x"]]
)
def test_demo_refuses_server_options_without_a_server(option: list[str]) -> None:
    """demo's --api-key and --assistant-id are for --base-url; alone they are a usage error."""
    result = entry_point("demo", *option)
    assert result.returncode == 2
    assert "needs --base-url" in result.stderr


def test_a_base_url_without_v1_gets_a_hint(emu: Emulator) -> None:
    """A 404 'Invalid URL' from a base URL that lacks /v1 says to add it."""
    thread, run = new_run(emu, RunScript.completed(after=0))
    bare = emu.url.removesuffix("/v1")
    result = entry_point("get", thread, run, env={"OPENAI_BASE_URL": bare})
    assert result.returncode == 1
    assert "Invalid URL" in result.stderr
    assert f"hint: the base URL {bare} has no /v1" in result.stderr


@pytest.mark.parametrize("swap", ["both", "run twice"])
def test_swapped_ids_get_a_hint(emu: Emulator, swap: str) -> None:
    """A run id given where the thread id goes is named as such in a hint."""
    thread, run = new_run(emu, RunScript.completed(after=0))
    ids = [run, thread] if swap == "both" else [run, run]
    result = entry_point("get", *ids)
    assert result.returncode == 1
    assert f"hint: THREAD '{run}' looks like a run id" in result.stderr


def test_a_right_call_gets_no_hint(emu: Emulator) -> None:
    """A 404 for a run that does not exist, with the ids in order, has no hint."""
    thread = emu.create_thread()
    result = entry_point("get", thread, "run_missing")
    assert result.returncode == 1
    assert "hint" not in result.stderr


def test_watch_timeout_zero_looks_once(emu: Emulator) -> None:
    """watch --timeout 0 reports a finished run by its exit code, and a live one as timed out."""
    done = new_run(emu, RunScript.failed(after=0))
    result = entry_point("watch", *done, "--timeout", "0")
    assert result.returncode == 3, result.stderr
    assert result.stdout.splitlines()[0].split()[1] == "failed"
    live = new_run(emu, RunScript.endless())
    result = entry_point("watch", *live, "--timeout", "0")
    assert result.returncode == 7
    assert "has not ended" in result.stderr
    assert result.stdout.splitlines()[0].split()[1] == "in_progress"


def test_update_refuses_an_empty_metadata_key(emu: Emulator) -> None:
    """update --metadata =VALUE is a usage error; the run's metadata is untouched."""
    thread, run = new_run(emu, RunScript.endless(), metadata={"keep": "me"})
    result = entry_point("update", thread, run, "--metadata", "=value")
    assert result.returncode == 2
    assert "empty key" in result.stderr
    assert emu.retrieve(run)["metadata"] == {"keep": "me"}


def test_stream_prints_the_reply_as_it_comes(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """stream THREAD --assistant ID prints the assistant's text and exits 0."""
    from openai_runs.testing._script import DEFAULT_REPLY  # noqa: PLC0415

    thread = emu.create_thread()
    code, out, err = cli(capsys, "stream", thread, "--assistant", "asst_cli")
    assert code == 0
    assert out == DEFAULT_REPLY + "\n"
    assert "completed" in err


def test_stream_json_prints_one_event_per_line(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """stream --json prints each event as one JSON line, in order."""
    thread = emu.create_thread()
    code, out, _ = cli(capsys, "stream", thread, "--assistant", "asst_cli", "--json")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0]["event"] == "thread.run.created"
    assert events[0]["data"]["thread_id"] == thread
    assert events[-1]["event"] == "thread.run.completed"
    assert any(e["event"] == "thread.message.delta" for e in events)


def test_stream_timeout_exits_7(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """stream --timeout shorter than the run (a second) exits with the timeout code."""
    thread = emu.create_thread()
    code, _, err = cli(
        capsys, "stream", thread, "--assistant", "asst_cli", "--timeout", "0.3"
    )
    assert code == 7
    assert "did not end within" in err


@contextlib.contextmanager
def emulator_env(script: RunScript) -> Iterator[tuple[Emulator, dict[str, str]]]:
    """An emulator whose runs follow *script*, and the environment to reach it."""
    emulator = Emulator(default_script=script, poll_after_ms=20, api_key=None)
    with emulator.running_in_thread():
        yield emulator, {"OPENAI_BASE_URL": emulator.url, "OPENAI_API_KEY": "sk-any"}


def test_run_says_a_message_and_prints_the_reply() -> None:
    """run --assistant ID MESSAGE makes a thread, adds the message, runs and prints the reply."""
    script = RunScript.completed(after=0.1, reply="Bonjour.")
    with emulator_env(script) as (_, env):
        result = entry_point("run", "--assistant", "asst_cli", "Hello", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Bonjour."
    assert "completed" in result.stderr
    assert re.search(r"thread thread_\w+  run run_\w+", result.stderr)


def test_run_json_prints_the_finished_run() -> None:
    """run --json prints the final run as the API's JSON, not the reply."""
    with emulator_env(RunScript.completed(after=0.1)) as (_, env):
        result = entry_point("run", "--assistant", "asst_cli", "Hi", "--json", env=env)
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    assert (run["object"], run["status"], run["assistant_id"]) == (
        "thread.run",
        "completed",
        "asst_cli",
    )


def test_run_goes_on_with_a_thread() -> None:
    """run --thread ID adds the message to that thread and runs it there."""
    with emulator_env(RunScript.completed(after=0.1)) as (emulator, env):
        thread = emulator.create_thread()
        result = entry_point(
            "run", "--assistant", "a", "--thread", thread, "Again", "--json", env=env
        )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["thread_id"] == thread


def test_run_that_fails_exits_with_its_code() -> None:
    """A run that fails prints how it ended and exits 3, as watch does."""
    script = RunScript.failed(after=0.1, code="server_error", message="Boom.")
    with emulator_env(script) as (_, env):
        result = entry_point("run", "--assistant", "a", "Hello", env=env)
    assert result.returncode == 3
    assert "server_error: Boom." in result.stdout


# -- hostile answers and closed pipes ----------------------------------------------


@contextlib.contextmanager
def serving_json(payload: dict[str, Any]) -> Iterator[str]:
    """A loopback HTTP server answering every GET with *payload*; yields its base URL."""
    body = json.dumps(payload).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize("stamp", [10**15, -(10**15), 253_402_300_800])
def test_a_timestamp_datetime_cannot_hold_is_shown_as_a_number(
    emu: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stamp: int,
) -> None:
    """get prints a timestamp beyond year 9999 as its number, not a traceback."""
    thread, run_id = new_run(emu, RunScript.endless())
    payload = {
        "id": run_id,
        "object": "thread.run",
        "created_at": stamp,
        "thread_id": thread,
        "assistant_id": "asst_1",
        "status": "in_progress",
        "expires_at": stamp,
    }
    with serving_json(payload) as url:
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        code, out, err = cli(capsys, "get", thread, run_id)
    assert code == 0, err
    assert f"{stamp} (out of range)" in out
    assert "Traceback" not in err


def test_json_output_into_a_closed_pipe_exits_quietly(emu: Emulator) -> None:
    """`--json | head`: a reader that went away gives exit 141 and no traceback."""
    thread, run = new_run(emu, RunScript.completed(after=0))
    env = {**child_env(), "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": emu.url}
    proc = subprocess.Popen(
        [OPENAI_RUNS, "steps", thread, run, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before anything is written
    _, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err, err.decode()
    assert b"BrokenPipe" not in err
    assert proc.returncode == 141


@pytest.mark.parametrize(
    "where", [["-v", "get"], ["get", "--verbose"]], ids=["before", "after"]
)
def test_verbose_logs_each_request_in_one_line(
    emu: Emulator, capsys: pytest.CaptureFixture[str], where: list[str]
) -> None:
    """--verbose (before or after the command) logs method, path, status, time and attempt on stderr, never the key."""
    thread, run = new_run(emu, RunScript.endless())
    code, out, err = cli(capsys, *where, thread, run)
    assert code == 0
    assert run in out
    (line,) = err.splitlines()
    assert re.fullmatch(
        rf"openai-runs: GET /threads/{thread}/runs/{run} -> 200 in [0-9.]+ ms "
        r"\(attempt 1, request id req_\w+\)",
        line,
    )
    assert KEY not in err
    code, _, err = cli(capsys, "get", thread, run)
    assert code == 0
    assert err == ""


def test_verbose_counts_the_attempts_of_a_watch(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a watch, the poll after a 429 is logged as attempt 2."""
    from openai_runs.testing import Fault  # noqa: PLC0415

    thread, run = new_run(emu, RunScript.completed(after=0.1))
    emu.inject(Fault(run_id=run, status=429, retry_after=0.01, times=1))
    try:
        code, _, err = cli(capsys, "watch", "--verbose", thread, run)
    finally:
        emu.clear_faults()
    assert code == 0
    lines = [line for line in err.splitlines() if " -> " in line]
    assert "-> 429 in" in lines[0]
    assert "(attempt 1," in lines[0]
    assert "-> 200 in" in lines[1]
    assert "(attempt 2," in lines[1]
    assert all("(attempt 1," in line for line in lines[2:])


def test_commands_but_serve_and_demo_start_without_the_emulator() -> None:
    """The command line imports the emulator (and aiohttp.web) only for serve and demo."""
    check = (
        "import sys, openai_runs._cli\n"
        "loaded = [m for m in ('openai_runs.testing', 'aiohttp.web') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=child_env(),
    )
    assert result.returncode == 0, result.stderr
