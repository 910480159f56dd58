"""Benchmark openai_runs against the official openai SDK and raw aiohttp.

    python tests/bench/bench.py [--quick] [--json PATH] [--plot PATH]
                                [--only SECTION ...] [--doc PATH]

Sections: ``http`` (retrieve, list steps), ``parse``, ``stream``, ``watch``
(``watch_many`` against the others at several N) and ``tasks`` (the issue-17
rows: one polling task per run at 10,000 and 2,000 runs, and ``watch_many``'s
memory at 10,000). A run of every section writes the scorecard (each figure,
its target, met or not) into the Performance page between its markers.

A lean aiohttp server (``_server.py``) runs in its own process on loopback
with pre-serialized, spec-shaped bodies. The clients are measured in the same
run, interleaved (the order rotates each repetition), and every figure is the
CPU time of the client process (``time.process_time``), not wall time, with
its ratio to raw aiohttp (or to ``json.loads``) from the same repetition.
Medians over the repetitions are reported. Each watch runs in a fresh process
(``_watch.py``) so that its peak RSS is its own. The streaming figure
(``_stream.py``) has its own server process.
"""

# ruff: noqa: PLC0415 - clients and matplotlib load only where they are measured
# ruff: noqa: RUF001 - the scorecard writes the times sign and en dash the page uses
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import _payloads
import aiohttp
from _clients import CLIENTS
from _server import STEPS_RUN, THREAD
from _stream import print_table as print_stream_table
from _stream import stream_section
from _telemetry import print_table as print_telemetry_table
from _telemetry import telemetry_section

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NAMES = ("openai_runs", "openai", "aiohttp")
SECTIONS = ("http", "parse", "stream", "telemetry", "watch", "tasks")
FLOOR = "aiohttp"


