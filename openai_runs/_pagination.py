"""Lists that are one page when awaited and every item when iterated."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

from ._http import Response
from .models import Page

__all__ = ["AsyncPager"]

T = TypeVar("T")


class AsyncPager(Generic[T]):
    """A list call: `await` it for the first page, `async for` for all items.

    ```python
    page = await client.runs.steps.list(thread_id, run_id, limit=20)
    async for step in client.runs.steps.list(thread_id, run_id):
        ...
    ```

    Iterating fetches the next page only when the current one is used up:
    forwards with `after=last_id`, or, when the listing started from
    `before`, backwards with `before=first_id`. Only one cursor is ever
    sent, so each item is yielded exactly once.
    """

    def __init__(
        self,
        fetch: Callable[[dict[str, str]], Awaitable[Response[Page[T]]]],
        params: dict[str, str],
    ) -> None:
        self._fetch = fetch
        self._params = params

    def __await__(self) -> Generator[Any, None, Page[T]]:
        return self.first_page().__await__()

    async def first_page(self) -> Page[T]:
        """Fetch the page the arguments describe."""
        return (await self._fetch(self._params)).parsed

    async def first_response(self) -> Response[Page[T]]:
        """Fetch the first page together with its HTTP answer (headers)."""
        return await self._fetch(self._params)

    async def __aiter__(self) -> AsyncIterator[T]:
        params = dict(self._params)
        cursor = "before" if "before" in params else "after"
        seen: set[str] = set()
        while True:
            page = (await self._fetch(params)).parsed
            for item in page.data:
                yield item
            following = page.first_id if cursor == "before" else page.last_id
            # A cursor seen before would loop forever: stop instead.
            if not page.has_more or not page.data or not following or following in seen:
                return
            seen.add(following)
            params[cursor] = following
