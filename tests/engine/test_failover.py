"""The failover loop with scripted providers: order, skips and reasons, the taxonomy's rules."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from desktop_app.domain.errors import (
    Cancelled,
    ContentRejected,
    InvalidRequest,
    JobFailed,
    Misconfigured,
    OutOfMemory,
    QuotaExhausted,
    RateLimited,
    Transient,
)
from desktop_app.domain.job import Outcome
from desktop_app.domain.request import GenerationRequest, RouteMode, RoutingPolicy
from desktop_app.engine.events import Event, JobProgress, JobRouted
from desktop_app.engine.failover import JobContext, run_job
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import (
    Capabilities,
    Health,
    HealthState,
    ProviderKind,
    SizeRule,
)
from desktop_app.resilience.breaker import BreakerState
from desktop_app.resilience.clock import FakeClock
from tests.fakes.scripted_provider import ScriptedProvider

SlotMaker = Callable[..., ProviderSlot]
CtxMaker = Callable[..., JobContext]
REQ = GenerationRequest(prompt="a lighthouse at dusk", width=256, height=256, seed=11)


def cloud(script: list | None = None, **kw: object) -> ScriptedProvider:
    return ScriptedProvider("openai", ProviderKind.CLOUD, script, **kw)  # type: ignore[arg-type]


async def test_the_first_candidate_serves_when_it_works(make_slot: SlotMaker,
                                                        make_ctx: CtxMaker) -> None:
    local, remote = ScriptedProvider("local"), cloud()
    out = await run_job(REQ, [make_slot(local, 0), make_slot(remote, 10)], make_ctx())
    assert out.provider == "local" and len(out.images) == 1
    assert remote.calls == []
    assert [a.outcome for a in out.attempts] == [Outcome.SUCCEEDED]


async def test_out_of_memory_fails_over_to_the_cloud_with_the_reason_shown(
        make_slot: SlotMaker, make_ctx: CtxMaker, events: list[Event]) -> None:
    local = ScriptedProvider("local", script=[OutOfMemory("CUDA out of memory")])
    out = await run_job(REQ, [make_slot(local, 0), make_slot(cloud(), 10)], make_ctx())
    assert out.provider == "openai"
    routed = [e for e in events if isinstance(e, JobRouted)]
    assert [r.text for r in routed] == ["routed to openai: local OutOfMemory: CUDA out of memory"]
    assert [a.error for a in out.attempts] == ["OutOfMemory", None]


async def test_transient_errors_are_retried_on_the_same_provider_with_backoff(
        make_slot: SlotMaker, make_ctx: CtxMaker, clock: FakeClock) -> None:
    local = ScriptedProvider("local", script=[Transient("reset"), Transient("reset")])
    remote = cloud()
    out = await run_job(REQ, [make_slot(local, 0), make_slot(remote, 10)], make_ctx())
    assert out.provider == "local" and len(local.calls) == 3 and remote.calls == []
    assert len(clock.slept) == 2 and clock.slept[1] > clock.slept[0] * 0.5


async def test_an_open_breaker_provider_is_never_called(make_slot: SlotMaker,
                                                       make_ctx: CtxMaker) -> None:
    local = ScriptedProvider("local")
    slot = make_slot(local, 0)
    slot.breaker.force_open("no CUDA device")
    out = await run_job(REQ, [slot, make_slot(cloud(), 10)], make_ctx())
    assert local.calls == [] and out.provider == "openai"
    skip = out.attempts[0]
    assert skip.outcome is Outcome.SKIPPED and "no CUDA device" in skip.message


async def test_misconfigured_provider_is_skipped_with_its_reason(make_slot: SlotMaker,
                                                                make_ctx: CtxMaker) -> None:
    remote = cloud(health=Health(HealthState.NOT_CONFIGURED,
                                 "not configured: add an OpenAI API key in Settings"))
    local = ScriptedProvider("local", script=[OutOfMemory("CUDA out of memory")])
    with pytest.raises(JobFailed) as info:
        await run_job(REQ, [make_slot(local, 0), make_slot(remote, 10)], make_ctx())
    assert remote.calls == []
    assert "openai: skipped — not configured: add an OpenAI API key in Settings" in str(info.value)
    assert "local: OutOfMemory — CUDA out of memory" in str(info.value)


async def test_misconfiguration_forces_the_breaker_open_and_fails_over(
        make_slot: SlotMaker, make_ctx: CtxMaker) -> None:
    local = ScriptedProvider("local", script=[Misconfigured("model x is not in your cache")])
    slot = make_slot(local, 0)
    out = await run_job(REQ, [slot, make_slot(cloud(), 10)], make_ctx())
    assert out.provider == "openai"
    assert slot.breaker.state is BreakerState.FORCED_OPEN
    assert len(local.calls) == 1  # never retried


async def test_content_refusal_does_not_fail_over_unless_allowed(make_slot: SlotMaker,
                                                                make_ctx: CtxMaker) -> None:
    local = ScriptedProvider("local", script=[ContentRejected("safety checker: blocked")])
    remote = cloud()
    slot_l, slot_c = make_slot(local, 0), make_slot(remote, 10)
    with pytest.raises(JobFailed, match="refused") as info:
        await run_job(REQ, [slot_l, slot_c], make_ctx())
    assert info.value.final is ContentRejected and remote.calls == []
    assert slot_l.breaker.state is BreakerState.CLOSED  # a refusal never counts against it

    local.script = [ContentRejected("safety checker: blocked")]
    allowed = REQ.replace(policy=RoutingPolicy(allow_failover_after_refusal=True))
    out = await run_job(allowed, [slot_l, slot_c], make_ctx())
    assert out.provider == "openai"


async def test_quota_exhausted_is_not_retried_and_forces_open(make_slot: SlotMaker,
                                                             make_ctx: CtxMaker) -> None:
    remote = cloud([QuotaExhausted("You exceeded your current quota")])
    slot = make_slot(remote, 0)
    with pytest.raises(JobFailed):
        await run_job(REQ, [slot], make_ctx())
    assert len(remote.calls) == 1
    assert slot.breaker.state is BreakerState.FORCED_OPEN
    assert "check billing" in slot.breaker.snapshot().reason


async def test_retry_after_is_honoured_by_the_cooldown_gate(make_slot: SlotMaker,
                                                           make_ctx: CtxMaker,
                                                           clock: FakeClock) -> None:
    remote = cloud([RateLimited("Rate limit reached", retry_after=20.0)])
    slot = make_slot(remote, 0)
    with pytest.raises(JobFailed, match="RateLimited"):
        await run_job(REQ, [slot], make_ctx())
    assert len(remote.calls) == 1  # 20 s is too long to wait inside a job
    with pytest.raises(JobFailed, match="cooling down after a rate limit"):
        await run_job(REQ, [slot], make_ctx())
    assert len(remote.calls) == 1  # skipped while cooling down
    clock.advance(20.5)
    out = await run_job(REQ, [slot], make_ctx())
    assert out.provider == "openai" and len(remote.calls) == 2
    assert slot.breaker.state is BreakerState.CLOSED  # rate limits never open the breaker


async def test_a_short_retry_after_is_waited_out_on_the_same_provider(
        make_slot: SlotMaker, make_ctx: CtxMaker, clock: FakeClock) -> None:
    remote = cloud([RateLimited("slow down", retry_after=2.0)])
    out = await run_job(REQ, [make_slot(remote, 0)], make_ctx())
    assert out.provider == "openai" and len(remote.calls) == 2
    assert sum(clock.slept) >= 2.0


async def test_the_deadline_stops_retries(make_slot: SlotMaker, make_ctx: CtxMaker,
                                         clock: FakeClock) -> None:
    start = clock.monotonic()
    remote = cloud([Transient("503")] * 10)
    with pytest.raises(JobFailed):
        await run_job(REQ, [make_slot(remote, 0)], make_ctx(deadline_s=1.5))
    assert clock.monotonic() - start <= 1.5
    assert len(remote.calls) < 3


async def test_a_hung_provider_is_cut_off_at_the_deadline(make_slot: SlotMaker,
                                                         make_ctx: CtxMaker) -> None:
    # Real time here: asyncio.timeout runs on the loop's clock, not the fake one.
    local = ScriptedProvider("local", script=["hang_deaf"])
    ctx = make_ctx()
    ctx.deadline = ctx.clock.monotonic() + 0.2
    with pytest.raises(JobFailed, match="deadline"):
        await run_job(REQ, [make_slot(local, 0)], ctx)


async def test_cancel_stops_without_failing_over(make_slot: SlotMaker, make_ctx: CtxMaker) -> None:
    local = ScriptedProvider("local", script=[Cancelled("cancelled by the user")])
    remote = cloud()
    with pytest.raises(Cancelled):
        await run_job(REQ, [make_slot(local, 0), make_slot(remote, 10)], make_ctx())
    assert remote.calls == []


async def test_invalid_request_fails_over_only_to_a_provider_that_fits(
        make_slot: SlotMaker, make_ctx: CtxMaker) -> None:
    small = Capabilities(sizes=SizeRule(allowed=((512, 512),)), max_images_per_call=1)
    local = ScriptedProvider("local", script=[InvalidRequest("unsupported scheduler")])
    fixed = cloud(caps=small)
    no_adapt = REQ.replace(policy=RoutingPolicy(allow_adaptation=False))
    with pytest.raises(JobFailed) as info:
        await run_job(no_adapt, [make_slot(local, 0), make_slot(fixed, 10)], make_ctx())
    assert fixed.calls == []
    assert "capabilities don't fit" in str(info.value)


async def test_policy_local_only_never_uses_the_cloud(make_slot: SlotMaker,
                                                     make_ctx: CtxMaker) -> None:
    local = ScriptedProvider("local", script=[OutOfMemory("CUDA out of memory")])
    remote = cloud()
    req = REQ.replace(policy=RoutingPolicy(mode=RouteMode.LOCAL_ONLY))
    with pytest.raises(JobFailed, match="disabled by policy: local only"):
        await run_job(req, [make_slot(local, 0), make_slot(remote, 10)], make_ctx())
    assert remote.calls == []


async def test_adaptations_are_recorded_on_the_attempt(make_slot: SlotMaker,
                                                       make_ctx: CtxMaker) -> None:
    fixed = cloud(caps=Capabilities(sizes=SizeRule(allowed=((1024, 1024),)),
                                    max_images_per_call=1))
    out = await run_job(REQ.replace(n=2), [make_slot(fixed, 0)], make_ctx())
    assert out.attempts[-1].adaptations == (
        "size 256x256 -> 1024x1024", "seed not supported: ignored", "2 images split into 2 calls")
    assert [i.width for i in out.images] == [1024, 1024]


async def test_progress_is_reported_in_order(make_slot: SlotMaker, make_ctx: CtxMaker,
                                             events: list[Event]) -> None:
    await run_job(REQ, [make_slot(ScriptedProvider("local", steps=4), 0)], make_ctx())
    steps = [e.step for e in events if isinstance(e, JobProgress)]
    assert steps == [1, 2, 3, 4]


async def test_a_missing_seed_is_picked_and_recorded(make_slot: SlotMaker,
                                                     make_ctx: CtxMaker) -> None:
    out = await run_job(REQ.replace(seed=None), [make_slot(ScriptedProvider("local"), 0)],
                        make_ctx())
    assert out.request.seed is not None and out.images[0].seed == out.request.seed


async def test_a_run_of_failures_opens_the_breaker_for_later_jobs(
        make_slot: SlotMaker, make_ctx: CtxMaker) -> None:
    from desktop_app.resilience.retry import RetryPolicy

    local = ScriptedProvider("local", script=[Transient("boom")] * 3)
    slot = make_slot(local, 0, retry=RetryPolicy(max_attempts=1))
    remote = cloud()
    for _ in range(3):
        await run_job(REQ, [slot, make_slot(remote, 10)], make_ctx())
    assert slot.breaker.state is BreakerState.OPEN
    calls_before = len(local.calls)
    out = await run_job(REQ, [slot, make_slot(remote, 10)], make_ctx())
    assert len(local.calls) == calls_before and out.attempts[0].outcome is Outcome.SKIPPED


async def test_a_provider_at_its_rate_limit_is_skipped_without_a_call(
        make_slot: SlotMaker, make_ctx: CtxMaker, clock: FakeClock) -> None:
    from desktop_app.resilience.rate_limit import ProviderRateLimiter, RateSpec

    remote, local = cloud(), ScriptedProvider("local")
    limiter = ProviderRateLimiter("openai", [RateSpec(2, 60)], clock=clock)
    slots = [make_slot(remote, 0, limiter=limiter), make_slot(local, 10)]
    for _ in range(2):
        assert (await run_job(REQ, slots, make_ctx())).provider == "openai"
    out = await run_job(REQ, slots, make_ctx())
    assert out.provider == "local" and len(remote.calls) == 2
    assert out.attempts[0].outcome is Outcome.SKIPPED
    assert "rate limit reached (2/min)" in out.attempts[0].message
    clock.advance(61)
    assert (await run_job(REQ, slots, make_ctx())).provider == "openai"


async def test_a_jobs_own_model_choice_failing_does_not_force_the_provider_open(
        make_slot: SlotMaker, make_ctx: CtxMaker) -> None:
    local = ScriptedProvider("local", script=[Misconfigured("model /nope.safetensors is missing")])
    slot = make_slot(local, 0)
    out = await run_job(REQ.replace(model="/nope.safetensors"), [slot, make_slot(cloud(), 10)],
                        make_ctx())
    assert out.provider == "openai"
    assert slot.breaker.state is BreakerState.CLOSED  # the next job, default model, may run


async def test_images_from_calls_that_succeeded_are_kept_when_a_later_call_fails(
        make_slot: SlotMaker, make_ctx: CtxMaker) -> None:
    two_per_call = Capabilities(sizes=SizeRule(), max_images_per_call=2, supports_seed=True,
                                cost_per_image_usd=0.04)
    remote = cloud(["ok", QuotaExhausted("You exceeded your current quota")],
                   caps=two_per_call, cost_per_image=0.04)
    local = ScriptedProvider("local")
    out = await run_job(REQ.replace(n=4), [make_slot(remote, 0), make_slot(local, 10)],
                        make_ctx())
    assert [i.provider for i in out.images] == ["openai", "openai", "local", "local"]
    assert [c.n for c in local.calls] == [2]  # only what was still missing
    failed = out.attempts[0]
    assert failed.error == "QuotaExhausted" and "2 image(s) kept" in failed.message
    assert out.cost_usd == pytest.approx(0.08)  # the paid images are on the record


async def test_a_job_keeps_its_partial_images_when_no_provider_can_finish_it(
        make_slot: SlotMaker, make_ctx: CtxMaker) -> None:
    two_per_call = Capabilities(sizes=SizeRule(), max_images_per_call=2, supports_seed=True)
    remote = cloud(["ok", QuotaExhausted("You exceeded your current quota")], caps=two_per_call)
    out = await run_job(REQ.replace(n=4), [make_slot(remote, 0)], make_ctx())
    assert len(out.images) == 2 and out.provider == "openai"


async def test_a_long_cooldown_fails_over_instead_of_waiting(
        make_slot: SlotMaker, make_ctx: CtxMaker, clock: FakeClock) -> None:
    remote, local = cloud(), ScriptedProvider("local")
    slot = make_slot(remote, 0)
    slot.gate.cool_down(300, "429 from another job")
    ctx = make_ctx()
    ctx.deadline = clock.monotonic() + 900
    # the router would skip it; a job that planned before the 429 must not sleep 300 s
    from desktop_app.engine.failover import _call_with_retries

    with pytest.raises(RateLimited, match="cooling down for 300 s"):
        await _call_with_retries(slot, REQ, ctx)
    assert sum(clock.slept) < 5 and remote.calls == []
    out = await run_job(REQ, [slot, make_slot(local, 10)], make_ctx())
    assert out.provider == "local"
