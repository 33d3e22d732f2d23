"""The remote provider's connection test (Settings → Remote → Test): reach Redis
with the stored password on a connection of its own, count the live workers
and the waiting jobs. Runs only when the user asks."""

from __future__ import annotations

import asyncio
import contextlib

import redis.exceptions
from bullmq import Queue

from desktop_app.providers.base import ConnectionOutcome, ConnectionReport
from desktop_app.providers.remote_bullmq import connection
from desktop_app.providers.remote_bullmq.config import RemoteConfig
from desktop_app.providers.remote_bullmq.errors import PROVIDER, from_redis, where
from desktop_app.providers.remote_bullmq.fleet import read_fleet
from desktop_app.providers.remote_bullmq.protocol import Keys

# BullMQ states of a job no worker has taken yet.
WAITING = ("waiting", "prioritized", "delayed", "paused", "waiting-children")
CLOSE_TIMEOUT_S = 5.0


async def check_connection(config: RemoteConfig, password: str | None) -> ConnectionReport:
    if not config.redis_url:
        return ConnectionReport(PROVIDER, ConnectionOutcome.NOT_CONFIGURED,
                                "Set the Redis URL of your workers' queue first.")
    place = where(config.redis_url)
    client = connection.client(config.redis_url, password,
                               connect_timeout_s=config.connect_timeout_s)
    queue = Queue(config.queue, {"connection": client})
    try:
        async with asyncio.timeout(config.connect_timeout_s + 10.0):
            await client.ping()
            fleet = await read_fleet(client, Keys(config.queue))
            counts = await queue.getJobCounts(*WAITING, "active")
    except Exception as exc:
        return _failed(exc, config, place, has_password=bool(password))
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(queue.close(), CLOSE_TIMEOUT_S)  # closes the client
    waiting = sum(int(counts.get(s, 0)) for s in WAITING)
    details = {"redis": place, "queue": config.queue, "workers": str(fleet.alive),
               "workers_busy": str(fleet.busy), "waiting": str(waiting),
               "active": str(int(counts.get("active", 0)))}
    if fleet.alive == 0:
        return ConnectionReport(
            PROVIDER, ConnectionOutcome.FAILED,
            f"Redis at {place} answered, but no remote worker is running on queue "
            f"{config.queue!r} ({waiting} job(s) waiting): start one with `imagedesk worker`.",
            details)
    return ConnectionReport(
        PROVIDER, ConnectionOutcome.PASSED,
        f"Redis at {place} answered: {fleet.alive} worker(s) alive, {fleet.busy} busy; "
        f"{waiting} job(s) waiting on queue {config.queue!r}.", details)


def _failed(exc: BaseException, config: RemoteConfig, place: str, *,
            has_password: bool) -> ConnectionReport:
    if isinstance(exc, TimeoutError):
        return ConnectionReport(PROVIDER, ConnectionOutcome.UNREACHABLE,
                                f"Redis at {place} did not answer in time.")
    error = from_redis(exc, config.redis_url, has_password=has_password)
    if isinstance(exc, redis.exceptions.AuthenticationError) or (
            isinstance(exc, redis.exceptions.ResponseError)
            and str(exc).startswith(("WRONGPASS", "NOAUTH"))):
        outcome = ConnectionOutcome.KEY_REJECTED
    elif isinstance(exc, redis.exceptions.ConnectionError | OSError):
        outcome = ConnectionOutcome.UNREACHABLE
    else:
        outcome = ConnectionOutcome.SERVER_ERROR
    return ConnectionReport(PROVIDER, outcome, error.message, {"redis": place})
