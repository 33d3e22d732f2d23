"""Settings → Remote → Test against a real redis-server: the stored password
reaches it, and the report says how many workers are alive and how many jobs wait."""

from __future__ import annotations

import redis.asyncio as aioredis

from desktop_app.providers.base import ConnectionOutcome
from desktop_app.providers.remote_bullmq.config import RemoteConfig
from desktop_app.providers.remote_bullmq.fleet import publish_advert
from desktop_app.providers.remote_bullmq.protocol import Keys, WorkerAdvert
from desktop_app.providers.remote_bullmq.provider import RemoteProvider
from tests.providers.remote_bullmq.support import PASSWORD, RedisServer, free_port


async def _advertise(server: RedisServer, queue: str) -> None:
    client = aioredis.Redis(port=server.port, password=server.password, decode_responses=True)
    try:
        await publish_advert(client, Keys(queue), WorkerAdvert(
            "w1", "studio-gpu", "studio", 42, "builtin:tiny", "ready", {}), ttl_s=60)
    finally:
        await client.aclose()


async def test_the_stored_password_reaches_redis_and_the_report_counts_workers(
        redis_server: RedisServer) -> None:
    await _advertise(redis_server, "studio")
    provider = RemoteProvider(RemoteConfig(redis_url=redis_server.url, queue="studio"),
                              lambda: PASSWORD)
    try:
        report = await provider.test_connection()
    finally:
        await provider.close()
    assert report.passed, report.message
    assert "1 worker(s) alive" in report.message and "0 job(s) waiting" in report.message
    assert report.details["workers"] == "1"
    assert PASSWORD not in report.message + repr(report.details)


async def test_a_queue_without_workers_fails_saying_to_start_one(
        redis_server: RedisServer) -> None:
    provider = RemoteProvider(RemoteConfig(redis_url=redis_server.url, queue="empty"),
                              lambda: PASSWORD)
    report = await provider.test_connection()
    await provider.close()
    assert not report.passed
    assert "no remote worker is running on queue 'empty'" in report.message
    assert "imagedesk worker" in report.message


async def test_a_wrong_or_missing_password_is_a_rejected_key(redis_server: RedisServer) -> None:
    for password in ("not the password", None):
        provider = RemoteProvider(RemoteConfig(redis_url=redis_server.url),
                                  lambda p=password: p)  # type: ignore[misc]
        report = await provider.test_connection()
        await provider.close()
        assert report.outcome is ConnectionOutcome.KEY_REJECTED, (password, report)
        assert "imagedesk keys set remote" in report.message
        assert "not the password" not in report.message


async def test_nothing_listening_is_unreachable_and_no_url_is_not_configured() -> None:
    provider = RemoteProvider(RemoteConfig(redis_url=f"redis://127.0.0.1:{free_port()}/0",
                                           connect_timeout_s=1.0), lambda: PASSWORD)
    report = await provider.test_connection()
    assert report.outcome is ConnectionOutcome.UNREACHABLE and "unreachable" in report.message
    empty = RemoteProvider(RemoteConfig(), lambda: None)
    assert (await empty.test_connection()).outcome is ConnectionOutcome.NOT_CONFIGURED
