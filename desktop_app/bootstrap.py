"""Putting the app together: settings, paths, keys, store and providers into one
``Engine``. Both faces (the window and the CLI) start here, so they run the
same engine with the same rules."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping

from desktop_app.config import AppPaths, Settings, gallery_folder, load_settings, save_settings
from desktop_app.config.model import ProviderSettings
from desktop_app.engine.budget import Budget
from desktop_app.engine.nsfw import NsfwMode, NsfwSettings
from desktop_app.engine.runner import RunnerSettings
from desktop_app.engine.saving import ImageSaver
from desktop_app.engine.service import Engine
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers import registry
from desktop_app.providers.base import ImageProvider, ProviderKind
from desktop_app.resilience.breaker import BreakerConfig, CircuitBreaker
from desktop_app.resilience.clock import Clock, SystemClock
from desktop_app.resilience.cooldown import CooldownGate
from desktop_app.resilience.rate_limit import ProviderRateLimiter, RateSpec, RateStrategy
from desktop_app.resilience.retry import RetryPolicy
from desktop_app.secrets import KeyringUnavailable, KeyStore
from desktop_app.store.database import open_database
from desktop_app.store.gallery import Gallery
from desktop_app.store.jobs import JobQueue
from desktop_app.store.metrics import MetricsStore

log = logging.getLogger(__name__)


@dataclasses.dataclass
class AppContext:
    settings: Settings
    paths: AppPaths
    keys: KeyStore
    engine: Engine
    warnings: list[str]  # to show the user once (e.g. a corrupt settings file was set aside)


def open_app(env: Mapping[str, str] = os.environ, *, clock: Clock | None = None) -> AppContext:
    """Load settings, open the store and build the engine (not started yet)."""
    paths = AppPaths.discover(env).ensure()
    loaded = load_settings(paths.settings_path, env)
    settings = loaded.settings
    keys = KeyStore(env=env)
    clock = clock or SystemClock()
    conn = open_database(paths.db_path)
    saver = ImageSaver(gallery_folder(settings, paths), paths.thumbs_dir)
    engine = Engine(
        queue=JobQueue(conn), gallery=Gallery(conn), metrics_store=MetricsStore(conn),
        saver=saver, slots=build_slots(settings, paths, keys, clock), clock=clock,
        runner_settings=runner_settings(settings), budget=budget(settings),
        blocked_terms=settings.content.blocked_terms, nsfw=nsfw_settings(settings),
    )
    return AppContext(settings, paths, keys, engine, list(loaded.warnings))


async def apply_settings(ctx: AppContext, new: Settings) -> None:
    """Save new settings and rebuild what they shape. A provider whose settings
    changed gets a fresh slot, so a forced-open breaker from a misconfiguration
    closes again and the next job tries it."""
    save_settings(new, ctx.paths.settings_path)
    old, ctx.settings = ctx.settings, new
    changed = {name for name in ("local", "openai", "remote")
               if getattr(old, name) != getattr(new, name)}
    fresh = build_slots(new, ctx.paths, ctx.keys, ctx.engine.clock)
    current = {s.name: s for s in ctx.engine.slots}
    slots = [f if f.name in changed or f.name not in current else current[f.name]
             for f in fresh]
    for unused in (f for f in fresh if f not in slots):
        await unused.provider.close()
        if unused.limiter is not None:
            await unused.limiter.close()
    await ctx.engine.replace_slots(slots)
    ctx.engine.budget = budget(new)
    ctx.engine.blocked_terms = list(new.content.blocked_terms)
    ctx.engine.nsfw = nsfw_settings(new)
    ctx.engine.runner_settings = runner_settings(new)
    ctx.engine.saver.folder = gallery_folder(new, ctx.paths)


def runner_settings(settings: Settings) -> RunnerSettings:
    enabled = [s for s in (settings.local, settings.openai, settings.remote) if s.enabled]
    return RunnerSettings(
        job_deadline_s=settings.routing.job_deadline_s,
        max_parallel_jobs=max(1, sum(s.concurrency for s in enabled)),
        cpu_after_cloud=settings.routing.cpu_after_cloud,
    )


def nsfw_settings(settings: Settings) -> NsfwSettings:
    return NsfwSettings(NsfwMode(settings.content.nsfw_check),
                        max(0.01, settings.content.nsfw_threshold))


def budget(settings: Settings) -> Budget:
    return Budget(daily_usd=settings.budget.daily_usd, monthly_usd=settings.budget.monthly_usd)


def build_slots(settings: Settings, paths: AppPaths, keys: KeyStore,
                clock: Clock) -> list[ProviderSlot]:
    local = settings.local
    providers: list[tuple[ImageProvider, ProviderSettings]] = [
        (registry.create_local(registry.LocalDiffusionConfig(
            data_dir=paths.data_dir, model=local.model, device=local.device,
            allow_cpu=local.allow_cpu, attention_slicing=local.attention_slicing,
            vae_tiling=local.vae_tiling, cpu_offload=local.cpu_offload,
            scheduler=local.scheduler, idle_shutdown_s=local.idle_shutdown_s,
            allow_download=local.allow_download)), local),
        (registry.create_openai(registry.OpenAIImagesConfig(
            model=settings.openai.model, base_url=settings.openai.base_url,
            organization=settings.openai.organization, project=settings.openai.project,
            timeout_s=settings.openai.timeout_s, deadline_s=settings.openai.deadline_s,
            stream_previews=settings.openai.stream_previews),
            lambda: _key(keys, "openai")), settings.openai),
    ]
    remote = settings.remote
    if remote.enabled:  # bullmq and redis load only for users who run workers
        providers.append((registry.create_remote(registry.RemoteConfig(
            redis_url=remote.redis_url, queue=remote.queue,
            transport=registry.Transport(remote.transport), shared_folder=remote.shared_folder,
            no_worker_grace_s=remote.no_worker_grace_s), lambda: _key(keys, "remote")), remote))
    routing = settings.routing
    retry = RetryPolicy(max_attempts=routing.retry_max_attempts, base_s=routing.retry_base_s,
                        max_s=routing.retry_max_s)
    slots = [_slot(provider, section, paths, clock, retry) for provider, section in providers]
    for slot in slots:
        if slot.name == "remote":
            if remote.placement == "before_local":
                slot.priority = min(remote.priority, local.priority - 1)
            else:
                slot.priority = max(remote.priority, local.priority + 1)
            if remote.placement == "when_local_busy":
                slot.standby_for = ProviderKind.LOCAL
    return slots


def _slot(provider: ImageProvider, section: ProviderSettings, paths: AppPaths, clock: Clock,
          retry: RetryPolicy) -> ProviderSlot:
    limiter = None
    if section.rate_limits:
        limiter = ProviderRateLimiter(
            provider.name, [RateSpec(r.limit, r.period_s) for r in section.rate_limits],
            db_path=paths.data_dir / "rate_limits.sqlite3", clock=clock,
            strategy=RateStrategy(section.rate_strategy))
    return ProviderSlot(
        provider=provider,
        breaker=CircuitBreaker(provider.name, BreakerConfig(**section.breaker.model_dump()),
                               clock),
        gate=CooldownGate(clock), limiter=limiter, retry=retry, priority=section.priority,
        enabled=section.enabled, concurrency=section.concurrency,
    )


def _key(keys: KeyStore, provider: str) -> str | None:
    try:
        return keys.get(provider)
    except KeyringUnavailable as error:
        log.info("%s key unavailable: %s", provider, error)
        return None