class Settings:
    """How much work each section does: ``--quick`` or the full run."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.reps = 3 if quick else 5
        # Calls per measurement at each concurrency.
        self.retrieve = (
            {1: 200, 64: 640, 512: 1024} if quick else {1: 600, 64: 1920, 512: 3072}
        )
        self.steps = {"page of 20": 100, "page of 100": 40, "iterate 250": 15}
        if not quick:
            self.steps = {k: v * 3 for k, v in self.steps.items()}
        self.parse = 300 if quick else 1000
        self.watch_n = (100, 1000) if quick else (100, 2000, 10_000)
        self.watch_reps = {n: (1 if quick or n >= 10_000 else 3) for n in self.watch_n}
        # The official client polls 10,000 runs slowly; past this, its watch
        # is cut short and reported as capped.
        self.watch_cap = 60.0 if quick else 150.0
        # The scorecard's watches: one task per run, and watch_many's memory.
        self.tasks_reps = 1 if quick else 3


def rotated(rep: int) -> list[str]:
    """The client order of repetition *rep*: A B C, B C A, C A B, ..."""
    k = rep % len(NAMES)
    return [*NAMES[k:], *NAMES[:k]]


async def cpu_per_call(
    fn: Callable[[], Awaitable[Any]], calls: int, workers: int
) -> float:
    """Client CPU µs per call of *fn*, *workers* calls in flight at a time."""

    async def worker(n: int) -> None:
        for _ in range(n):
            await fn()

    # Warm up: open the connections this concurrency needs.
    await asyncio.gather(*(worker(1) for _ in range(workers)))
    per = max(calls // workers, 1)
    cpu = time.process_time()
    await asyncio.gather(*(worker(per) for _ in range(workers)))
    return (time.process_time() - cpu) / (per * workers) * 1e6


async def register(url: str, durations: list[float]) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/bench/runs", json={"durations": durations}) as resp,
    ):
        return await resp.json()


async def http_sections(url: str, cfg: Settings) -> dict[str, Any]:
    """Retrieve at each concurrency, and the steps listings, per client."""
    batch = await register(url, [1e6] * 4)  # runs that stay in_progress
    thread_id, run_id = batch["thread_id"], batch["run_ids"][0]
    clients = {name: CLIENTS[name](f"{url}/v1") for name in NAMES}
    retrieve: dict[str, dict[str, list[float]]] = {n: {} for n in NAMES}
    steps: dict[str, dict[str, list[float]]] = {n: {} for n in NAMES}
    try:
        for rep in range(cfg.reps):
            for name in rotated(rep):
                c = clients[name]
                for conc, calls in cfg.retrieve.items():
                    us = await cpu_per_call(
                        lambda c=c: c.retrieve(thread_id, run_id), calls, conc
                    )
                    retrieve[name].setdefault(str(conc), []).append(us)
                jobs = {
                    "page of 20": lambda c=c: c.steps_page(THREAD, STEPS_RUN, 20),
                    "page of 100": lambda c=c: c.steps_page(THREAD, STEPS_RUN, 100),
                    "iterate 250": lambda c=c: c.steps_all(THREAD, STEPS_RUN),
                }
                for label, job in jobs.items():
                    us = await cpu_per_call(job, cfg.steps[label], 1)
                    steps[name].setdefault(label, []).append(us)
            print(f"  http rep {rep + 1}/{cfg.reps} done", file=sys.stderr)
    finally:
        for c in clients.values():
            await c.aclose()
    return {"retrieve": summarize(retrieve, FLOOR), "steps": summarize(steps, FLOOR)}


def parse_section(cfg: Settings) -> dict[str, Any]:
    """Structuring alone: one Run, one page of 100 steps, from dicts."""
    from openai._models import construct_type
    from openai.types.beta.threads import Run as OpenAIRun
    from openai.types.beta.threads.runs import RunStep as OpenAIStep

    from openai_runs import Run, RunStep, converter
    from openai_runs.models import Page

    run = _payloads.run(THREAD, "run_parse", "in_progress")
    run_body = _payloads.dumps(run)
    steps = [_payloads.step(THREAD, STEPS_RUN, i) for i in range(100)]
    page = _payloads.steps_page(steps, limit=100, after=None)
    page_body = _payloads.dumps(page)
    cases: dict[str, dict[str, Callable[[], Any]]] = {
        "run": {
            "json.loads": lambda: json.loads(run_body),
            "openai_runs": lambda: converter.structure(run, Run),
            "openai model_validate": lambda: OpenAIRun.model_validate(run),
            "openai construct": lambda: construct_type(type_=OpenAIRun, value=run),
        },
        "page of 100 steps": {
            "json.loads": lambda: json.loads(page_body),
            "openai_runs": lambda: converter.structure(page, Page[RunStep]),
            "openai model_validate": lambda: [
                OpenAIStep.model_validate(s) for s in page["data"]
            ],
            "openai construct": lambda: construct_type(
                type_=list[OpenAIStep], value=page["data"]
            ),
        },
    }
    out: dict[str, Any] = {}
    for case, fns in cases.items():
        samples: dict[str, dict[str, list[float]]] = {name: {} for name in fns}
        loops = cfg.parse if case == "run" else max(cfg.parse // 20, 10)
        for rep in range(cfg.reps):
            names = list(fns)
            names = names[rep % len(names) :] + names[: rep % len(names)]
            for name in names:
                fn = fns[name]
                fn()
                cpu = time.process_time()
                for _ in range(loops):
                    fn()
                us = (time.process_time() - cpu) / loops * 1e6
                samples[name].setdefault(case, []).append(us)
        out[case] = {
            name: stats[case]
            for name, stats in summarize(samples, "json.loads").items()
        }
    return out


def summarize(samples: dict[str, dict[str, list[float]]], floor: str) -> dict[str, Any]:
    """Medians, and the median of same-repetition ratios to *floor*."""
    out: dict[str, Any] = {}
    for name, by_key in samples.items():
        out[name] = {}
        for key, values in by_key.items():
            base = samples[floor][key]
            ratios = [v / b for v, b in zip(values, base, strict=True)]
            out[name][key] = {
                "us": statistics.median(values),
                "ratio": statistics.median(ratios),
                "samples": [round(v, 1) for v in values],
            }
    return out


def watch_section(url: str, cfg: Settings) -> list[dict[str, Any]]:
    """Each client watching N runs, in its own process, with each policy."""
    records = []
    for n in cfg.watch_n:
        for rep in range(cfg.watch_reps[n]):
            # --quick compares the fixed policy at its largest N only.
            both = not cfg.quick or n == cfg.watch_n[-1]
            for fixed in (False, True) if both else (False,):
                for name in rotated(rep):
                    args = [
                        url,
                        name,
                        str(n),
                        "1" if fixed else "0",
                        str(rep),
                        str(cfg.watch_cap),
                    ]
                    started = time.monotonic()
                    out = subprocess.run(
                        [sys.executable, str(HERE / "_watch.py"), *args],
                        capture_output=True,
                        text=True,
                        check=True,
                        cwd=HERE,
                    )
                    record = json.loads(out.stdout.strip().splitlines()[-1])
                    record["rep"] = rep
                    records.append(record)
                    print(
                        f"  watch N={n} {'fixed' if fixed else 'default'} {name}: "
                        f"{time.monotonic() - started:.1f}s",
                        file=sys.stderr,
                    )
    return records


# (mode, N, clients): each one polling task per run ("tasks") or the
# client's own many-run watch ("many"), with the default policies (500 ms hint).
TASK_CASES = (
    ("tasks", 10_000, ("aiohttp", "openai_runs")),
    ("tasks", 2_000, ("aiohttp", "openai", "openai_runs")),
    ("many", 10_000, ("openai_runs",)),
)


def tasks_section(url: str, cfg: Settings) -> list[dict[str, Any]]:
    """The scorecard's watches, each in its own process, clients interleaved."""
    records = []
    for rep in range(cfg.tasks_reps):
        for mode, n, names in TASK_CASES:
            k = rep % len(names)
            for name in (*names[k:], *names[:k]):
                args = [url, name, str(n), "0", str(rep), str(cfg.watch_cap), mode]
                started = time.monotonic()
                out = subprocess.run(
                    [sys.executable, str(HERE / "_watch.py"), *args],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=HERE,
                )
                record = json.loads(out.stdout.strip().splitlines()[-1])
                record["rep"] = rep
                records.append(record)
                print(
                    f"  {mode} N={n} {name}: {time.monotonic() - started:.1f}s",
                    file=sys.stderr,
                )
    return records


