"""A desktop provider and two worker processes on the real tiny diffusion model share
one queue on a real redis-server: both serve, a cancel reaches the pipeline, a
Redis crash-restart loses nothing, a killed worker's job is finished by the other
and delivered once, SIGTERM stops a worker cleanly.

The tests share one server and two workers (each costs ~10 s to start) and run
in file order: the last ones kill and stop workers.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest

from desktop_app.domain.errors import Cancelled
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import CancelToken, Phase, Progress
from desktop_app.providers.remote_bullmq import RemoteConfig, RemoteProvider
from tests.providers.remote_bullmq.support import (
    REDIS_SERVER,
    RedisServer,
    WorkerProcess,
    wait_for_workers,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed "
                       "(Debian/Ubuntu: apt-get install redis-server)"),
]
QUEUE = "gpus"


class Site:
    def __init__(self, server: RedisServer, workers: dict[str, WorkerProcess]) -> None:
        self.server = server
        self.workers = workers


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("remote-site")
    (root / "redis").mkdir()
    server = RedisServer(root / "redis")
    server.start()
    workers = {name: WorkerProcess(server, QUEUE, root / f"data-{name}", name, root)
               for name in ("gpu-a", "gpu-b")}
    try:
        wait_for_workers(server, QUEUE, set(workers), processes=list(workers.values()))
        yield Site(server, workers)
    finally:
        for worker in workers.values():
            worker.kill()
        server.stop()


@pytest.fixture
async def remote(site: Site) -> AsyncIterator[RemoteProvider]:
    provider = RemoteProvider(RemoteConfig(redis_url=site.server.url, queue=QUEUE, poll_s=0.5,
                                           health_cache_s=0.0),
                              lambda: site.server.password)
    yield provider
    await provider.close()


def request(**changes: object) -> GenerationRequest:
    fields: dict[str, object] = {"prompt": "a glass lighthouse", "width": 64, "height": 64,
                                 "steps": 8, "seed": 5}
    fields.update(changes)
    return GenerationRequest(**fields)  # type: ignore[arg-type]


def completions(site: Site) -> Counter[str]:
    """How many times each job id completed, from BullMQ's own event stream."""
    with site.server.client() as client:
        entries = client.xrange(f"bull:{QUEUE}:events")
    return Counter(fields["jobId"] for _, fields in entries if fields.get("event") == "completed")


async def test_two_workers_share_the_queue(site: Site, remote: RemoteProvider) -> None:
    health = await remote.health()
    assert health.details["workers"] == "2"

    batches = await asyncio.gather(*(
        remote.generate(request(seed=100 + i, steps=12), lambda _: None, CancelToken())
        for i in range(6)))

    assert sorted(b[0].seed for b in batches if b[0].seed is not None) == list(range(100, 106))
    assert all(b[0].data.startswith(b"\x89PNG") and b[0].width == 64 for b in batches)
    assert {b[0].details["worker"] for b in batches} == {"gpu-a", "gpu-b"}
    assert all("Built-in test model" in b[0].model for b in batches)


async def test_a_cancel_reaches_the_pipeline_on_the_worker(site: Site,
                                                           remote: RemoteProvider) -> None:
    cancel = CancelToken()
    steps: list[int] = []

    def on_progress(event: Progress) -> None:
        if event.phase is Phase.GENERATING:
            steps.append(event.step)
            if event.step >= 3:
                cancel.cancel()

    started = time.monotonic()
    with pytest.raises(Cancelled):
        await remote.generate(request(width=256, height=256, steps=150), on_progress, cancel)
    took = time.monotonic() - started

    assert steps and max(steps) < 150
    assert took < 15  # 150 steps at 256 px would take ~30 s here
    # the worker is free again and serves the next job
    images = await remote.generate(request(), lambda _: None, CancelToken())
    assert len(images) == 1


async def test_redis_crash_and_restart_mid_queue_loses_nothing(
        site: Site, remote: RemoteProvider) -> None:
    before = completions(site)
    seen_progress = asyncio.Event()

    def on_progress(event: Progress) -> None:
        if event.phase is Phase.GENERATING:
            seen_progress.set()

    jobs = [asyncio.ensure_future(remote.generate(request(seed=200 + i, steps=20), on_progress,
                                                  CancelToken())) for i in range(6)]
    await asyncio.wait_for(seen_progress.wait(), 30)
    site.server.kill()  # SIGKILL: only what the append-only file has survives
    await asyncio.sleep(1.0)
    site.server.start()

    batches = await asyncio.wait_for(asyncio.gather(*jobs), 90)

    assert sorted(b[0].seed for b in batches if b[0].seed is not None) == list(range(200, 206))
    after = completions(site) - before
    assert len(after) == 6 and set(after.values()) == {1}


async def test_a_killed_workers_job_is_finished_by_the_other_and_delivered_once(
        site: Site, remote: RemoteProvider) -> None:
    before = completions(site)
    events: list[Progress] = []
    job = asyncio.ensure_future(remote.generate(request(width=128, height=128, steps=100),
                                                events.append, CancelToken()))
    deadline = time.monotonic() + 30
    while not any(e.phase is Phase.GENERATING and e.step >= 5 for e in events):
        assert time.monotonic() < deadline and not job.done()
        await asyncio.sleep(0.05)
    victim = next(e.message for e in reversed(events) if e.phase is Phase.GENERATING)
    victim = victim.removeprefix("on ")
    assert victim in site.workers
    site.workers[victim].kill()  # SIGKILL, diffusion subprocess included

    images = await asyncio.wait_for(job, 90)

    survivor = ({"gpu-a", "gpu-b"} - {victim}).pop()
    assert len(images) == 1 and images[0].details["worker"] == survivor
    after = completions(site) - before
    assert list(after.values()) == [1]  # completed once, not once per worker
    assert any("stopped responding" in e.message for e in events)


async def test_sigterm_stops_an_idle_worker_cleanly(site: Site, remote: RemoteProvider) -> None:
    alive = [w for w in site.workers.values() if w.process.poll() is None]
    assert alive
    worker = alive[0]

    code = worker.terminate()

    assert code == 0, worker.output()
    health = await remote.health()
    assert health.details.get("workers", "0") == str(len(alive) - 1)
