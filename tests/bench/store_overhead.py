"""What a run store costs `watch_many`: client CPU per poll and detection latency.

    python tests/bench/store_overhead.py [--runs 2000] [--reps 2]

Against the lean benchmark server (``_server.py``, its own process), watches
RUNS runs (ending 0.5 to 3 s after they are registered, the server's 500 ms
hint) with `watch_many`, with no store, a `SQLiteRunStore` and a
`RedisRunStore` (a redis-server on a free port), interleaved, each in this
process. Reported: client CPU (`time.process_time`, every thread, the store's
included) per request, and how long after a run ended its result was yielded
(p50 / p99): a store's write stands between a run's end and its result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: the redis-server helper

from _redis_server import RedisServer  # noqa: E402

from openai_runs import RunsClient  # noqa: E402
from openai_runs.redis import RedisRunStore  # noqa: E402
from openai_runs.store import RunStore, SQLiteRunStore  # noqa: E402

KINDS = ("none", "sqlite", "redis")


async def measure(
    url: str, kind: str, n: int, seed: int, tmp: Path, redis_url: str
) -> dict[str, Any]:
    rng = random.Random(seed)
    durations = [rng.uniform(0.5, 3.0) for _ in range(n)]
    store: RunStore | None = None
    if kind == "sqlite":
        store = SQLiteRunStore(tmp / f"runs-{time.monotonic_ns()}.db")
    elif kind == "redis":
        store = RedisRunStore(redis_url, name=f"bench-{time.monotonic_ns()}")
    async with (
        aiohttp.ClientSession() as control,
        RunsClient(base_url=url + "/v1", api_key="sk-bench") as client,
    ):
        async with control.post(
            url + "/bench/runs", json={"durations": durations, "hint_ms": 500}
        ) as resp:
            batch = await resp.json()
        ends = dict(zip(batch["run_ids"], batch["ends"], strict=True))
        refs = [(batch["thread_id"], run_id) for run_id in batch["run_ids"]]
        late: list[float] = []
        cpu0 = time.process_time()
        async for result in client.runs.watch_many(refs, store=store):
            late.append(time.monotonic() - ends[result.run_id])
        cpu = time.process_time() - cpu0
        async with control.get(url + "/bench/stats") as resp:
            sent = (await resp.json())["requests"]  # counted per batch
    if store is not None:
        await store.aclose()  # type: ignore[attr-defined]
    late.sort()
    return {
        "store": kind,
        "runs": n,
        "results": len(late),
        "requests": sent,
        "cpu_s": cpu,
        "cpu_us_per_request": cpu / sent * 1e6,
        "late_p50_s": late[len(late) // 2],
        "late_p99_s": late[int(len(late) * 0.99)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, str(HERE / "_server.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE,
    )
    assert server.stdout is not None
    url = f"http://127.0.0.1:{json.loads(server.stdout.readline())['port']}"
    records = []
    try:
        with RedisServer() as redis, tempfile.TemporaryDirectory() as tmp:
            for rep in range(args.reps):
                order = KINDS[rep % 3 :] + KINDS[: rep % 3]
                for kind in order:
                    record = asyncio.run(
                        measure(url, kind, args.runs, rep, Path(tmp), redis.url)
                    )
                    records.append(record)
                    print(json.dumps(record), file=sys.stderr)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait()
    print("| store | runs | CPU per request | result after the run ended p50 / p99 |")
    print("| --- | ---: | ---: | ---: |")
    for kind in KINDS:
        mine = [r for r in records if r["store"] == kind]
        cpu = statistics.median(r["cpu_us_per_request"] for r in mine)
        p50 = statistics.median(r["late_p50_s"] for r in mine)
        p99 = statistics.median(r["late_p99_s"] for r in mine)
        print(f"| {kind} | {args.runs:,} | {cpu:.0f} µs | {p50:.2f} s / {p99:.2f} s |")
    if args.json:
        args.json.write_text(json.dumps(records, indent=2))


if __name__ == "__main__":
    main()
