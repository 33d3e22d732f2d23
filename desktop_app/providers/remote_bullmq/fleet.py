"""The workers serving a queue, as their heartbeats describe them.

Each worker keeps ``imagedesk:<queue>:worker:<id>`` alive (a JSON advert with
a TTL of a few heartbeats) and its id in ``imagedesk:<queue>:workers``. A
worker that dies simply stops refreshing its key; readers drop ids whose key
has expired. BullMQ's own ``Queue.get_workers`` (CLIENT LIST) also sees
workers, but cannot say what they can do, nor is CLIENT LIST allowed on every
managed Redis, so heartbeats are the source of truth here.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from desktop_app.providers.base import Capabilities
from desktop_app.providers.remote_bullmq.protocol import (
    Keys,
    WorkerAdvert,
    common_capabilities,
)


@dataclasses.dataclass(frozen=True)
class Fleet:
    workers: tuple[WorkerAdvert, ...]

    @property
    def alive(self) -> int:
        return len(self.workers)

    @property
    def ready(self) -> int:
        return sum(1 for w in self.workers if w.state in ("ready", "busy"))

    @property
    def busy(self) -> int:
        return sum(1 for w in self.workers if w.state == "busy")

    @property
    def avg_job_s(self) -> float | None:
        times = [w.avg_job_s for w in self.workers if w.avg_job_s]
        return sum(times) / len(times) if times else None

    def capabilities(self) -> Capabilities | None:
        each = []
        for worker in self.workers:
            try:
                each.append(worker.served_capabilities())
            except (TypeError, ValueError):
                continue  # an advert from another version: ignore its claims
        return common_capabilities(each)


async def read_fleet(client: Any, keys: Keys) -> Fleet:
    """The live workers; ids whose advert expired are removed from the set."""
    ids = sorted(await client.smembers(keys.workers))
    if not ids:
        return Fleet(())
    raw = await client.mget([keys.worker(i) for i in ids])
    adverts, gone = [], []
    for worker_id, text in zip(ids, raw, strict=True):
        advert = None
        if text is not None:
            try:
                advert = WorkerAdvert.from_data(json.loads(text))
            except ValueError:
                advert = None
        if advert is None:
            gone.append(worker_id)
        else:
            adverts.append(advert)
    if gone:
        await client.srem(keys.workers, *gone)
    return Fleet(tuple(adverts))


async def publish_advert(client: Any, keys: Keys, advert: WorkerAdvert, ttl_s: float) -> None:
    async with client.pipeline(transaction=True) as pipe:
        pipe.set(keys.worker(advert.worker_id), json.dumps(advert.to_data()),
                 px=max(1, int(ttl_s * 1000)))
        pipe.sadd(keys.workers, advert.worker_id)
        await pipe.execute()


async def withdraw_advert(client: Any, keys: Keys, worker_id: str) -> None:
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(keys.worker(worker_id))
        pipe.srem(keys.workers, worker_id)
        await pipe.execute()
