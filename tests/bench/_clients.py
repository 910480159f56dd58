"""The three clients under test, behind one small interface.

- ``openai_runs``: this package, as a user would call it.
- ``openai``: the official ``AsyncOpenAI`` (``beta.threads.runs``).
- ``aiohttp``: one ``ClientSession`` and ``json.loads``, the practical floor.

Each one retrieves a run, fetches a page of steps, iterates all steps, and
watches many runs: with its default policy (what users get) or with one fixed
1 s cadence (the same work for all, for CPU per poll). ``watch`` is each
client's best way to watch many runs (``watch_many`` for this package);
``watch_tasks`` is one polling task per run under ``asyncio.gather`` (this
package's ``runs.poll``), the way most users write it.
"""

# ruff: noqa: PLC0415 - each client loads its SDK only when it is measured
from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import Callable
from typing import Any

import aiohttp

API_KEY = "sk-bench"
FIXED_INTERVAL = 1.0
TERMINAL = frozenset(
    {"requires_action", "cancelled", "completed", "failed", "expired", "incomplete"}
)

Detected = dict[str, float]


class OpenAIRunsClient:
    """This package."""

    name = "openai_runs"

    def __init__(self, base_url: str) -> None:
        import openai_runs

        self._m = openai_runs
        self.client = openai_runs.RunsClient(api_key=API_KEY, base_url=base_url)

    async def retrieve(self, thread_id: str, run_id: str) -> Any:
        return await self.client.runs.retrieve(thread_id, run_id)

    async def steps_page(self, thread_id: str, run_id: str, limit: int) -> int:
        page = await self.client.runs.steps.list(thread_id, run_id, limit=limit)
        return len(page.data)

    async def steps_all(self, thread_id: str, run_id: str) -> int:
        n = 0
        async for _ in self.client.runs.steps.list(thread_id, run_id, limit=100):
            n += 1
        return n

    async def watch(
        self, thread_id: str, run_ids: list[str], *, fixed: bool, detected: Detected
    ) -> None:
        policy = None
        if fixed:
            policy = self._m.WatchPolicy(
                initial=FIXED_INTERVAL,
                multiplier=1.0,
                maximum=FIXED_INTERVAL,
                jitter=0.0,
            )
        refs = [(thread_id, run_id) for run_id in run_ids]
        async for result in self.client.runs.watch_many(refs, policy=policy):
            if result.ok:
                detected[result.run_id] = time.monotonic()

    async def watch_tasks(
        self, thread_id: str, run_ids: list[str], *, fixed: bool, detected: Detected
    ) -> None:
        """One `runs.poll` task per run under `asyncio.gather`, as most users write it."""
        policy = None
        if fixed:
            policy = self._m.WatchPolicy(
                initial=FIXED_INTERVAL,
                multiplier=1.0,
                maximum=FIXED_INTERVAL,
                jitter=0.0,
            )
        runs = self.client.runs

        async def one(run_id: str) -> None:
            await runs.poll(thread_id, run_id, policy=policy)
            detected[run_id] = time.monotonic()

        await asyncio.gather(*(one(run_id) for run_id in run_ids))

    async def aclose(self) -> None:
        await self.client.aclose()


class OpenAIClient:
    """The official SDK's ``AsyncOpenAI``."""

    name = "openai"

    def __init__(self, base_url: str) -> None:
        import openai

        warnings.filterwarnings("ignore", category=DeprecationWarning)
        self.client = openai.AsyncOpenAI(api_key=API_KEY, base_url=base_url)
        self.runs = self.client.beta.threads.runs

    async def retrieve(self, thread_id: str, run_id: str) -> Any:
        return await self.runs.retrieve(run_id, thread_id=thread_id)

    async def steps_page(self, thread_id: str, run_id: str, limit: int) -> int:
        page = await self.runs.steps.list(run_id, thread_id=thread_id, limit=limit)
        return len(page.data)

    async def steps_all(self, thread_id: str, run_id: str) -> int:
        n = 0
        async for _ in self.runs.steps.list(run_id, thread_id=thread_id, limit=100):
            n += 1
        return n

    async def watch(
        self, thread_id: str, run_ids: list[str], *, fixed: bool, detected: Detected
    ) -> None:
        extra: dict[str, Any] = {}
        if fixed:
            extra["poll_interval_ms"] = int(FIXED_INTERVAL * 1000)

        async def one(run_id: str) -> None:
            await self.runs.poll(run_id, thread_id=thread_id, **extra)
            detected[run_id] = time.monotonic()

        await asyncio.gather(*(one(run_id) for run_id in run_ids))

    watch_tasks = watch  # its watch already is one `poll` task per run

    async def aclose(self) -> None:
        await self.client.close()


class RawAiohttpClient:
    """One ``aiohttp.ClientSession`` and ``json.loads``: no models, no retries."""

    name = "aiohttp"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession(
            headers={
                "Authorization": f"Bearer {API_KEY}",
                "OpenAI-Beta": "assistants=v2",
            }
        )

    async def _get(self, url: str) -> tuple[Any, Any]:
        async with self.session.get(url) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{resp.status}: {body[:200]!r}")
            return json.loads(body), resp.headers

    async def retrieve(self, thread_id: str, run_id: str) -> Any:
        return (await self._get(f"{self.base_url}/threads/{thread_id}/runs/{run_id}"))[
            0
        ]

    async def steps_page(self, thread_id: str, run_id: str, limit: int) -> int:
        url = f"{self.base_url}/threads/{thread_id}/runs/{run_id}/steps?limit={limit}"
        return len((await self._get(url))[0]["data"])

    async def steps_all(self, thread_id: str, run_id: str) -> int:
        url = f"{self.base_url}/threads/{thread_id}/runs/{run_id}/steps?limit=100"
        n, after = 0, ""
        while True:
            page, _ = await self._get(url + after)
            n += len(page["data"])
            if not page["has_more"]:
                return n
            after = f"&after={page['last_id']}"

    async def watch(
        self, thread_id: str, run_ids: list[str], *, fixed: bool, detected: Detected
    ) -> None:
        # The naive loop: every run polled at once, then after the server's
        # hint, or the fixed interval when there is none.
        async def one(run_id: str) -> None:
            url = f"{self.base_url}/threads/{thread_id}/runs/{run_id}"
            while True:
                run, headers = await self._get(url)
                if run["status"] in TERMINAL:
                    detected[run_id] = time.monotonic()
                    return
                hint = headers.get("openai-poll-after-ms")
                await asyncio.sleep(
                    FIXED_INTERVAL if fixed or hint is None else int(hint) / 1000
                )

        await asyncio.gather(*(one(run_id) for run_id in run_ids))

    watch_tasks = watch  # one polling task per run

    async def aclose(self) -> None:
        await self.session.close()


CLIENTS: dict[str, Callable[[str], Any]] = {
    "openai_runs": OpenAIRunsClient,
    "openai": OpenAIClient,
    "aiohttp": RawAiohttpClient,
}
