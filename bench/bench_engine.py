"""Engine overhead per job with an instant provider, and the time to reject a job
whose only provider's breaker is open (issue 2). Targets: < 0.3 ms and < 0.05 ms."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time

from _harness import median, percentile, record

from desktop_app.domain.errors import JobFailed
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.events import EventHub
from desktop_app.engine.failover import JobContext, run_job
from desktop_app.engine.metrics import Metrics
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import (
    CancelToken,
    Capabilities,
    ConnectionOutcome,
    ConnectionReport,
    Health,
    HealthState,
    ProgressCallback,
    ProviderKind,
    SizeRule,
)
from desktop_app.resilience.breaker import BreakerConfig, CircuitBreaker
from desktop_app.resilience.clock import SystemClock
from desktop_app.resilience.cooldown import CooldownGate
from desktop_app.resilience.rate_limit import ProviderRateLimiter, RateSpec

JOBS = 5000
IMAGE = GeneratedImage(data=b"\x89PNG", format="png", width=512, height=512,
                       provider="instant", model="none")


class InstantProvider:
    name = "instant"
    kind = ProviderKind.LOCAL

    def capabilities(self) -> Capabilities:
        return Capabilities(sizes=SizeRule(), max_images_per_call=4, supports_seed=True)

    async def health(self) -> Health:
        return Health(HealthState.READY)

    async def test_connection(self) -> ConnectionReport:
        return ConnectionReport(self.name, ConnectionOutcome.PASSED, "ready")

    async def generate(self, request: GenerationRequest, progress: ProgressCallback,
                       cancel: CancelToken) -> list[GeneratedImage]:
        return [IMAGE]

    async def close(self) -> None:
        pass


async def measure() -> list[str]:
    clock = SystemClock()
    hub = EventHub()
    hub.subscribe(lambda event: None)
    slot = ProviderSlot(
        provider=InstantProvider(),
        breaker=CircuitBreaker("instant", BreakerConfig.local_gpu(), clock),
        gate=CooldownGate(clock),
        limiter=ProviderRateLimiter("instant", [RateSpec(10**9, 60)], clock=clock),
    )
    request = GenerationRequest(prompt="a lighthouse at dusk", seed=1)

    def ctx() -> JobContext:
        return JobContext(job_id=1, hub=hub, metrics=Metrics(), clock=clock,
                          rng=random.Random(1), cancel=CancelToken(),
                          deadline=clock.monotonic() + 60)

    for _ in range(200):  # warm-up
        await run_job(request, [slot], ctx())
    per_job = []
    for _ in range(JOBS):
        t0 = time.perf_counter()
        await run_job(request, [slot], ctx())
        per_job.append((time.perf_counter() - t0) * 1000)

    slot.breaker.force_open("bench: provider down")
    rejects = []
    for _ in range(JOBS):
        t0 = time.perf_counter()
        with contextlib.suppress(JobFailed):
            await run_job(request, [slot], ctx())
        rejects.append((time.perf_counter() - t0) * 1000)
    return [
        f"engine overhead per job, instant provider ({JOBS} jobs; routing + breaker + limiter "
        f"+ metrics + events): median {median(per_job):.3f} ms, p95 "
        f"{percentile(per_job, 95):.3f} ms (target < 0.3 ms)",
        f"reject a job whose only provider is open: median {median(rejects):.4f} ms, p95 "
        f"{percentile(rejects, 95):.4f} ms (target < 0.05 ms)",
    ]


if __name__ == "__main__":
    record("bench_engine.py — engine overhead", asyncio.run(measure()))