def tasks_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per case and client; CPU per poll also as a same-rep ratio to raw."""
    out: dict[str, Any] = {}
    for mode, n, names in TASK_CASES:
        case = f"{mode} {n}"
        group = [r for r in records if r.get("mode") == mode and r["n"] == n]
        floor = {r["rep"]: r for r in group if r["client"] == FLOOR}
        out[case] = {}
        for name in names:
            mine = [r for r in group if r["client"] == name]
            if not mine:
                continue
            row: dict[str, Any] = {
                f: statistics.median(r[f] for r in mine if r[f] is not None)
                if any(r[f] is not None for r in mine)
                else None
                for f in (*WATCH_FIELDS, "rss_growth_mib")
            }
            paired = [r for r in mine if r["rep"] in floor]
            row["cpu_per_poll_ratio"] = (
                statistics.median(
                    r["cpu_us_per_poll"] / floor[r["rep"]]["cpu_us_per_poll"]
                    for r in paired
                )
                if paired
                else None
            )
            row["capped"] = any(r["capped"] for r in mine)
            row["detected"] = min(r["detected"] for r in mine)
            out[case][name] = row
    return out


WATCH_FIELDS = (
    "cpu_s",
    "cpu_us_per_poll",
    "requests_per_run",
    "kib_per_run",
    "rss_peak_mib",
    "latency_p50",
    "latency_p99",
)


def watch_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per policy, N and client, with CPU per poll as a ratio."""
    out: dict[str, Any] = {}
    for policy, fixed in (("default", False), ("fixed", True)):
        out[policy] = {}
        for n in sorted({r["n"] for r in records}):
            group = [r for r in records if r["n"] == n and r["fixed"] is fixed]
            floor = {
                r["rep"]: r["cpu_us_per_poll"] for r in group if r["client"] == FLOOR
            }
            out[policy][str(n)] = {}
            for name in NAMES:
                mine = [r for r in group if r["client"] == name]
                if not mine:
                    continue
                row: dict[str, Any] = {
                    f: statistics.median(r[f] for r in mine if r[f] is not None)
                    if any(r[f] is not None for r in mine)
                    else None
                    for f in WATCH_FIELDS
                }
                row["cpu_per_poll_ratio"] = statistics.median(
                    r["cpu_us_per_poll"] / floor[r["rep"]] for r in mine
                )
                row["capped"] = any(r["capped"] for r in mine)
                row["detected"] = min(r["detected"] for r in mine)
                out[policy][str(n)][name] = row
    return out


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import cattrs
    import openai

    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "aiohttp": aiohttp.__version__,
        "cattrs": _version("cattrs", cattrs),
        "openai": openai.__version__,
    }


