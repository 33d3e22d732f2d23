"""Runs the real engine over a profile's queue until it is empty; the kill test
SIGKILLs it at random moments. The provider is scripted and quick, so kills land
in every phase: routing, generating, writing files, committing."""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

from desktop_app.engine.engine import Engine
from desktop_app.engine.saving import ImageSaver
from desktop_app.engine.slots import ProviderSlot
from desktop_app.resilience.breaker import BreakerConfig, CircuitBreaker
from desktop_app.resilience.clock import SystemClock
from desktop_app.resilience.cooldown import CooldownGate
from desktop_app.store.database import open_database
from desktop_app.store.gallery import Gallery
from desktop_app.store.jobs import JobQueue
from desktop_app.store.metrics import MetricsStore
from tests.fakes.scripted_provider import ScriptedProvider


def build(home: Path) -> Engine:
    conn = open_database(home / "imagedesk.sqlite3")
    clock = SystemClock()
    provider = ScriptedProvider("local", script=["slow:0.02"] * 10_000)
    slot = ProviderSlot(provider=provider,
                        breaker=CircuitBreaker("local", BreakerConfig.local_gpu(), clock),
                        gate=CooldownGate(clock), concurrency=2)
    return Engine(queue=JobQueue(conn), gallery=Gallery(conn), metrics_store=MetricsStore(conn),
                  saver=ImageSaver(home / "gallery", home / "thumbs"), slots=[slot],
                  rng=random.Random())


async def main(home: Path) -> None:
    engine = build(home)
    print("ready", flush=True)
    await engine.run_until_idle()
    await engine.close()
    print("idle", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
