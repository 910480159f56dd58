"""Soak: watch thousands of runs for minutes under random faults, and report.

Run with ``nox -s soak`` (or ``python tests/soak/soak.py --duration 60``).
Batches of runs with random scripts are watched in turn by ``watch_many`` and
by plain ``RunWatcher`` tasks, through the fault proxy of the test suite and
the emulator's own faults. Every watch must end with the run's true status or
``WatchTimeoutError``; file descriptors and tasks must not grow. The figures
printed at the end go in ``docs/reliability.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _faultproxy import FaultProxy, fault_proxy

from openai_runs import (
    RetryPolicy,
    RunsClient,
    RunWatcher,
    WatchPolicy,
)
from openai_runs import exceptions as exc
from openai_runs.testing import Emulator, Fault, RunScript

MIX = {
    "reset_request": 3,
    "reset_body": 2,
    "hang": 1,
    "half_body": 2,
    "trickle": 1,
    "wrong_content_type": 1,
    "html_502": 2,
    "html_504": 1,
    "not_a_run": 1,
}
POLICY = WatchPolicy(
    initial=0.05,
    multiplier=1.5,
    maximum=0.3,
    jitter=0.1,
    retry=RetryPolicy(initial=0.02, maximum=0.2, jitter=0.02),
    request_timeout=0.25,
    cancel_grace=0.5,
)


def script(rng: random.Random) -> RunScript:
    after = rng.uniform(0.05, 1.5)
    return rng.choice(
        [
            RunScript.completed(after=after),
            RunScript.completed(after=after),
            RunScript.failed(after=after),
            RunScript.incomplete(after=after),
            RunScript.requires_action(after=after),
            RunScript.endless(),
        ]
    )


def open_fds() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class Soak:
    def __init__(self, emu: Emulator, proxy: FaultProxy, client: RunsClient) -> None:
        self.emu, self.proxy, self.client = emu, proxy, client
        self.outcomes: Counter[str] = Counter()
        self.wrong: list[str] = []
        self.max_overrun = 0.0
        self.watched = 0

    def record(self, run_id: str, run: Any, error: Any, overrun: float) -> None:
        self.watched += 1
        truth = self.emu.retrieve(run_id)["status"]
        if error is None:
            if run.status != truth:
                self.wrong.append(f"{run_id}: saw {run.status}, truth {truth}")
            self.outcomes[str(run.status)] += 1
        elif isinstance(error, exc.WatchTimeoutError):
            self.outcomes["timeout"] += 1
            self.max_overrun = max(self.max_overrun, overrun)
        else:
            self.wrong.append(f"{run_id}: {error!r}")
            self.outcomes[type(error).__name__] += 1

    async def batch(
        self, refs: list[tuple[str, str]], timeout: float, many: bool
    ) -> None:
        if many:
            started = time.monotonic()
            async for result in self.client.runs.watch_many(
                refs, timeout=timeout, policy=POLICY
            ):
                overrun = time.monotonic() - started - timeout
                self.record(result.run_id, result.run, result.error, overrun)
            return

        async def watch(ref: tuple[str, str]) -> None:
            watcher = RunWatcher(self.client, *ref, timeout=timeout, policy=POLICY)
            started = time.monotonic()
            try:
                run, error = await watcher.wait(), None
            except exc.OpenAIRunsError as failure:
                run, error = None, failure
            self.record(ref[1], run, error, time.monotonic() - started - timeout)

        await asyncio.gather(*(watch(ref) for ref in refs))


async def main(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    async with (
        Emulator(expires_after=None, seed=args.seed) as emu,
        fault_proxy(emu.url.rsplit("/v1", 1)[0], hang_for=1.0) as proxy,
        RunsClient(
            api_key=emu.api_key,
            base_url=proxy.url + "/v1",
            retry_policy=POLICY.retry,
        ) as client,
    ):
        soak = Soak(emu, proxy, client)
        fresh = {"fds": open_fds(), "tasks": len(asyncio.all_tasks())}
        before: dict[str, int] = {}
        proxy.mix(MIX, rate=args.fault_rate, seed=args.seed)
        emu.inject(Fault(status=429, retry_after=0.05, probability=0.02))
        emu.inject(Fault(status=500, probability=0.02))
        emu.inject(Fault(body="truncated", probability=0.01))
        emu.inject(Fault(disconnect=True, probability=0.01))
        started = time.monotonic()
        batches = 0
        while time.monotonic() - started < args.duration:
            runs = [emu.create_run(script=script(rng)) for _ in range(args.batch)]
            refs = [(r["thread_id"], r["id"]) for r in runs]
            await soak.batch(refs, args.timeout, many=batches % 2 == 0)
            batches += 1
            if batches == 2:  # both kinds of batch ran: pools are at their size
                await asyncio.sleep(1.5)  # held "hang" requests are dropped
                before = {"fds": open_fds(), "tasks": len(asyncio.all_tasks())}
            print(
                f"{time.monotonic() - started:6.0f}s  tasks {len(asyncio.all_tasks())}    batch {batches:3d}  "
                f"watched {soak.watched:6d}  wrong {len(soak.wrong)}  "
                f"fds {open_fds()}  rss {rss_mb():.0f} MB",
                flush=True,
            )
        proxy.calm()
        emu.clear_faults()
        await asyncio.sleep(1.5)  # held "hang" requests are dropped
        after = {"fds": open_fds(), "tasks": len(asyncio.all_tasks())}
        elapsed = time.monotonic() - started
        emulator_requests = emu.counts.total
    report = {
        "duration_s": round(elapsed, 1),
        "batches": batches,
        "runs_watched": soak.watched,
        "requests_at_proxy": proxy.requests,
        "requests_at_emulator": emulator_requests,
        "proxy_faults_injected": dict(proxy.injected),
        "proxy_faults_total": sum(proxy.injected.values()),
        "outcomes": dict(soak.outcomes),
        "wrong_outcomes": len(soak.wrong),
        "max_overrun_past_deadline_ms": round(soak.max_overrun * 1000, 1),
        "fds_fresh": fresh["fds"],
        "tasks_fresh": fresh["tasks"],
        "fds_before": before["fds"],
        "fds_after": after["fds"],
        "tasks_before": before["tasks"],
        "tasks_after": after["tasks"],
        "fds_after_close": open_fds(),
        "peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
    }
    print(json.dumps(report, indent=2))
    for line in soak.wrong[:20]:
        print("WRONG", line)
    grew = after["fds"] > before["fds"] + 2 or after["tasks"] > before["tasks"]
    return 1 if soak.wrong or grew else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=180, help="seconds (180)")
    parser.add_argument("--batch", type=int, default=400, help="runs per batch (400)")
    parser.add_argument("--timeout", type=float, default=3.0, help="per watch (3 s)")
    parser.add_argument("--fault-rate", type=float, default=0.1, help="share (0.1)")
    parser.add_argument("--seed", type=int, default=1)
    sys.exit(asyncio.run(main(parser.parse_args())))
