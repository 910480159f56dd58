"""One watch measurement in a fresh process, so its peak RSS is its own.

``python _watch.py URL CLIENT N FIXED SEED CAP [MODE]`` prints one JSON object;
MODE is ``many`` (each client's ``watch``, the default) or ``tasks`` (one
polling task per run: ``watch_tasks``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from _clients import CLIENTS


async def measure(
    url: str, name: str, n: int, fixed: bool, seed: int, cap: float, mode: str
) -> dict[str, object]:
    rng = random.Random(seed)
    durations = [rng.uniform(0.5, 3.0) for _ in range(n)]
    client = CLIENTS[name](url + "/v1")
    try:
        record = await _measure(client, url, name, n, fixed, durations, cap, mode)
        record["mode"] = mode
        return record
    finally:
        await client.aclose()


async def _measure(
    client: Any,
    url: str,
    name: str,
    n: int,
    fixed: bool,
    durations: list[float],
    cap: float,
    mode: str,
) -> dict[str, object]:
    watch = client.watch_tasks if mode == "tasks" else client.watch
    async with aiohttp.ClientSession() as control:
        # A first watch of two runs that have already ended opens the
        # connection, loads lazily imported modules and lets each client
        # build its models' validators (cattrs generates a Run's hooks on
        # first use, pydantic its schema): one-time costs, not per-poll ones.
        async with control.post(
            url + "/bench/runs", json={"durations": [0.0, 0.0]}
        ) as resp:
            warm = await resp.json()
        await watch(warm["thread_id"], warm["run_ids"], fixed=fixed, detected={})
        gc.collect()
        rss0 = psutil.Process().memory_info().rss
        _reset_peak()
        hint = None if fixed else 500
        async with control.post(
            url + "/bench/runs", json={"durations": durations, "hint_ms": hint}
        ) as resp:
            batch = await resp.json()
        ends = dict(zip(batch["run_ids"], batch["ends"], strict=True))
        detected: dict[str, float] = {}
        cpu0 = time.process_time()
        wall0 = time.monotonic()
        capped = False
        try:
            async with asyncio.timeout(cap):
                await watch(
                    batch["thread_id"], batch["run_ids"], fixed=fixed, detected=detected
                )
        except TimeoutError:
            capped = True
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - wall0
        peak = _peak_rss()
        async with control.get(url + "/bench/stats") as resp:
            stats = await resp.json()
    latencies = sorted(detected[r] - ends[r] for r in detected)
    requests = stats["requests"]
    return {
        "client": name,
        "n": n,
        "fixed": fixed,
        "capped": capped,
        "detected": len(detected),
        "cpu_s": cpu,
        "wall_s": wall,
        "requests": requests,
        "requests_per_run": requests / n,
        "cpu_us_per_poll": cpu / max(requests, 1) * 1e6,
        "rss_base_mib": rss0 / 2**20,
        "rss_peak_mib": peak / 2**20,
        "kib_per_run": max(peak - rss0, 0) / 1024 / n,
        "rss_growth_mib": max(peak - rss0, 0) / 2**20,
        "latency_p50": _pct(latencies, 0.5),
        "latency_p99": _pct(latencies, 0.99),
    }


def _reset_peak() -> None:
    # Linux keeps ru_maxrss across exec, so a child of a big parent would
    # report the parent's peak; VmHWM belongs to this process image and
    # writing 5 to clear_refs resets it to the current RSS.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss() -> int:
    """The peak RSS in bytes since :func:`_reset_peak`."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(int(q * len(values)), len(values) - 1)]


def main() -> None:
    url, name, n, fixed, seed, cap = sys.argv[1:7]
    mode = sys.argv[7] if len(sys.argv) > 7 else "many"
    result = asyncio.run(
        measure(url, name, int(n), fixed == "1", int(seed), float(cap), mode)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
