"""The real ``Engine`` on a temporary profile folder, with scripted providers in its
slots: real SQLite, real image files, the real runner and event hub. Tests of the
engine and of the window use it instead of a stand-in that could drift from
``Engine``."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from desktop_app.engine.budget import Budget
from desktop_app.engine.engine import Engine
from desktop_app.engine.nsfw import NsfwSettings, Scorer
from desktop_app.engine.runner import RunnerSettings
from desktop_app.engine.saving import ImageSaver
from desktop_app.engine.slots import ProviderSlot
from desktop_app.resilience.breaker import BreakerConfig, CircuitBreaker
from desktop_app.resilience.clock import Clock, SystemClock
from desktop_app.resilience.cooldown import CooldownGate
from desktop_app.resilience.retry import RetryPolicy
from desktop_app.store.database import open_database
from desktop_app.store.gallery import Gallery
from desktop_app.store.input_images import InputImages
from desktop_app.store.jobs import JobQueue
from desktop_app.store.metrics import MetricsStore
from desktop_app.store.profile_lock import ProfileLock
from tests.fakes.scripted_provider import ScriptedProvider

DB_NAME = "imagedesk.sqlite3"


def scripted_slot(provider: ScriptedProvider, priority: int, *,
                  clock: Clock | None = None, concurrency: int = 2) -> ProviderSlot:
    """A slot as bootstrap builds one, without retries (a scripted error is final)."""
    clock = clock or SystemClock()
    return ProviderSlot(provider=provider,
                        breaker=CircuitBreaker(provider.name, BreakerConfig.local_gpu(), clock),
                        gate=CooldownGate(clock), retry=RetryPolicy(max_attempts=1),
                        priority=priority, concurrency=concurrency)


def scripted_engine(
    folder: Path,
    *providers: ScriptedProvider,
    budget: Budget | None = None,
    blocked_terms: Sequence[str] = (),
    nsfw: NsfwSettings | None = None,
    nsfw_scorer: Scorer | None = None,
    lock: ProfileLock | None = None,
    inputs: InputImages | None = None,
    runner_settings: RunnerSettings | None = None,
) -> Engine:
    """An engine whose store is ``folder/imagedesk.sqlite3`` and whose images go to
    ``folder/gallery``; providers are ranked in the order given. The caller closes it."""
    folder.mkdir(parents=True, exist_ok=True)
    conn = open_database(folder / DB_NAME)
    return Engine(queue=JobQueue(conn), gallery=Gallery(conn), metrics_store=MetricsStore(conn),
                  saver=ImageSaver(folder / "gallery", folder / "thumbs"),
                  slots=[scripted_slot(p, i * 10) for i, p in enumerate(providers)],
                  rng=random.Random(3), budget=budget, blocked_terms=blocked_terms,
                  nsfw=nsfw, nsfw_scorer=nsfw_scorer, lock=lock, inputs=inputs,
                  runner_settings=runner_settings)
