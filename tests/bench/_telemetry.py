"""The telemetry figure: what OpenTelemetry instrumentation costs a retrieve.

    python tests/bench/_telemetry.py [--quick]      # this scenario alone

Against the bench's lean server (``_server.py``, its own process), one
process retrieves the same run in each mode, interleaved (the order rotates
each repetition), so that every figure comes from the same run:

- ``aiohttp``: one ``ClientSession`` and ``json.loads``, the floor;
- ``off``: openai_runs, not instrumented (or instrumented and then
  ``uninstrument()``-ed: the same path);
- ``on, API only``: ``telemetry.instrument()`` with OpenTelemetry's no-op
  providers: our hooks with nothing behind them (``opentelemetry-api``
  installed, no SDK configured);
- ``on, SDK``: ``telemetry.instrument()`` with the SDK's ``TracerProvider``
  (a ``BatchSpanProcessor`` to an exporter that drops the spans) and
  ``MeterProvider`` (an in-memory reader): the full cost of recording a span
  and four measurements per request, export aside.

Figures: client CPU µs per call (``time.process_time``, so the batch
processor's thread counts too), at 1 and 64 calls in flight, medians over
the repetitions, with ratios to ``aiohttp`` and to ``off``. A last line
times the check that the request path makes while instrumentation is off
(``_observe.hooks is None``), against the CPU of one retrieve.
"""

# ruff: noqa: PLC0415 - OpenTelemetry loads only when it is measured
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import timeit
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
MODES = ("aiohttp", "off", "on, API only", "on, SDK")
API_KEY = "sk-bench"


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


async def cpu_per_call(
    fn: Callable[[], Awaitable[Any]], calls: int, workers: int
) -> float:
    """Client CPU µs per call of *fn*, *workers* calls in flight at a time."""
    import time

    async def worker(n: int) -> None:
        for _ in range(n):
            await fn()

    await asyncio.gather(*(worker(1) for _ in range(workers)))
    per = max(calls // workers, 1)
    cpu = time.process_time()
    await asyncio.gather(*(worker(per) for _ in range(workers)))
    return (time.process_time() - cpu) / (per * workers) * 1e6


def _providers() -> dict[str, tuple[Any, Any]]:
    """The tracer and meter providers of each instrumented mode."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Dropped(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Dropped()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return {
        "on, API only": (trace.NoOpTracerProvider(), metrics.NoOpMeterProvider()),
        "on, SDK": (tracer_provider, meter_provider),
    }


async def measure(url: str, *, reps: int, calls: dict[int, int]) -> dict[str, Any]:
    import openai_runs
    from openai_runs import telemetry

    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/bench/runs", json={"durations": [1e6]}) as resp,
    ):
        batch = await resp.json()
    thread_id, run_id = batch["thread_id"], batch["run_ids"][0]
    client = openai_runs.RunsClient(api_key=API_KEY, base_url=f"{url}/v1")
    raw = aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {API_KEY}", "OpenAI-Beta": "assistants=v2"}
    )
    run_url = f"{url}/v1/threads/{thread_id}/runs/{run_id}"

    async def raw_retrieve() -> Any:
        async with raw.get(run_url) as r:
            return json.loads(await r.read())

    async def sdk_retrieve() -> Any:
        return await client.runs.retrieve(thread_id, run_id)

    providers = _providers()
    samples: dict[str, dict[str, list[float]]] = {m: {} for m in MODES}
    try:
        for rep in range(reps):
            k = rep % len(MODES)
            for mode in (*MODES[k:], *MODES[:k]):
                if mode in providers:
                    telemetry.instrument(*providers[mode])
                fn = raw_retrieve if mode == "aiohttp" else sdk_retrieve
                try:
                    for conc, n in calls.items():
                        us = await cpu_per_call(fn, n, conc)
                        samples[mode].setdefault(str(conc), []).append(us)
                finally:
                    telemetry.uninstrument()
    finally:
        await client.aclose()
        await raw.close()
        for tracer_provider, meter_provider in providers.values():
            getattr(tracer_provider, "shutdown", lambda: None)()
            getattr(meter_provider, "shutdown", lambda: None)()
    return _summary(samples)


def _summary(samples: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    from openai_runs import _observe

    medians = {
        mode: {conc: statistics.median(v) for conc, v in by.items()}
        for mode, by in samples.items()
    }
    result: dict[str, Any] = {"modes": {}}
    for mode, by in medians.items():
        result["modes"][mode] = {
            conc: {
                "cpu_us_per_call": round(us, 1),
                "ratio_to_aiohttp": round(us / medians["aiohttp"][conc], 3),
                "ratio_to_off": round(us / medians["off"][conc], 3),
            }
            for conc, us in by.items()
        }
    number = 2_000_000
    seconds = timeit.timeit(
        "_observe.hooks is None", globals={"_observe": _observe}, number=number
    )
    check_ns = seconds / number * 1e9
    result["off_check_ns"] = round(check_ns, 1)
    result["off_check_share_of_retrieve"] = check_ns / (medians["off"]["1"] * 1000)
    return result


def telemetry_section(*, quick: bool) -> dict[str, Any]:
    """The telemetry figure, with its own server process."""
    server, url = start_server()
    calls = {1: 400, 64: 1280} if quick else {1: 1200, 64: 3840}
    try:
        return asyncio.run(measure(url, reps=4 if quick else 8, calls=calls))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)


def print_table(result: dict[str, Any]) -> None:
    print(
        "\ntelemetry: retrieve, client CPU µs per call (ratio to aiohttp, ratio to off)"
    )
    for mode, by in result["modes"].items():
        cells = "  ".join(
            f"{conc:>3} in flight {r['cpu_us_per_call']:7.1f} µs "
            f"({r['ratio_to_aiohttp']:.2f}x, {r['ratio_to_off']:.2f}x off)"
            for conc, r in by.items()
        )
        print(f"  {mode:<14} {cells}")
    share = result["off_check_share_of_retrieve"]
    print(
        f"  the check while off: {result['off_check_ns']:.0f} ns a request, "
        f"{share:.4%} of a retrieve's CPU"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    result = telemetry_section(quick=args.quick)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