def _version(name: str, module: Any) -> str:
    from importlib.metadata import version

    return getattr(module, "__version__", None) or version(name)


def print_tables(results: dict[str, Any]) -> None:
    def row(*cells: Any) -> None:
        print("  ".join(f"{c:>14}" if i else f"{c:<26}" for i, c in enumerate(cells)))

    def fmt(stat: dict[str, float]) -> str:
        return f"{stat['us']:,.0f} ({stat['ratio']:.2f}x)"

    if "retrieve" in results:
        print("\nretrieve: client CPU µs per call (ratio to raw aiohttp)")
        concs = list(results["retrieve"][FLOOR])
        row("client", *(f"concurrency {c}" for c in concs))
        for name in NAMES:
            row(name, *(fmt(results["retrieve"][name][c]) for c in concs))
        print("\nlist steps: client CPU µs per call (ratio to raw aiohttp)")
        labels = list(results["steps"][FLOOR])
        row("client", *labels)
        for name in NAMES:
            row(name, *(fmt(results["steps"][name][k]) for k in labels))
    if "parse" in results:
        print("\nparse only: CPU µs (ratio to json.loads of the same body)")
        for case, by_name in results["parse"].items():
            row(case)
            for name, stat in by_name.items():
                row(f"  {name}", fmt(stat))
    tables = [(f"policy: {p}", by_n) for p, by_n in results.get("watch", {}).items()]
    if "tasks" in results:
        tables.append(("one task per run / watch_many (default)", results["tasks"]))
    if tables:
        print("\nwatching N runs (medians)")
    for title, by_n in tables:
        print(f"  {title}")
        row(
            "  N / client",
            "CPU s",
            "µs/poll (x)",
            "req/run",
            "KiB/run",
            "p50 s",
            "p99 s",
        )
        for n, by_name in by_n.items():
            for name, r in by_name.items():
                capped = " capped" if r["capped"] else ""
                ratio = r["cpu_per_poll_ratio"]
                row(
                    f"  {n} {name}{capped}",
                    f"{r['cpu_s']:.2f}",
                    f"{r['cpu_us_per_poll']:,.0f}"
                    + ("" if ratio is None else f" ({ratio:.2f}x)"),
                    f"{r['requests_per_run']:.1f}",
                    f"{r['kib_per_run']:.1f}",
                    _s(r["latency_p50"]),
                    _s(r["latency_p99"]),
                )


