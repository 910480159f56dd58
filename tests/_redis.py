"""Pytest fixtures: a real redis-server per test, skipped only without the binary.

Import the fixtures into a test module to use them:

    from _redis import redis_server_fixture, redis_url_fixture  # noqa: F401

`redis_server` is a [RedisServer][_redis_server.RedisServer] that a test may
stop and start again (an outage); `redis_url` is just its URL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _redis_server import MISSING, RedisServer, binary

__all__ = ["RedisServer", "redis_server_fixture", "redis_url_fixture"]


@pytest.fixture(name="redis_server")
def redis_server_fixture() -> Iterator[RedisServer]:
    """A fresh redis-server on a free port for one test, stopped after it."""
    if binary() is None:
        pytest.skip(MISSING)
    with RedisServer() as server:
        yield server


@pytest.fixture(name="redis_url")
def redis_url_fixture(redis_server: RedisServer) -> str:
    """The URL of a fresh redis-server, `redis://127.0.0.1:PORT/0`."""
    return redis_server.url
