"""Putting the app together: settings, paths, keys, store and providers into one
``Engine``. Both faces (the window and the CLI) start here, so they run the
same engine with the same rules."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import threading
from collections.abc import Iterable, Mapping

from desktop_app.config import (
    AppPaths,
    Settings,
    SettingsProblem,
    gallery_folder,
    load_settings,
    save_settings,
)
from desktop_app.config.model import ProviderSettings
from desktop_app.domain.errors import ImageDeskError
from desktop_app.engine.budget import Budget
from desktop_app.engine.engine import Engine, EngineConfig
from desktop_app.engine.nsfw import NsfwMode, NsfwSettings
from desktop_app.engine.runner import RunnerSettings
from desktop_app.engine.saving import ImageSaver
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers import registry
from desktop_app.providers.base import (
    ConnectionOutcome,
    ConnectionReport,
    ImageProvider,
    ProviderKind,
)
from desktop_app.providers.descriptor import BuildContext
from desktop_app.resilience.breaker import BreakerConfig, CircuitBreaker
from desktop_app.resilience.clock import Clock, SystemClock
from desktop_app.resilience.cooldown import CooldownGate
from desktop_app.resilience.rate_limit import ProviderRateLimiter, RateSpec, RateStrategy
from desktop_app.resilience.retry import RetryPolicy
from desktop_app.secrets import KeyringUnavailable, KeyStore
from desktop_app.store.database import open_database
from desktop_app.store.gallery import Gallery
from desktop_app.store.input_images import InputImages
from desktop_app.store.jobs import JobQueue
from desktop_app.store.metrics import MetricsStore
from desktop_app.store.profile_lock import LOCK_FILE, ProfileLock
from desktop_app.store.styles import StyleLibrary
from desktop_app.store.wildcards import WildcardFolder

log = logging.getLogger(__name__)


class KeyCache:
    """Provider keys as the providers see them, read from ``KeyStore`` at most once
    per provider until ``clear()``.

    ``OpenAIImagesProvider.health()`` asks for its key before every job and status
    refresh, on the event loop (Qt's thread in the window); a keyring read is a
    D-Bus round trip, or an unlock prompt, each time. A missing key and an
    unusable keyring are cached too (as ``None``): asking again finds the same.
    Whoever stores or deletes a key calls ``clear()`` (``apply_settings`` does).
    ``warm_keys`` fills the cache off the loop at start.

    Thread-safe: ``warm_keys`` reads in a worker thread while the loop may ask;
    a provider's key is read once even then, and a read that was under way when
    ``clear()`` ran is returned to its caller but not kept.
    """

    def __init__(self, keys: KeyStore, typed: Mapping[str, str] | None = None) -> None:
        self.keys = keys
        self._lock = threading.Lock()
        # ``typed``: keys typed in a dialog but not stored yet (a connection test)
        self._typed = dict(typed or {})
        self._values: dict[str, str | None] = dict(self._typed)
        self._reading: dict[str, threading.Lock] = {}
        self._generation = 0

    def get(self, provider: str) -> str | None:
        with self._lock:
            if provider in self._values:
                return self._values[provider]
            reading = self._reading.setdefault(provider, threading.Lock())
        with reading:  # a second asker waits for the first read instead of repeating it
            with self._lock:
                if provider in self._values:
                    return self._values[provider]
                generation = self._generation
            value = _key(self.keys, provider)
            with self._lock:
                if generation == self._generation:
                    self._values[provider] = value
            return value

    def warm(self, providers: Iterable[str]) -> None:
        """Read these providers' keys now (blocking: call it in a thread)."""
        for provider in providers:
            self.get(provider)

    def clear(self) -> None:
        """Forget every key: the next ``get`` reads the store again."""
        with self._lock:
            self._values = dict(self._typed)
            self._generation += 1


@dataclasses.dataclass
class AppContext:
    settings: Settings
    paths: AppPaths
    keys: KeyStore
    engine: Engine
    warnings: list[str]  # to show the user once (the settings problems, as sentences)
    key_cache: KeyCache  # what the providers read; clear it after storing or deleting a key

    @property
    def settings_problems(self) -> list[SettingsProblem]:
        """What is wrong with the settings in use, typed; shown on every start until fixed."""
        return self.settings.problems()


def open_app(env: Mapping[str, str] = os.environ, *, clock: Clock | None = None) -> AppContext:
    """Load settings, open the store and build the engine (not started yet)."""
    paths = AppPaths.discover(env).ensure()
    loaded = load_settings(paths.settings_path, env)
    settings = loaded.settings
    keys = KeyStore(env=env)
    clock = clock or SystemClock()
    key_cache = KeyCache(keys)
    conn = open_database(paths.db_path)
    saver = ImageSaver(gallery_folder(settings, paths), paths.thumbs_dir,
                       paths.data_dir / "unsaved", quality=settings.output.quality)
    engine = Engine(
        queue=JobQueue(conn), gallery=Gallery(conn), metrics_store=MetricsStore(conn),
        saver=saver, slots=build_slots(settings, paths, key_cache, clock), clock=clock,
        runner_settings=runner_settings(settings), budget=budget(settings),
        blocked_terms=settings.content.blocked_terms, nsfw=nsfw_settings(settings),
        private_terms=settings.content.private_terms,
        private_folders=settings.content.private_folders,
        lock=ProfileLock(paths.data_dir / LOCK_FILE), inputs=InputImages(paths.inputs_dir),
        wildcards=WildcardFolder(paths.wildcards_dir), styles=StyleLibrary(paths.styles_path),
    )
    return AppContext(settings, paths, keys, engine, list(loaded.warnings), key_cache)


async def warm_keys(ctx: AppContext) -> None:
    """Read the enabled providers' keys into ``ctx.key_cache`` in a worker thread,
    so the first job or status refresh does not wait on the keyring on the loop.
    Call it once the context is open (before ``engine.start()`` is best)."""
    wanted = [d.name for d in registry.with_keys() if d.section(ctx.settings).enabled]
    await asyncio.to_thread(ctx.key_cache.warm, wanted)


async def apply_settings(ctx: AppContext, new: Settings) -> None:
    """Save new settings and rebuild what they shape. A provider whose settings
    changed gets a fresh slot, so a forced-open breaker from a misconfiguration
    closes again and the next job tries it."""
    ctx.key_cache.clear()  # first: the dialog stores a key before it calls us
    save_settings(new, ctx.paths.settings_path)
    old, ctx.settings = ctx.settings, new
    changed = {d.name for d in registry.descriptors() if d.section(old) != d.section(new)}
    if old.cloud_off_reason() != new.cloud_off_reason():  # the hold on paid providers moved
        changed |= {d.name for d in registry.descriptors() if d.kind is not ProviderKind.LOCAL}
    fresh = build_slots(new, ctx.paths, ctx.key_cache, ctx.engine.clock)
    current = {s.name: s for s in ctx.engine.slots}
    slots = [f if f.name in changed or f.name not in current else current[f.name]
             for f in fresh]
    for kept, built in zip(slots, fresh, strict=True):
        kept.priority, kept.standby_for = built.priority, built.standby_for  # placement
    for unused in (f for f in fresh if f not in slots):
        await unused.provider.close()
        if unused.limiter is not None:
            await unused.limiter.close()
    await ctx.engine.apply(EngineConfig(
        slots=slots, runner=runner_settings(new), budget=budget(new),
        blocked_terms=tuple(new.content.blocked_terms), nsfw=nsfw_settings(new),
        private_terms=tuple(new.content.private_terms),
        private_folders=tuple(new.content.private_folders),
        gallery_folder=gallery_folder(new, ctx.paths), output_quality=new.output.quality))


async def run_connection_test(ctx: AppContext, name: str, settings: Settings,
                          typed_key: str | None = None) -> ConnectionReport:
    """Build provider ``name`` from ``settings`` as edited (with a key typed but
    not stored yet, if any) beside the running one, actually try it, close it."""
    descriptor = registry.get(name)
    typed = {name: typed_key.strip()} if typed_key and typed_key.strip() else None
    [slot] = build_slots(settings, ctx.paths, KeyCache(ctx.keys, typed), ctx.engine.clock,
                         only=name)
    try:
        return await descriptor.test_connection(slot.provider)
    except ImageDeskError as error:
        return ConnectionReport(name, ConnectionOutcome.FAILED, error.message)
    finally:
        await slot.provider.close()
        if slot.limiter is not None:
            await slot.limiter.close()


def runner_settings(settings: Settings) -> RunnerSettings:
    sections = (d.section(settings) for d in registry.descriptors())
    enabled = [s for s in sections if s.enabled]
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


def build_slots(settings: Settings, paths: AppPaths, keys: KeyCache | KeyStore,
                clock: Clock, only: str | None = None) -> list[ProviderSlot]:
    """The provider slots for ``settings``, one per registered provider (``only``:
    just that one). Given a bare ``KeyStore`` (a settings dialog's connection
    test), the slots get a cache of their own."""
    cache = keys if isinstance(keys, KeyCache) else KeyCache(keys)
    routing = settings.routing
    retry = RetryPolicy(max_attempts=routing.retry_max_attempts, base_s=routing.retry_base_s,
                        max_s=routing.retry_max_s)
    slots = []
    for descriptor in registry.descriptors():
        section = descriptor.section(settings)
        if only is not None and descriptor.name != only:
            continue
        if not section.enabled and not descriptor.build_when_disabled and only is None:
            continue
        context = BuildContext(settings, paths.data_dir,
                               functools.partial(cache.get, descriptor.name))
        slot = _slot(descriptor.create(section, context), section, paths, clock, retry)
        place = descriptor.place(section, settings)
        slot.priority, slot.standby_for = place.priority, place.standby_for
        slots.append(slot)
    held = settings.cloud_off_reason()  # a money or privacy guard could not be read
    for slot in slots:
        if held is not None and slot.kind is not ProviderKind.LOCAL:
            slot.enabled, slot.off_reason = False, held
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
