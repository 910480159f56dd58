"""Scale-out bench: worker processes on one key, with and without a shared budget.

    python tests/bench/scale_out.py [--workers 4] [--runs 1000] [--limit 200]
                                    [--json PATH]

Starts `openai-runs serve --rate-limit LIMIT` and a redis-server on free
loopback ports, then, for each budget, WORKERS processes that each create
RUNS runs (`create_thread_and_run`) and watch them all with `watch_many`,
all at the same moment:

- `RedisBudget`: every worker's client holds `RedisBudget(name="bench",
  max_requests_per_second=0.95 * LIMIT)`: one rate for all;
- `LocalBudget`: every worker's client holds
  `LocalBudget(max_requests_per_second=0.95 * LIMIT)`: each "within limits"
  on its own, WORKERS times the limit together.

Reported per budget: requests sent, the share answered 429, throughput (the
answers that were not 429, per second of the whole scenario) against the
limit, and the runs that completed. The emulator's runs complete a second
after they are created, so by the time `watch_many` polls a run it has ended:
two requests a run when nothing is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: the redis-server helper

from _redis_server import RedisServer  # noqa: E402

BUDGETS = ("RedisBudget", "LocalBudget")


class Counting:
    """A budget that counts what goes through the budget it wraps."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent = 0
        self.throttled = 0
        self.first: float | None = None
        self.last = 0.0
        self.times: list[float] = []
        self.degraded = 0  # sent while a RedisBudget fell back to its local budget

    async def acquire(self) -> None:
        await self.inner.acquire()
        self.sent += 1
        self.times.append(time.time())
        self.degraded += bool(getattr(self.inner, "degraded", False))
        if self.first is None:
            self.first = time.time()

    def release(self, throttled: float | None = None) -> None:
        if throttled is not None:
            self.throttled += 1
        self.last = time.time()
        self.inner.release(throttled)


async def worker(args: argparse.Namespace) -> dict[str, Any]:
    """One worker process: create its runs, watch them, report its counts."""
    from openai_runs import LocalBudget, Run, RunsClient  # noqa: PLC0415
    from openai_runs.redis import RedisBudget  # noqa: PLC0415

    rate = 0.95 * args.limit
    shared = args.worker == "RedisBudget"
    inner: Any = (
        RedisBudget(args.redis_url, name="bench", max_requests_per_second=rate)
        if shared
        else LocalBudget(max_requests_per_second=rate)
    )
    budget = Counting(inner)
    await asyncio.sleep(max(args.start_at - time.time(), 0))
    completed = failed = 0
    async with RunsClient(
        api_key="sk-bench", base_url=args.base_url, budget=budget
    ) as client:
        created = await asyncio.gather(
            *(
                client.runs.create_thread_and_run(assistant_id="asst_bench")
                for _ in range(args.runs)
            ),
            return_exceptions=True,
        )
        runs = [run for run in created if isinstance(run, Run)]
        failed = len(created) - len(runs)
        async with contextlib.aclosing(
            client.runs.watch_many(runs, timeout=600)
        ) as results:
            async for item in results:
                if item.ok and item.run is not None and item.run.status == "completed":
                    completed += 1
                else:
                    failed += 1
    if shared:
        await inner.aclose()
    return {
        "sent": budget.sent,
        "throttled": budget.throttled,
        "degraded": budget.degraded,
        "times": budget.times,
        "first": budget.first,
        "last": budget.last,
        "completed": completed,
        "not_completed": failed,
    }


def serve(limit: int) -> tuple[subprocess.Popen[str], str]:
    """Start `openai-runs serve --rate-limit LIMIT`; return it and its URL."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openai_runs",
            "serve",
            "--port",
            "0",
            "--rate-limit",
            str(limit),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stderr is not None
    line = server.stderr.readline()
    url = re.search(r"http://127\.0\.0\.1:\d+/v1", line)
    if url is None:
        server.kill()
        raise RuntimeError(f"serve did not start: {line}")
    return server, url.group(0)


def scenario(args: argparse.Namespace, budget: str, redis_url: str) -> dict[str, Any]:
    """One budget's round: a fresh server, WORKERS processes at once."""
    server, base_url = serve(args.limit)
    try:
        start_at = time.time() + 3.0  # every worker imported and ready
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    budget,
                    "--base-url",
                    base_url,
                    "--redis-url",
                    redis_url,
                    "--runs",
                    str(args.runs),
                    "--limit",
                    str(args.limit),
                    "--start-at",
                    str(start_at),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(args.workers)
        ]
        reports = []
        for proc in workers:
            out, _ = proc.communicate(timeout=1800)
            if proc.returncode != 0:
                raise RuntimeError(f"a worker failed ({proc.returncode})")
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        server.terminate()
        server.communicate(timeout=30)
    sent = sum(r["sent"] for r in reports)
    throttled = sum(r["throttled"] for r in reports)
    degraded = sum(r["degraded"] for r in reports)
    times = sorted(t for r in reports for t in r["times"])
    busiest = _busiest(times)
    per_second = [0] * (int(times[-1] - times[0]) + 1)
    for t in times:
        per_second[int(t - times[0])] += 1
    first = min(r["first"] for r in reports if r["first"] is not None)
    last = max(r["last"] for r in reports)
    seconds = last - first
    ok_per_second = (sent - throttled) / seconds
    return {
        "budget": budget,
        "workers": args.workers,
        "runs": args.runs * args.workers,
        "limit": args.limit,
        "requests": sent,
        "throttled": throttled,
        "throttled_share": throttled / sent,
        "sent_on_fallback": degraded,
        "busiest_second": busiest,
        "per_second": per_second,
        "seconds": seconds,
        "ok_per_second": ok_per_second,
        "throughput_share": ok_per_second / args.limit,
        "completed": sum(r["completed"] for r in reports),
        "not_completed": sum(r["not_completed"] for r in reports),
    }


def _busiest(times: list[float]) -> int:
    """The most of *times* within any one second."""
    times = sorted(times)
    busiest, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    return busiest


def print_table(rows: list[dict[str, Any]]) -> None:
    """The Markdown table of the docs."""
    print(
        "| budget | requests | answered 429 | throughput (of the limit) "
        "| runs completed | wall time |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| `{r['budget']}` | {r['requests']:,} | {r['throttled']:,} "
            f"({r['throttled_share']:.1%}) | {r['ok_per_second']:.0f}/s "
            f"({r['throughput_share']:.0%}) | {r['completed']:,} of {r['runs']:,} "
            f"| {r['seconds']:.1f} s |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1000, help="per worker")
    parser.add_argument("--limit", type=int, default=200, help="requests/s per key")
    parser.add_argument("--budget", choices=BUDGETS, action="append")
    parser.add_argument("--json", type=Path, help="write the figures here")
    # A worker's own arguments.
    parser.add_argument("--worker", choices=BUDGETS, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        # The budget's own warnings (Redis unreachable), not each retry's.
        handler = logging.StreamHandler()
        handler.addFilter(lambda record: "RedisBudget" in record.getMessage())
        logging.getLogger("openai_runs").addHandler(handler)
        print(json.dumps(asyncio.run(worker(args))))
        return
    rows = []
    with RedisServer() as redis:
        for budget in args.budget or BUDGETS:
            row = scenario(args, budget, redis.url)
            print(json.dumps(row), file=sys.stderr)
            rows.append(row)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
