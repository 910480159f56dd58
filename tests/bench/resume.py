"""Crash bench: a `watch-many` worker killed mid-way, then resumed; each run once.

    python tests/bench/resume.py [--runs 1000] [--resumers 2] [--store sqlite|redis|both]
                                 [--kill-at 0.4] [--lease 2] [--json PATH]

Serves the emulator (runs that end 1 to 6 s after they are made, the server's
500 ms poll hint) in a thread of this process, writes RUNS run ids as JSON
lines, and for each store:

1. starts `openai-runs watch-many --from FILE --store STORE --json` (the
   operator's command, a process of its own) and SIGKILLs it once it has
   reported KILL_AT of the runs: no clean stop, its claims are left to lapse;
2. starts RESUMERS `openai-runs watch-many --store STORE --json` at once
   (no `--from`: the store's open runs), which take the killed worker's runs
   over when its lease lapses and share them;
3. checks every run was reported exactly once across every process (the
   killed one included), and that the store holds every run as ended.

Reported per store: runs reported before the kill, after it, twice (must be
0) and never (must be 0); how long the takeover waited (about the lease);
the resume's wall time; the runs each resumer reported.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: the redis-server helper

from _redis_server import RedisServer  # noqa: E402

from openai_runs.testing import Emulator, RunScript  # noqa: E402

OPENAI_RUNS = [sys.executable, "-m", "openai_runs"]


def make_runs(emu: Emulator, n: int, path: Path, seed: int) -> list[str]:
    rng = random.Random(seed)
    runs = [
        emu.create_run(script=RunScript.completed(after=rng.uniform(1.0, 6.0)))
        for _ in range(n)
    ]
    path.write_text(
        "".join(
            json.dumps({"thread_id": r["thread_id"], "run_id": r["id"], "key": i})
            + "\n"
            for i, r in enumerate(runs)
        )
    )
    return [r["id"] for r in runs]


def child_env(emu: Emulator) -> dict[str, str]:
    debug = {"PYTHONASYNCIODEBUG", "PYTHONDEVMODE"}
    env = {k: v for k, v in os.environ.items() if k not in debug}
    return {**env, "OPENAI_BASE_URL": emu.url, "OPENAI_API_KEY": emu.api_key or ""}


def read_lines(proc: subprocess.Popen[str], into: list[str]) -> threading.Thread:
    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip():
                into.append(json.loads(line)["run_id"])

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def scenario(
    emu: Emulator, store: str, ids: list[str], ids_file: Path, args: argparse.Namespace
) -> dict[str, Any]:
    env = child_env(emu)
    common = ["--store", store, "--json", "--lease", str(args.lease)]
    if store.startswith("redis://"):
        common += ["--store-name", f"bench-{os.getpid()}-{time.monotonic_ns()}"]
    started = time.monotonic()
    worker = subprocess.Popen(
        [*OPENAI_RUNS, "watch-many", "--from", str(ids_file), *common],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    before: list[str] = []
    pump = read_lines(worker, before)
    kill_at = int(len(ids) * args.kill_at)
    while len(before) < kill_at and worker.poll() is None:
        time.sleep(0.01)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    pump.join()
    killed = time.monotonic()
    resumers = [
        subprocess.Popen(
            [*OPENAI_RUNS, "watch-many", *common],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(args.resumers)
    ]
    after: list[list[str]] = [[] for _ in resumers]
    pumps = [read_lines(p, into) for p, into in zip(resumers, after, strict=True)]
    first_after: float | None = None
    while any(p.poll() is None for p in resumers):
        if first_after is None and any(after):
            first_after = time.monotonic()
        time.sleep(0.01)
    for pump in pumps:
        pump.join()
    done = time.monotonic()
    codes = [p.returncode for p in resumers]
    errors = [
        p.stderr.read() for p in resumers if p.stderr is not None and p.returncode
    ]
    reported = Counter(before + [r for part in after for r in part])
    return {
        "store": "redis" if store.startswith("redis://") else "sqlite",
        "runs": len(ids),
        "resumers": args.resumers,
        "lease_s": args.lease,
        "reported_before_kill": len(before),
        "reported_after": sum(len(part) for part in after),
        "by_resumer": [len(part) for part in after],
        "reported_twice": sum(1 for n in reported.values() if n > 1),
        "never_reported": len(set(ids) - set(reported)),
        "worker_s": round(killed - started, 2),
        "takeover_wait_s": round((first_after or done) - killed, 2),
        "resume_s": round(done - killed, 2),
        "exit_codes": codes,
        "stderr": [e[-500:] for e in errors if e.strip()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--resumers", type=int, default=2)
    parser.add_argument("--store", choices=["sqlite", "redis", "both"], default="both")
    parser.add_argument("--kill-at", type=float, default=0.4, help="share reported")
    parser.add_argument("--lease", type=float, default=2.0, help="seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    results = []
    emu = Emulator(poll_after_ms=500)
    with emu.running_in_thread(), tempfile.TemporaryDirectory() as tmp:
        kinds = ["sqlite", "redis"] if args.store == "both" else [args.store]
        for kind in kinds:
            ids_file = Path(tmp) / f"{kind}.jsonl"
            ids = make_runs(emu, args.runs, ids_file, args.seed)
            if kind == "sqlite":
                results.append(
                    scenario(emu, str(Path(tmp) / "runs.db"), ids, ids_file, args)
                )
            else:
                with RedisServer() as redis:
                    results.append(scenario(emu, redis.url, ids, ids_file, args))
    print(
        "| store | runs | reported before the kill | after (by resumer) "
        "| twice | never | takeover wait | resume |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        by = " + ".join(str(n) for n in r["by_resumer"])
        print(
            f"| {r['store']} | {r['runs']:,} | {r['reported_before_kill']:,} "
            f"| {r['reported_after']:,} ({by}) | {r['reported_twice']} "
            f"| {r['never_reported']} | {r['takeover_wait_s']:.1f} s "
            f"| {r['resume_s']:.1f} s |"
        )
        for err in r["stderr"]:
            print(f"  stderr: {err}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if any(r["reported_twice"] or r["never_reported"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
