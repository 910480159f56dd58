"""RedisBudget: a request budget shared through a real redis-server."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from _redis import RedisServer, redis_server_fixture, redis_url_fixture  # noqa: F401


def test_fixture_serves_a_fresh_redis(redis_server: RedisServer) -> None:
    """The fixture's redis-server answers on its URL, empty, and stops on demand."""

    async def main() -> None:
        client = aioredis.Redis.from_url(redis_server.url, socket_timeout=2)
        try:
            assert await client.ping()
            assert await client.dbsize() == 0
        finally:
            await client.aclose()

    asyncio.run(main())
    redis_server.stop()
    assert not redis_server.running
