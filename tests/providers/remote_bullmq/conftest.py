from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.providers.remote_bullmq.support import REDIS_SERVER, RedisServer

needs_redis = pytest.mark.skipif(
    REDIS_SERVER is None,
    reason="redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh, password-protected redis-server on 127.0.0.1 for one test."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    server.start()
    yield server
    server.stop()
