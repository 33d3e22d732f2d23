"""The route preview's quote: the order, seconds and dollars a user sees before a job
runs, from measured history where there is enough of it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from desktop_app.domain.errors import OutOfMemory
from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest, RouteStrategy, RoutingPolicy
from desktop_app.engine.engine import Engine
from desktop_app.providers.base import ProviderKind
from desktop_app.resilience.breaker import BreakerConfig
from desktop_app.store.database import open_database
from desktop_app.store.metrics import MetricsStore
from tests.fakes.scripted_engine import DB_NAME, engine_in, slot_for
from tests.fakes.scripted_provider import ScriptedProvider

REQ = GenerationRequest("a lighthouse", width=64, height=64, n=2)
EngineMaker = Callable[..., tuple[Engine, MetricsStore]]


@pytest.fixture
async def make_engine(tmp_path: Path) -> AsyncIterator[EngineMaker]:
    engines: list[Engine] = []

    def make(*providers: ScriptedProvider) -> tuple[Engine, MetricsStore]:
        engine = engine_in(tmp_path, [slot_for(p, i * 10, breaker=BreakerConfig(), concurrency=1)
                                      for i, p in enumerate(providers)], rng=random.Random(1))
        engines.append(engine)
        # the profile's metrics as earlier sessions left them (this test writes history)
        return engine, MetricsStore(open_database(tmp_path / DB_NAME))

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
    assert measured.basis == "measured: median of 4 calls in 7 days"
    assert measured.success_rate == pytest.approx(0.5)
    # about a minute a call, and half the calls fail: about two minutes to an image
    assert 80 < measured.seconds < 180


async def test_skipped_providers_come_with_their_reasons(make_engine: EngineMaker) -> None:
    engine, _ = make_engine(local(), cloud())
    quote = await engine.route_quote(REQ.replace(policy=RoutingPolicy(private=True)))
    assert [c.provider for c in quote.candidates] == ["local"]
    assert dict(quote.skipped)["openai"] == "this job is private: it never leaves this machine"
    assert quote.to_dict()["summary"] == "local (~6 s, free)"


def policy(strategy: RouteStrategy, **kw: float) -> GenerationRequest:
    return REQ.replace(policy=RoutingPolicy(strategy=strategy, **kw))  # type: ignore[arg-type]


async def order(engine: Engine, request: GenerationRequest) -> list[str]:
    return [c.provider for c in (await engine.route_quote(request)).candidates]


async def test_cheapest_within_a_target_takes_the_free_slow_one_only_when_time_allows(
        make_engine: EngineMaker) -> None:
    engine, _ = make_engine(local(latency_s=60.0), cloud())
    assert await order(engine, policy(RouteStrategy.CHEAPEST, target_s=120)) == [
        "local", "openai"]
    assert await order(engine, policy(RouteStrategy.CHEAPEST, target_s=30)) == [
        "openai", "local"]
    # and the job really runs where the plan says
    job = await engine.submit(policy(RouteStrategy.CHEAPEST, target_s=30))
    await engine.run_until_idle()
    done = await engine.job(job.id)
    assert done is not None and done.state is JobState.SUCCEEDED and done.provider == "openai"


async def test_a_cost_cap_skips_a_provider_that_would_cost_more_even_when_local_fails(
        make_engine: EngineMaker) -> None:
    failing = local()
    failing.script = [OutOfMemory("CUDA out of memory")]
    engine, _ = make_engine(failing, cloud(price=0.04))
    request = policy(RouteStrategy.FASTEST, max_cost_usd=0.05)  # 2 images: $0.08
    quote = await engine.route_quote(request)
    assert [c.provider for c in quote.candidates] == ["local"]
    assert dict(quote.skipped)["openai"] == ("could cost up to $0.08, over this job's cap "
                                             "of $0.05")
    job = await engine.submit(request)
    await engine.run_until_idle()
    done = await engine.job(job.id)
    assert done is not None and done.state is JobState.FAILED
    assert not any(a.provider == "openai" and a.outcome.value != "skipped"
                   for a in done.attempts)
    assert await order(engine, policy(RouteStrategy.FASTEST)) == ["openai", "local"]


async def test_a_provider_whose_recent_median_tripled_ranks_lower_before_its_breaker_opens(
        make_engine: EngineMaker) -> None:
    gpu_a, gpu_b = local(), ScriptedProvider("workers", ProviderKind.REMOTE)
    engine, metrics = make_engine(gpu_a, gpu_b)
    today = dt.date.today().isoformat()
    for _ in range(5):  # the last days: a 10 s, b 15 s
        metrics.record("local", today, successes=1, latency_s=10.0)
        metrics.record("workers", today, successes=1, latency_s=15.0)
    assert await order(engine, policy(RouteStrategy.FASTEST)) == ["local", "workers"]
    for _ in range(3):  # today local has turned slow: 30 s a call
        engine.metrics.record_success("local", 30.0, images=1, cost_usd=0.0)
    assert await order(engine, policy(RouteStrategy.FASTEST)) == ["workers", "local"]
    assert await order(engine, REQ) == ["local", "workers"]  # prefer-local keeps its order


async def test_balanced_weighs_time_against_money(make_engine: EngineMaker) -> None:
    engine, _ = make_engine(local(latency_s=60.0), cloud(price=0.04))
    # local: 60 s; openai: 20 s + 300 s/$ x $0.08 = 44 s
    assert await order(engine, policy(RouteStrategy.BALANCED)) == ["openai", "local"]
    engine2, _ = make_engine(local(latency_s=30.0), cloud(price=0.04))
    assert await order(engine2, policy(RouteStrategy.BALANCED)) == ["local", "openai"]


async def test_estimates_follow_the_size_of_the_image_asked_for(
        make_engine: EngineMaker) -> None:
    engine, _ = make_engine(local(), cloud())
    for _ in range(3):  # small images take 5 s here, large ones 40 s
        engine.metrics.record_success("local", 5.0, 1, 0.0, pixels=512 * 512)
        engine.metrics.record_success("local", 40.0, 1, 0.0, pixels=1024 * 1024)
    one = REQ.replace(n=1)
    small = (await engine.route_quote(one.replace(width=512, height=512))).candidates[0]
    large = (await engine.route_quote(one.replace(width=1024, height=1024))).candidates[0]
    assert small.basis == large.basis == "measured: median of the last 3 calls at this size"
    assert small.seconds == pytest.approx(5.0) and large.seconds == pytest.approx(40.0)


async def test_a_quote_starts_no_worker_and_calls_no_provider(tmp_path: Path) -> None:
    from desktop_app.bootstrap import open_app
    from tests.fakes.fake_openai import FakeOpenAI

    key = "sk-test-" + "z" * 32
    with FakeOpenAI(api_key=key) as server:
        ctx = open_app({"IMAGEDESK_HOME": str(tmp_path), "OPENAI_API_KEY": key,
                        "IMAGEDESK_OPENAI__BASE_URL": server.base_url,
                        "IMAGEDESK_LOCAL__MODEL": "builtin:tiny"})
        try:
            quote = await ctx.engine.route_quote(REQ)
            assert {c.provider for c in quote.candidates} >= {"local", "openai"}
            local = await ctx.engine.slot("local").provider.health()
            assert local.details["worker"] == "not started"
            assert server.request_count == 0
        finally:
            await ctx.engine.close()
