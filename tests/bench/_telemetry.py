"""The telemetry figure: what OpenTelemetry instrumentation costs a retrieve.

    python tests/bench/_telemetry.py [--quick]      # this scenario alone

Against the bench's lean server (``_server.py``, its own process), one
process retrieves the same run in each mode, interleaved (the order rotates
each repetition), so that every figure comes from the same run:

- ``aiohttp``: one ``ClientSession`` and ``json.loads``, the floor;
- ``baseline``: openai_runs with its request path as it was before the
  hooks (``RunsClient._send`` without the ``_observe.hooks`` check, patched
  in for this client only): what "off" is compared with;
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
the repetitions, with ratios to ``aiohttp``, to ``baseline`` and to ``off``. A last line
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
import types
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
MODES = ("aiohttp", "baseline", "off", "on, API only", "on, SDK")
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


async def _send_without_hook(
    self: Any,
    method: str,
    path: tuple[str, ...],
    query: list[tuple[str, str]],
    data: bytes | None,
    timeout: float | None,
    *,
    retry_sent: bool,
    resend: int,
) -> Any:
    """`RunsClient._send` as it was before the telemetry hook."""
    from openai_runs._client import _NotRetried
    from openai_runs.exceptions import APIConnectionError

    try:
        return await self._transport.request(
            method, path, params=query, body=data, timeout=timeout
        )
    except APIConnectionError as lost:
        if not retry_sent and lost.request_sent:
            raise _NotRetried(lost) from lost
        raise


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
    baseline = openai_runs.RunsClient(api_key=API_KEY, base_url=f"{url}/v1")
    baseline._send = types.MethodType(_send_without_hook, baseline)  # type: ignore[method-assign]
    raw = aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {API_KEY}", "OpenAI-Beta": "assistants=v2"}
    )
    run_url = f"{url}/v1/threads/{thread_id}/runs/{run_id}"

    async def raw_retrieve() -> Any:
        async with raw.get(run_url) as r:
            return json.loads(await r.read())

    async def sdk_retrieve() -> Any:
        return await client.runs.retrieve(thread_id, run_id)

    async def baseline_retrieve() -> Any:
        return await baseline.runs.retrieve(thread_id, run_id)

    calls_of = {"aiohttp": raw_retrieve, "baseline": baseline_retrieve}

    providers = _providers()
    samples: dict[str, dict[str, list[float]]] = {m: {} for m in MODES}
    try:
        for rep in range(reps):
            k = rep % len(MODES)
            for mode in (*MODES[k:], *MODES[:k]):
                if mode in providers:
                    telemetry.instrument(*providers[mode])
                fn = calls_of.get(mode, sdk_retrieve)
                try:
                    for conc, n in calls.items():
                        us = await cpu_per_call(fn, n, conc)
                        samples[mode].setdefault(str(conc), []).append(us)
                finally:
                    telemetry.uninstrument()
    finally:
        await client.aclose()
        await baseline.aclose()
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
                "ratio_to_baseline": round(us / medians["baseline"][conc], 3),
                "ratio_to_off": round(us / medians["off"][conc], 3),
            }
            for conc, us in by.items()
        }
    # The paired ratio off / baseline of each repetition: its spread is the
    # noise of this run, which any cost of the check has to stand out from.
    result["off_to_baseline"] = {}
    for conc in samples["off"]:
        paired = [
            off / base
            for off, base in zip(
                samples["off"][conc], samples["baseline"][conc], strict=True
            )
        ]
        q1, median, q3 = statistics.quantiles(paired, n=4, method="inclusive")
        result["off_to_baseline"][conc] = {
            "median": round(median, 3),
            "q1": round(q1, 3),
            "q3": round(q3, 3),
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
    # Many short rounds rather than a few long ones: every mode meets the
    # same moments of a shared machine's load, and the medians settle.
    calls = {1: 150, 64: 640} if quick else {1: 300, 64: 1280}
    try:
        return asyncio.run(measure(url, reps=12 if quick else 30, calls=calls))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)


def print_table(result: dict[str, Any]) -> None:
    print(
        "\ntelemetry: retrieve, client CPU µs per call "
        "(ratio to aiohttp, to baseline, to off)"
    )
    for mode, by in result["modes"].items():
        cells = "  ".join(
            f"{conc:>3} in flight {r['cpu_us_per_call']:7.1f} µs "
            f"({r['ratio_to_aiohttp']:.2f}x, {r['ratio_to_baseline']:.3f}x base, "
            f"{r['ratio_to_off']:.2f}x off)"
            for conc, r in by.items()
        )
        print(f"  {mode:<14} {cells}")
    for conc, r in result["off_to_baseline"].items():
        print(
            f"  off / baseline, paired by repetition, {conc:>3} in flight: "
            f"median {r['median']:.3f} (quartiles {r['q1']:.3f} to {r['q3']:.3f})"
        )
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
