"""Cost of the resilience layer per call: breaker permits and rejections, rate
limiter try-acquire (in memory and persisted in SQLite), a retry loop around
an instant success. Time runs on a FakeClock, so only our own code is measured.

Run: .venv/bin/python bench/bench_resilience.py
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from _harness import median, percentile, record

from desktop_app.domain.errors import CircuitOpen, Transient
from desktop_app.resilience import (
    BreakerConfig,
    CircuitBreaker,
    FakeClock,
    ProviderRateLimiter,
    RateSpec,
    RateStrategy,
    RetryPolicy,
    retry_call,
)

BATCHES, PER_BATCH = 30, 1000


def per_call_us(run_batch: Callable[[], None]) -> list[float]:
    samples = []
    for _ in range(BATCHES):
        start = time.perf_counter()
        run_batch()
        samples.append((time.perf_counter() - start) / PER_BATCH * 1e6)
    return samples


async def per_call_us_async(run_batch: Callable[[], Awaitable[None]]) -> list[float]:
    samples = []
    for _ in range(BATCHES):
        start = time.perf_counter()
        await run_batch()
        samples.append((time.perf_counter() - start) / PER_BATCH * 1e6)
    return samples


def line(label: str, samples: list[float]) -> str:
    return f"{label}: median {median(samples):.2f} µs, p95 {percentile(samples, 95):.2f} µs"


def bench_breaker() -> list[str]:
    clock = FakeClock()
    closed = CircuitBreaker("local", BreakerConfig.local_gpu(), clock)

    def permits() -> None:
        for _ in range(PER_BATCH):
            closed.try_acquire().success(0.1)

    opened = CircuitBreaker("cloud", BreakerConfig.cloud(), clock)
    for _ in range(4):
        opened.try_acquire().failure(Transient("down"), 0.1)

    def rejections() -> None:
        for _ in range(PER_BATCH):
            with contextlib.suppress(CircuitOpen):
                opened.try_acquire()

    def snapshots() -> None:
        for _ in range(PER_BATCH):
            opened.snapshot()

    return [line("breaker permit + success (closed)", per_call_us(permits)),
            line("breaker rejection (open)", per_call_us(rejections)),
            line("breaker snapshot", per_call_us(snapshots))]


# (label, rates, seconds between calls): every call is granted; the window
# holds ~200 calls (a realistic daily cap) or, as a worst case, ~30,000.
LOADS = [
    ("~200 calls in window", [RateSpec(10, 60), RateSpec(250, 3600)], 18.0),
    ("~30,000 calls in window", [RateSpec(1000, 60), RateSpec(100_000, 86_400)], 0.07),
]


async def bench_limiter(folder: Path) -> list[str]:
    lines: list[str] = []
    for load, rates, step in LOADS:
        for strategy in RateStrategy:
            for persisted in (False, True):
                clock = FakeClock()
                limiter = ProviderRateLimiter(
                    f"p{len(lines)}", rates, clock=clock, strategy=strategy,
                    db_path=folder / "limits.db" if persisted else None)

                async def acquire(limiter: ProviderRateLimiter = limiter,
                                  clock: FakeClock = clock, step: float = step) -> None:
                    for _ in range(PER_BATCH):
                        granted = await limiter.try_acquire()
                        assert granted, "the load must stay under the limits"
                        clock.advance(step)

                samples = await per_call_us_async(acquire)
                where = "SQLite" if persisted else "memory"
                lines.append(line(f"limiter try_acquire, {strategy.value}, {where}, {load}",
                                  samples))
                await limiter.close()
    return lines


async def bench_retry() -> list[str]:
    clock, rng, policy = FakeClock(), random.Random(1), RetryPolicy()

    async def instant() -> int:
        return 1

    async def calls() -> None:
        for _ in range(PER_BATCH):
            await retry_call(instant, policy=policy, clock=clock, rng=rng, deadline=None,
                             should_retry=lambda _: True)

    return [line("retry_call around an instant success", await per_call_us_async(calls))]


async def main() -> None:
    lines = bench_breaker()
    with tempfile.TemporaryDirectory() as folder:
        lines += await bench_limiter(Path(folder))
    lines += await bench_retry()
    lines.append(f"{BATCHES} batches of {PER_BATCH} calls each; FakeClock, so no sleeping")
    record("bench_resilience.py — resilience layer cost per call", lines)


if __name__ == "__main__":
    asyncio.run(main())
