"""The real ``Engine`` on a temporary profile folder: real SQLite, real image files,
the real runner and event hub. Every test that needs an engine builds it here
(``engine_in`` for any slots, ``scripted_engine`` for scripted providers), so a
change to how an engine is put together changes one place, not a dozen test
setups that would go on testing the old wiring; ``test_engine_builder.py`` fails
when ``Engine`` gains an option this builder does not pass on."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from desktop_app.domain.job import Job
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.budget import Budget
from desktop_app.engine.engine import Engine
from desktop_app.engine.events import EventHub
from desktop_app.engine.nsfw import NsfwSettings, Scorer
from desktop_app.engine.runner import RunnerSettings
from desktop_app.engine.saving import ImageSaver
from desktop_app.engine.slots import ProviderSlot
from desktop_app.engine.store_thread import StoreThread
from desktop_app.providers.base import ImageProvider
from desktop_app.resilience.breaker import BreakerConfig, CircuitBreaker
from desktop_app.resilience.clock import Clock, SystemClock
from desktop_app.resilience.cooldown import CooldownGate
from desktop_app.resilience.rate_limit import ProviderRateLimiter
from desktop_app.resilience.retry import RetryPolicy
from desktop_app.store.database import open_database
from desktop_app.store.gallery import Gallery
from desktop_app.store.input_images import InputImages
from desktop_app.store.jobs import JobQueue
from desktop_app.store.metrics import MetricsStore
from desktop_app.store.profile_lock import ProfileLock
from desktop_app.store.styles import StyleLibrary
from desktop_app.store.wildcards import WildcardFolder
from tests.fakes.scripted_provider import ScriptedProvider

DB_NAME = "imagedesk.sqlite3"


def slot_for(provider: ImageProvider, priority: int = 0, *, clock: Clock | None = None,
             breaker: BreakerConfig | None = None, retry: RetryPolicy | None = None,
             limiter: ProviderRateLimiter | None = None, concurrency: int = 2,
             enabled: bool = True) -> ProviderSlot:
    """A slot as bootstrap builds one; by default a local GPU's breaker and no
    retries (a scripted error is final)."""
    clock = clock or SystemClock()
    return ProviderSlot(provider=provider,
                        breaker=CircuitBreaker(provider.name,
                                               breaker or BreakerConfig.local_gpu(), clock),
                        gate=CooldownGate(clock), limiter=limiter,
                        retry=retry or RetryPolicy(max_attempts=1), priority=priority,
                        concurrency=concurrency, enabled=enabled)


def scripted_slot(provider: ScriptedProvider, priority: int, *,
                  clock: Clock | None = None, concurrency: int = 2) -> ProviderSlot:
    return slot_for(provider, priority, clock=clock, concurrency=concurrency)


def engine_in(
    folder: Path,
    slots: Sequence[ProviderSlot],
    *,
    db_path: Path | None = None,
    store: StoreThread | None = None,
    hub: EventHub | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    runner_settings: RunnerSettings | None = None,
    budget: Budget | None = None,
    blocked_terms: Sequence[str] = (),
    private_terms: Sequence[str] = (),
    private_folders: Sequence[Path] = (),
    nsfw: NsfwSettings | None = None,
    nsfw_scorer: Scorer | None = None,
    lock: ProfileLock | None = None,
    inputs: InputImages | None = None,
    wildcards: WildcardFolder | None = None,
    styles: StyleLibrary | None = None,
) -> Engine:
    """An engine whose store is ``db_path`` (default ``folder/imagedesk.sqlite3``) and
    whose images go to ``folder/gallery``. The caller closes it."""
    folder.mkdir(parents=True, exist_ok=True)
    conn = open_database(db_path or folder / DB_NAME)
    return Engine(queue=JobQueue(conn), gallery=Gallery(conn), metrics_store=MetricsStore(conn),
                  saver=ImageSaver(folder / "gallery", folder / "thumbs"), slots=slots,
                  store=store, hub=hub, clock=clock, rng=rng or random.Random(3),
                  runner_settings=runner_settings, budget=budget, blocked_terms=blocked_terms,
                  private_terms=private_terms, private_folders=private_folders, nsfw=nsfw,
                  nsfw_scorer=nsfw_scorer, lock=lock, inputs=inputs, wildcards=wildcards,
                  styles=styles)


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
    """``engine_in`` with one slot per scripted provider, ranked in the order given."""
    return engine_in(folder, [scripted_slot(p, i * 10) for i, p in enumerate(providers)],
                     budget=budget, blocked_terms=blocked_terms, nsfw=nsfw,
                     nsfw_scorer=nsfw_scorer, lock=lock, inputs=inputs,
                     runner_settings=runner_settings)


async def run_to_end(engine: Engine, request: GenerationRequest) -> Job:
    """Submit ``request``, run the queue until idle, and return the finished job."""
    job = await engine.submit(request)
    await engine.run_until_idle()
    done = await engine.job(job.id)
    assert done is not None and done.state.finished
    return done