def scorecard(results: dict[str, Any]) -> list[dict[str, str]] | None:
    """The issue-17 table from *results*: each figure, target, met or not.

    *None* unless every section it needs was measured in this run.
    """
    if not all(k in results for k in ("retrieve", "steps", "parse", "tasks")):
        return None
    rows: list[dict[str, str]] = []

    def add(figure: str, raw: str, openai: str, mine: str, target: str, met: bool):
        rows.append(
            {
                "figure": figure,
                "aiohttp": raw,
                "openai": openai,
                "openai_runs": mine,
                "target": target,
                "met": "met" if met else "not met",
            }
        )

    ret = results["retrieve"]
    concs = list(ret[FLOOR])
    add(
        "retrieve, c = " + " / ".join(concs),
        " / ".join(f"{ret[FLOOR][c]['us']:,.0f} µs" for c in concs),
        " / ".join(f"×{ret['openai'][c]['ratio']:.2f}" for c in concs),
        " / ".join(f"×{ret['openai_runs'][c]['ratio']:.2f}" for c in concs),
        "≤ ×1.2 at each",
        all(ret["openai_runs"][c]["ratio"] <= 1.2 for c in concs),
    )
    st = results["steps"]
    add(
        "list steps, page of 100",
        f"{st[FLOOR]['page of 100']['us']:,.0f} µs",
        f"×{st['openai']['page of 100']['ratio']:.2f}",
        f"×{st['openai_runs']['page of 100']['ratio']:.2f}",
        "≤ ×2.0",
        st["openai_runs"]["page of 100"]["ratio"] <= 2.0,
    )
    for case, label, factor, target in (
        ("run", "structure one Run (no I/O)", 1.0, "≤ pydantic"),
        ("page of 100 steps", "structure a page of 100 steps", 0.5, "≤ ½ pydantic"),
    ):
        p = results["parse"][case]
        pyd, mine = p["openai model_validate"]["us"], p["openai_runs"]["us"]
        add(
            label,
            f"json.loads {p['json.loads']['us']:,.1f} µs",
            f"pydantic validate {pyd:,.1f} µs",
            f"{mine:,.1f} µs (×{mine / pyd:.2f} pydantic)",
            target,
            mine <= factor * pyd,
        )
    tasks = results["tasks"]
    t10 = tasks.get("tasks 10000", {})
    if FLOOR in t10 and "openai_runs" in t10:
        raw, mine = t10[FLOOR], t10["openai_runs"]
        add(
            "10,000 runs, each awaited by its own `runs.poll` task (hint 500 ms)",
            f"CPU/request {raw['cpu_us_per_poll']:,.0f} µs, "
            f"+{raw['rss_growth_mib']:,.0f} MiB",
            "–",
            f"{mine['cpu_us_per_poll']:,.0f} µs (×{mine['cpu_per_poll_ratio']:.2f}), "
            f"+{mine['rss_growth_mib']:,.0f} MiB",
            "≤ ×1.3 CPU/request, ≤ raw's memory",
            mine["cpu_per_poll_ratio"] <= 1.3
            and mine["rss_growth_mib"] <= raw["rss_growth_mib"],
        )
    t2 = tasks.get("tasks 2000", {})
    if FLOOR in t2 and "openai_runs" in t2:

        def ms(row: dict[str, Any] | None) -> str:
            if row is None or row["latency_p99"] is None:
                return "–"
            return f"{row['latency_p99'] * 1000:,.0f} ms"

        raw, mine = t2[FLOOR], t2["openai_runs"]
        add(
            "2,000 runs by `runs.poll` tasks, detection p99 (hint 500 ms)",
            ms(raw),
            ms(t2.get("openai")),
            ms(mine),
            "≤ raw + 100 ms",
            mine["latency_p99"] is not None
            and raw["latency_p99"] is not None
            and mine["latency_p99"] <= raw["latency_p99"] + 0.1,
        )
    many = tasks.get("many 10000", {}).get("openai_runs")
    if many is not None:
        add(
            "`watch_many`, memory per run at 10,000 runs",
            "–",
            "–",
            f"{many['kib_per_run']:.1f} KiB",
            "≤ 3.5 KiB",
            many["kib_per_run"] <= 3.5,
        )
    return rows


def scorecard_markdown(rows: list[dict[str, str]], results: dict[str, Any]) -> str:
    m = results["machine"]
    quick = " with `--quick`" if results["config"]["quick"] else ""
    lines = [
        f"Written by `nox -s bench` on {time.strftime('%Y-%m-%d')}{quick} "
        f"({m['cpus']} CPUs, {m['cpu_model']}, Python {m['python']}, "
        f"cattrs {m['cattrs']}, openai {m['openai']}): client CPU, medians, "
        "ratios to raw aiohttp (`json.loads` for structuring) from the same "
        "repetition.",
        "",
        "| figure | raw aiohttp | openai-python | openai-runs | target | |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['figure']} | {r['aiohttp']} | {r['openai']} | {r['openai_runs']} "
        f"| {r['target']} | {r['met']} |"
        for r in rows
    ]
    return "\n".join(lines)


