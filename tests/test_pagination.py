"""The pager over loopback: pages awaited, iterated forwards and backwards."""

from __future__ import annotations

import asyncio

from _recorder import (
    INCLUDE,
    Reply,
    api,
    ok,
    run_json,
    step_json,
)
from aiohttp import web

STEPS = [step_json(f"step_{i}", created_at=1_700_000_000 + i) for i in range(7)]


def paged(request: web.Request) -> Reply:
    """Serve STEPS (ascending) like the API: limit, order, after, before."""
    q = request.query
    items = STEPS if q.get("order", "desc") == "asc" else STEPS[::-1]
    ids = [s["id"] for s in items]
    if "after" in q:
        items = items[ids.index(q["after"]) + 1 :]
    if "before" in q:
        items = items[: ids.index(q["before"])]
        window = items[-int(q.get("limit", 20)) :]
        has_more = len(items) > len(window)
    else:
        window = items[: int(q.get("limit", 20))]
        has_more = len(items) > len(window)
    return ok(
        {
            "object": "list",
            "data": window,
            "first_id": window[0]["id"] if window else None,
            "last_id": window[-1]["id"] if window else None,
            "has_more": has_more,
        }
    )


def test_steps_list_awaited_is_the_first_page() -> None:
    """Awaiting steps.list fetches one page with limit, order and include[]."""

    async def main() -> None:
        async with api(paged) as (server, client):
            page = await client.runs.steps.list(
                "thread_1", "run_1", limit=3, order="asc", include=[INCLUDE]
            )
        assert [s.id for s in page.data] == ["step_0", "step_1", "step_2"]
        assert (page.first_id, page.last_id, page.has_more) == (
            "step_0",
            "step_2",
            True,
        )
        (seen,) = server.seen
        assert seen.path == "/v1/threads/thread_1/runs/run_1/steps"
        assert seen.query.startswith("limit=3&order=asc&include%5B%5D=")

    asyncio.run(main())


def test_steps_list_iterates_every_step_forwards() -> None:
    """Iterating steps.list yields every step once, paging with after=last_id."""

    async def main() -> None:
        async with api(paged, paged, paged, paged) as (server, client):
            ids = [
                s.id async for s in client.runs.steps.list("thread_1", "run_1", limit=3)
            ]
        assert ids == [f"step_{i}" for i in range(6, -1, -1)]
        assert [s.query for s in server.seen] == [
            "limit=3",
            "limit=3&after=step_4",
            "limit=3&after=step_1",
        ]

    asyncio.run(main())


def test_steps_list_from_before_pages_backwards_with_before_only() -> None:
    """Paging that starts from before goes on with before=first_id, never sending after."""

    async def main() -> None:
        async with api(paged, paged, paged) as (server, client):
            pager = client.runs.steps.list(
                "thread_1", "run_1", limit=2, order="asc", before="step_5"
            )
            ids = [s.id async for s in pager]
        assert sorted(ids) == [f"step_{i}" for i in range(5)]
        assert len(ids) == len(set(ids))
        assert all("after" not in s.query for s in server.seen)
        assert [s.query.rsplit("before=", 1)[1] for s in server.seen] == [
            "step_5",
            "step_3",
            "step_1",
        ]

    asyncio.run(main())


def test_steps_list_stops_on_a_cursor_that_does_not_move() -> None:
    """A server that repeats the same page with has_more does not loop forever."""
    page = {
        "object": "list",
        "data": [STEPS[0]],
        "first_id": "step_0",
        "last_id": "step_0",
        "has_more": True,
    }

    async def main() -> None:
        async with api(ok(page), ok(page), ok(page)) as (server, client):
            ids = [s.id async for s in client.runs.steps.list("thread_1", "run_1")]
        assert ids == ["step_0", "step_0"]
        assert len(server.seen) == 2

    asyncio.run(main())


RUNS = [run_json(f"run_{i}", created_at=1_700_000_000 + i) for i in range(5)]


def paged_runs(request: web.Request) -> Reply:
    q = request.query
    items = RUNS if q.get("order", "desc") == "asc" else RUNS[::-1]
    ids = [r["id"] for r in items]
    if "after" in q:
        items = items[ids.index(q["after"]) + 1 :]
    window = items[: int(q.get("limit", 20))]
    return ok(
        {
            "object": "list",
            "data": window,
            "first_id": window[0]["id"] if window else None,
            "last_id": window[-1]["id"] if window else None,
            "has_more": len(items) > len(window),
        }
    )


def test_list_runs_pages_like_steps() -> None:
    """runs.list is one page when awaited and every run when iterated."""

    async def main() -> None:
        async with api(*[paged_runs] * 4) as (server, client):
            page = await client.runs.list("thread_1", limit=2, order="asc")
            ids = [
                r.id async for r in client.runs.list("thread_1", limit=2, order="asc")
            ]
        assert [r.id for r in page.data] == ["run_0", "run_1"]
        assert page.has_more
        assert ids == [f"run_{i}" for i in range(5)]
        assert server.seen[0].path == "/v1/threads/thread_1/runs"
        assert [s.query for s in server.seen[1:]] == [
            "limit=2&order=asc",
            "limit=2&order=asc&after=run_1",
            "limit=2&order=asc&after=run_3",
        ]

    asyncio.run(main())
