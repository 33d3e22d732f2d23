"""What the API's tests share: the token, and an engine on a temporary store."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

from desktop_app.domain.image_work import RequestKind
from desktop_app.engine.engine import Engine
from desktop_app.engine.saving import ImageSaver
from desktop_app.engine.slots import ProviderSlot
from desktop_app.resilience.breaker import BreakerConfig, CircuitBreaker
from desktop_app.resilience.clock import SystemClock
from desktop_app.resilience.cooldown import CooldownGate
from desktop_app.resilience.retry import RetryPolicy
from desktop_app.store.database import open_database
from desktop_app.store.gallery import Gallery
from desktop_app.store.input_images import InputImages
from desktop_app.store.jobs import JobQueue
from desktop_app.store.metrics import MetricsStore
from tests.fakes.scripted_provider import ScriptedProvider

TOKEN = "test-token-0123456789abcdef"


def slot(provider: ScriptedProvider, priority: int) -> ProviderSlot:
    clock = SystemClock()
    return ProviderSlot(provider=provider,
                        breaker=CircuitBreaker(provider.name, BreakerConfig.local_gpu(), clock),
                        gate=CooldownGate(clock), retry=RetryPolicy(max_attempts=1),
                        priority=priority, concurrency=4)


def make_engine(tmp_path: Path, *providers: ScriptedProvider) -> Engine:
    conn = open_database(tmp_path / "imagedesk.sqlite3")
    return Engine(queue=JobQueue(conn), gallery=Gallery(conn), metrics_store=MetricsStore(conn),
                  saver=ImageSaver(tmp_path / "gallery", tmp_path / "thumbs"),
                  slots=[slot(p, i * 10) for i, p in enumerate(providers)],
                  rng=random.Random(3), inputs=InputImages(tmp_path / "inputs"))


def image_provider(name: str = "local", **kw: object) -> ScriptedProvider:
    """A scripted local provider that serves every kind of job (img2img, inpaint...)."""
    provider = ScriptedProvider(name, **kw)  # type: ignore[arg-type]
    provider.caps = dataclasses.replace(provider.caps, kinds=frozenset(RequestKind))
    return provider
