"""Redis clients for both sides, built from a URL plus a password from the key store.

BullMQ's Python port accepts a ready redis-py client as its ``connection``;
giving it ours lets each side choose its own patience: the desktop fails fast
(a Redis that is down is a Transient error now, not after BullMQ's default 20
retries with backoff up to 20 s each), a worker keeps retrying through a
Redis restart.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.connection import ConnectionPool, parse_url
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError
from redis.retry import Retry


def client(url: str, password: str | None, *, decode: bool = True,
           connect_timeout_s: float = 3.0, retries: int = 1, backoff_cap_s: float = 0.5,
           socket_timeout_s: float | None = 30.0) -> aioredis.Redis:
    """A pooled client. A password given here wins over one inside the URL."""
    options = dict(parse_url(url))
    if password:
        options["password"] = password
    pool = ConnectionPool(
        **options,  # type: ignore[arg-type]
        decode_responses=decode,
        socket_connect_timeout=connect_timeout_s,
        socket_timeout=socket_timeout_s,
        retry=Retry(ExponentialBackoff(cap=backoff_cap_s, base=0.05), retries),
        retry_on_error=[BusyLoadingError, ConnectionError, TimeoutError],
        health_check_interval=30,
    )
    return aioredis.Redis.from_pool(pool)


def url_password(url: str) -> str | None:
    password = parse_url(url).get("password")
    return password if isinstance(password, str) and password else None
