"""The route preview's quote: the order, seconds and dollars a user sees before a job
runs, from measured history where there is enough of it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from desktop_app.domain.request import GenerationRequest, RoutingPolicy
from desktop_app.engine.engine import Engine
from desktop_app.engine.saving import ImageSaver
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import ProviderKind
from desktop_app.resilience.breaker import BreakerConfig, CircuitBreaker
from desktop_app.resilience.clock import SystemClock
from desktop_app.resilience.cooldown import CooldownGate
from desktop_app.resilience.retry import RetryPolicy
from desktop_app.store.database import open_database
from desktop_app.store.gallery import Gallery
from desktop_app.store.jobs import JobQueue
from desktop_app.store.metrics import MetricsStore
from tests.fakes.scripted_provider import ScriptedProvider

REQ = GenerationRequest("a lighthouse", width=64, height=64, n=2)
EngineMaker = Callable[..., tuple[Engine, MetricsStore]]


@pytest.fixture
async def make_engine(tmp_path: Path) -> AsyncIterator[EngineMaker]:
    engines: list[Engine] = []

    def make(*providers: ScriptedProvider) -> tuple[Engine, MetricsStore]:
        conn = open_database(tmp_path / "imagedesk.sqlite3")
        clock = SystemClock()
        slots = [ProviderSlot(provider=p, breaker=CircuitBreaker(p.name, BreakerConfig(), clock),
                              gate=CooldownGate(clock), retry=RetryPolicy(max_attempts=1),
                              priority=i * 10) for i, p in enumerate(providers)]
        metrics = MetricsStore(conn)
        engine = Engine(queue=JobQueue(conn), gallery=Gallery(conn), metrics_store=metrics,
                        saver=ImageSaver(tmp_path / "g", tmp_path / "t"), slots=slots,
                        rng=random.Random(1))
        engines.append(engine)
        return engine, metrics

    yield make
    for engine in engines:
        await engine.close()


def local(latency_s: float = 6.0) -> ScriptedProvider:
    provider = ScriptedProvider("local")
    provider.caps = dataclasses.replace(provider.caps, estimated_latency_s=latency_s)
    return provider


def cloud(price: float = 0.04) -> ScriptedProvider:
    provider = ScriptedProvider("openai", ProviderKind.CLOUD, cost_per_image=price)
    provider.caps = dataclasses.replace(provider.caps, estimated_latency_s=20.0)
    return provider


async def test_the_quote_names_the_order_with_declared_seconds_and_dollars(
        make_engine: EngineMaker) -> None:
    engine, _ = make_engine(local(), cloud())
    quote = await engine.route_quote(REQ)
    assert [c.provider for c in quote.candidates] == ["local", "openai"]
    assert quote.line() == "local (~6 s, free) → openai if it fails (~20 s, $0.08)"
    assert quote.candidates[1].basis == "declared by the provider"
    assert await engine.jobs() == []  # nothing queued


async def test_measured_history_replaces_the_declared_time_and_shows_failures(
        make_engine: EngineMaker) -> None:
    engine, metrics = make_engine(local(), cloud())
    today = dt.date.today().isoformat()
    for _ in range(4):
        metrics.record("local", today, successes=1, latency_s=60.0)
    metrics.record("local", today, failures_by_class={"OutOfMemory": 4})
    quote = await engine.route_quote(REQ)
    measured = quote.candidates[0]
    assert 40 < measured.seconds < 90 and measured.basis == "measured: median of 4 calls"
    assert measured.success_rate == pytest.approx(0.5)


async def test_skipped_providers_come_with_their_reasons(make_engine: EngineMaker) -> None:
    engine, _ = make_engine(local(), cloud())
    quote = await engine.route_quote(REQ.replace(policy=RoutingPolicy(private=True)))
    assert [c.provider for c in quote.candidates] == ["local"]
    assert dict(quote.skipped)["openai"] == "this job is private: it never leaves this machine"
    assert quote.to_dict()["summary"] == "local (~6 s, free)"
