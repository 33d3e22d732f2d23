"""Rate limits delay, they don't fail: with scripted providers on a ``ManualClock``,
a job whose provider has no free slot waits for the next one (and says so),
unless another provider can serve it now or its deadline would pass; every
attempt of every call counts against the limit (issue 11, item 9)."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from desktop_app.domain.errors import JobFailed, Transient
from desktop_app.domain.job import JobState, Outcome
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.budget import Budget
from desktop_app.engine.events import Event, EventHub, JobWaiting
from desktop_app.engine.failover import JobContext, JobOutcome, run_job
from desktop_app.engine.metrics import Metrics
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import CancelToken, ProviderKind
from desktop_app.resilience.breaker import BreakerConfig, CircuitBreaker
from desktop_app.resilience.clock import ManualClock
from desktop_app.resilience.cooldown import CooldownGate
from desktop_app.resilience.rate_limit import ProviderRateLimiter, RateSpec
from desktop_app.resilience.retry import RetryPolicy
from tests.fakes.scripted_engine import engine_in, slot_for
from tests.fakes.scripted_provider import ScriptedProvider, Step

REQ = GenerationRequest(prompt="a lighthouse at dusk", width=256, height=256, seed=11)
NEXT_WINDOW = 60.001  # the sliding window frees its oldest slot a millisecond after 60 s


class Rig:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.hub = EventHub()
        self.events: list[Event] = []
        self.hub.subscribe(self.events.append)
        self.waiting_changes: list[tuple[int, bool]] = []

    def slot(self, provider: ScriptedProvider, priority: int, *, per_minute: int | None = None,
             concurrency: int = 4) -> ProviderSlot:
        limiter = (ProviderRateLimiter(provider.name, [RateSpec(per_minute, 60)],
                                       clock=self.clock) if per_minute else None)
        return ProviderSlot(
            provider=provider,
            breaker=CircuitBreaker(provider.name, BreakerConfig.cloud(), self.clock),
            gate=CooldownGate(self.clock), limiter=limiter,
            retry=RetryPolicy(max_attempts=3, base_s=0.0, max_s=0.0), priority=priority,
            concurrency=concurrency)

    def ctx(self, job_id: int, deadline_s: float = 600.0) -> JobContext:
        return JobContext(
            job_id=job_id, hub=self.hub, metrics=Metrics(), clock=self.clock,
            rng=random.Random(job_id), cancel=CancelToken(),
            deadline=self.clock.monotonic() + deadline_s,
            on_waiting=lambda waiting: self.waiting_changes.append((job_id, waiting)))

    def waits(self) -> list[JobWaiting]:
        return [e for e in self.events if isinstance(e, JobWaiting)]


def cloud(script: list[Step] | None = None) -> ScriptedProvider:
    return ScriptedProvider("openai", ProviderKind.CLOUD, script)


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"timed out waiting until {what}")


async def test_a_job_beyond_the_limit_waits_for_the_next_slot_and_says_so() -> None:
    rig = Rig()
    remote = cloud()
    slot = rig.slot(remote, 0, per_minute=1)
    first = await run_job(REQ, [slot], rig.ctx(1))
    assert first.provider == "openai"

    second = asyncio.ensure_future(run_job(REQ, [slot], rig.ctx(2)))
    await until(lambda: rig.clock.sleepers == 1, "the second job sleeps")
    [wait] = rig.waits()
    assert (wait.job_id, wait.provider) == (2, "openai")
    assert wait.text == "waiting for openai's rate limit, 60 s"
    assert rig.waiting_changes == [(2, True)]
    assert len(remote.calls) == 1 and not second.done()  # no request while it waits

    rig.clock.advance(NEXT_WINDOW)
    out: JobOutcome = await asyncio.wait_for(second, 5)
    assert out.provider == "openai" and len(remote.calls) == 2
    assert rig.waiting_changes == [(2, True), (2, False)]
    assert [a.outcome for a in out.attempts] == [Outcome.SUCCEEDED]


async def test_a_job_moves_on_when_another_provider_can_serve_it_now() -> None:
    rig = Rig()
    remote, local = cloud(), ScriptedProvider("local")
    slots = [rig.slot(remote, 0, per_minute=1), rig.slot(local, 10)]
    await run_job(REQ, slots, rig.ctx(1))
    out = await run_job(REQ, slots, rig.ctx(2))
    assert out.provider == "local" and len(remote.calls) == 1 and rig.waits() == []
    skip = out.attempts[0]
    assert (skip.provider, skip.outcome) == ("openai", Outcome.SKIPPED)
    assert skip.message == "rate limit reached (1/min); next slot in 60 s"


async def test_retries_and_every_call_of_a_multi_image_job_take_a_slot() -> None:
    rig = Rig()
    remote = cloud([Transient("HTTP 503")])
    remote.caps = dataclasses.replace(remote.caps, max_images_per_call=1)
    slot = rig.slot(remote, 0, per_minute=3)
    # two images in two calls, the first tried twice: three requests, the limit
    out = await run_job(REQ.replace(n=2), [slot], rig.ctx(1))
    assert len(out.images) == 2 and len(remote.calls) == 3

    later = asyncio.ensure_future(run_job(REQ, [slot], rig.ctx(2)))
    await until(lambda: rig.clock.sleepers == 1, "the next job waits")
    assert len(remote.calls) == 3 and [w.job_id for w in rig.waits()] == [2]
    rig.clock.advance(NEXT_WINDOW)
    await asyncio.wait_for(later, 5)
    assert len(remote.calls) == 4


async def test_a_second_call_waits_for_its_slot_and_the_job_keeps_both_images() -> None:
    rig = Rig()
    remote = cloud()
    remote.caps = dataclasses.replace(remote.caps, max_images_per_call=1)
    slot = rig.slot(remote, 0, per_minute=1)
    job = asyncio.ensure_future(run_job(REQ.replace(n=2), [slot], rig.ctx(1)))
    await until(lambda: rig.clock.sleepers == 1, "the second call waits")
    assert len(remote.calls) == 1
    rig.clock.advance(NEXT_WINDOW)
    out = await asyncio.wait_for(job, 5)
    assert len(out.images) == 2 and out.provider == "openai"


async def test_a_slot_after_the_deadline_fails_with_the_reason_instead_of_waiting() -> None:
    rig = Rig()
    remote = cloud()
    slot = rig.slot(remote, 0, per_minute=1)
    await run_job(REQ, [slot], rig.ctx(1))
    with pytest.raises(JobFailed) as info:
        await run_job(REQ, [slot], rig.ctx(2, deadline_s=30.0))
    assert rig.waits() == [] and len(remote.calls) == 1
    assert ("openai's rate limit (1/min) has no free slot before the job's deadline "
            "(next in 60 s)") in str(info.value)


async def test_waiting_for_the_first_slot_does_not_use_up_the_jobs_deadline() -> None:
    rig = Rig()
    remote = cloud()
    slot = rig.slot(remote, 0, per_minute=1)
    await run_job(REQ, [slot], rig.ctx(1))
    ctx = rig.ctx(2, deadline_s=90.0)
    job = asyncio.ensure_future(run_job(REQ, [slot], ctx))
    await until(lambda: rig.clock.sleepers == 1, "the job waits")
    rig.clock.advance(NEXT_WINDOW)
    await asyncio.wait_for(job, 5)
    # it waited 60 s of its 90 s without working: those 90 s start when it does
    assert ctx.deadline - rig.clock.monotonic() == pytest.approx(90.0)


async def test_a_cancel_ends_the_wait_at_once() -> None:
    rig = Rig()
    slot = rig.slot(cloud(), 0, per_minute=1)
    await run_job(REQ, [slot], rig.ctx(1))
    ctx = rig.ctx(2)
    job = asyncio.ensure_future(run_job(REQ, [slot], ctx))
    await until(lambda: rig.clock.sleepers == 1, "the job waits")
    ctx.cancel.cancel("cancelled by the user")
    with pytest.raises(Exception, match="cancelled by the user"):
        await asyncio.wait_for(job, 5)
    assert rig.waiting_changes[-1] == (2, False)


async def test_a_paid_call_holds_its_cost_until_it_ends_and_a_cancel_releases_it(
        tmp_path: Path) -> None:
    """Through the real engine and its budget (not a cap wired into a job by hand)."""
    remote = ScriptedProvider("openai", ProviderKind.CLOUD, ["hang"], cost_per_image=0.5)
    engine = engine_in(tmp_path, [slot_for(remote, breaker=BreakerConfig.cloud(),
                                           concurrency=4)],
                       budget=Budget(daily_usd=0.8))
    await engine.start()
    try:
        held = await engine.submit(REQ.replace(n=1))

        async def call_under_way() -> None:
            while not remote.calls:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(call_under_way(), 60)  # generous: the engine runs it at once
        # $0.50 held by the running call + $0.50 would pass $0.80: refused unsent
        over = await engine.wait_for((await engine.submit(REQ.replace(n=1))).id)
        assert over.state is JobState.FAILED and len(remote.calls) == 1
        assert over.error_message is not None
        assert "would pass the $0.80 daily cap" in over.error_message

        await engine.cancel(held.id)
        assert (await engine.wait_for(held.id)).state is JobState.CANCELLED
        # the cancelled call was never billed and its hold is gone: $0.50 fits again
        after = await engine.wait_for((await engine.submit(REQ.replace(n=1))).id)
        assert after.state is JobState.SUCCEEDED and len(remote.calls) == 2
    finally:
        await engine.close()