BEGIN = "<!-- bench:scorecard:begin -->"
END = "<!-- bench:scorecard:end -->"


def write_scorecard(doc: Path, table: str) -> bool:
    """Replace the text between the markers in *doc*; whether they were found."""
    text = doc.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return False
    text = text[: start + len(BEGIN)] + "\n" + table + "\n" + text[end:]
    doc.write_text(text, encoding="utf-8")
    return True


def plot_tasks(results: dict[str, Any], path: Path) -> None:
    """The scorecard's figure: one polling task per run, CPU and detection p99."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"openai_runs": "#2a7ae2", "openai": "#999999", "aiohttp": "#2ca02c"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    _plot_tasks(results["tasks"], axes, colors)
    m = results["machine"]
    fig.suptitle(
        f"one runs.poll task per run: {m['cpus']} CPUs ({m['cpu_model']}), "
        f"Python {m['python']}" + (" (--quick)" if results["config"]["quick"] else ""),
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_tasks(tasks: dict[str, Any], axes: Any, colors: dict[str, str]) -> None:
    """One polling task per run: CPU per request, and detection p99."""
    cases = [c for c in ("tasks 10000", "tasks 2000") if c in tasks]
    width = 0.27
    left, right = axes
    for i, name in enumerate(NAMES):
        xs = [j + (i - 1) * width for j, c in enumerate(cases) if name in tasks[c]]
        ys = [tasks[c][name]["cpu_us_per_poll"] for c in cases if name in tasks[c]]
        if xs:
            left.bar(xs, ys, width, label=name, color=colors[name])
    left.set_xticks(range(len(cases)), [f"{c.split()[1]} poll tasks" for c in cases])
    left.set_ylabel("client CPU µs per request")
    left.set_title("one runs.poll task per run (500 ms hint)")
    left.legend()
    if "tasks 2000" in tasks:
        by_name = tasks["tasks 2000"]
        names = [n for n in NAMES if n in by_name and by_name[n]["latency_p99"]]
        right.bar(
            names,
            [by_name[n]["latency_p99"] for n in names],
            color=[colors[n] for n in names],
        )
        right.set_yscale("log")
        right.set_ylabel("detection latency p99, s (log)")
        right.set_title("2,000 runs by poll tasks: detection p99")


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"openai_runs": "#2a7ae2", "openai": "#999999", "aiohttp": "#2ca02c"}
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    ax = axes[0][0]
    concs = list(results["retrieve"][FLOOR])
    width = 0.27
    for i, name in enumerate(NAMES):
        values = [results["retrieve"][name][c]["us"] for c in concs]
        xs = [j + (i - 1) * width for j in range(len(concs))]
        ax.bar(xs, values, width, label=name, color=colors[name])
    ax.set_xticks(range(len(concs)), [f"concurrency {c}" for c in concs])
    ax.set_ylabel("client CPU µs per retrieve")
    ax.set_title("retrieve a run")
    ax.legend()

    watch = results["watch"]
    panels = (
        (
            axes[0][1],
            "fixed",
            "cpu_us_per_poll",
            "client CPU µs per poll",
            "CPU per poll (fixed 1 s policy)",
        ),
        (
            axes[1][0],
            "default",
            "kib_per_run",
            "peak RSS growth, KiB per run",
            "memory per watched run (default policies)",
        ),
        (
            axes[1][1],
            "default",
            "latency_p99",
            "detection latency p99, s",
            "completion detection p99 (default policies)",
        ),
    )
    for ax, policy, field, ylabel, title in panels:
        for name in NAMES:
            points = [
                (int(n), by_name[name][field])
                for n, by_name in watch[policy].items()
                if name in by_name and by_name[name][field] is not None
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="o", label=name, color=colors[name])
        ax.set_xscale("log")
        ax.set_xlabel("runs watched at once (N)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend()
    m = results["machine"]
    fig.suptitle(
        f"openai-runs bench: {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}"
        + (" (--quick)" if results["config"]["quick"] else ""),
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def start_server() -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, str(HERE / "_server.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE,
    )
    assert server.stdout is not None
    port = json.loads(server.stdout.readline())["port"]
    return server, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a minute")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "bench-results" / "bench.json"
    )
    parser.add_argument(
        "--plot", type=Path, default=ROOT / "docs" / "images" / "bench.png"
    )
    parser.add_argument(
        "--doc",
        type=Path,
        default=ROOT / "docs" / "performance.md",
        help="the page the scorecard is written into (when every row was measured)",
    )
    parser.add_argument(
        "--replot",
        type=Path,
        default=None,
        help="draw the plot from a results JSON of an earlier run, and stop",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="measure only these sections",
    )
    parser.add_argument("--no-watch", action="store_true", help="skip watching N runs")
    parser.add_argument(
        "--no-stream", action="store_true", help="skip the stream figure"
    )
    parser.add_argument(
        "--no-telemetry", action="store_true", help="skip the telemetry figure"
    )
    args = parser.parse_args()
    if args.replot is not None:
        earlier = json.loads(args.replot.read_text())
        if "watch" in earlier:
            plot(earlier, args.plot)
            print(f"wrote {args.plot}")
        if "tasks" in earlier:
            plot_tasks(earlier, args.plot.with_name("bench-tasks.png"))
            print(f"wrote {args.plot.with_name('bench-tasks.png')}")
        return
    only = set(args.only)
    if args.no_watch:
        only -= {"watch", "tasks"}
    if args.no_stream:
        only.discard("stream")
    if args.no_telemetry:
        only.discard("telemetry")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    cfg = Settings(args.quick)
    started = time.monotonic()
    server, url = start_server()
    try:
        results: dict[str, Any] = {
            "machine": machine(),
            "config": {
                "quick": cfg.quick,
                "reps": cfg.reps,
                "watch_n": list(cfg.watch_n),
            },
        }
        if "http" in only:
            print("measuring retrieve and list steps ...", file=sys.stderr)
            results.update(asyncio.run(http_sections(url, cfg)))
        if "parse" in only:
            print("measuring parse only ...", file=sys.stderr)
            results["parse"] = parse_section(cfg)
        if "stream" in only:
            print("measuring streaming ...", file=sys.stderr)
            results["stream"] = stream_section(quick=cfg.quick)
        if "telemetry" in only:
            print("measuring telemetry ...", file=sys.stderr)
            results["telemetry"] = telemetry_section(quick=cfg.quick)
        if "watch" in only:
            records = watch_section(url, cfg)
            results["watch_records"] = records
            results["watch"] = watch_summary(records)
        if "tasks" in only:
            print("measuring one task per run ...", file=sys.stderr)
            records = tasks_section(url, cfg)
            results["tasks_records"] = records
            results["tasks"] = tasks_summary(records)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)
    results["seconds"] = round(time.monotonic() - started, 1)
    print_tables(results)
    if "stream" in results:
        print_stream_table(results["stream"])
    if "telemetry" in results:
        print_telemetry_table(results["telemetry"])
    rows = scorecard(results)
    written = [str(args.json)]
    if rows is not None:
        results["scorecard"] = rows
        table = scorecard_markdown(rows, results)
        print("\nscorecard (issue 17)\n" + table)
        if write_scorecard(args.doc, table):
            written.append(str(args.doc))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    if all(k in results for k in ("retrieve", "watch")):
        plot(results, args.plot)
        written.append(str(args.plot))
    if "tasks" in results:
        tasks_plot = args.plot.with_name("bench-tasks.png")
        plot_tasks(results, tasks_plot)
        written.append(str(tasks_plot))
    print(f"\n{results['seconds']} s; wrote {', '.join(written)}")


if __name__ == "__main__":
    main()
