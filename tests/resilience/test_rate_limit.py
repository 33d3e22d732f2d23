"""Per-provider rate limits on pyrate-limiter: several rates, never waiting,
counts that survive a restart, time from the injected clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop_app.resilience.clock import FakeClock
from desktop_app.resilience.rate_limit import ProviderRateLimiter, RateSpec, RateStrategy

ALL = list(RateStrategy)
MINUTE, DAY = 60.0, 86_400.0


async def take(limiter: ProviderRateLimiter, n: int) -> list[bool]:
    return [await limiter.try_acquire() for _ in range(n)]


@pytest.mark.parametrize("strategy", ALL)
@pytest.mark.parametrize("persisted", [False, True])
async def test_refuses_without_waiting_once_a_rate_is_full(
    tmp_path: Path, strategy: RateStrategy, persisted: bool
) -> None:
    clock = FakeClock()
    limiter = ProviderRateLimiter("openai", [RateSpec(3, MINUTE)], clock=clock,
                                  strategy=strategy,
                                  db_path=tmp_path / "limits.db" if persisted else None)
    assert await take(limiter, 4) == [True, True, True, False]
    assert clock.slept == []  # never blocked on the clock
    wait = limiter.retry_after()
    # the library adds 1 ms so the oldest call is surely out of the window
    assert wait is not None and 0 < wait <= MINUTE + 0.001
    await limiter.close()


@pytest.mark.parametrize("strategy", ALL)
async def test_advancing_the_injected_clock_frees_slots(strategy: RateStrategy) -> None:
    clock = FakeClock()
    limiter = ProviderRateLimiter("openai", [RateSpec(3, MINUTE)], clock=clock,
                                  strategy=strategy)
    await take(limiter, 3)
    assert await limiter.try_acquire() is False
    wait = limiter.retry_after()
    assert wait is not None
    clock.advance(wait)
    assert await limiter.try_acquire() is True
    assert limiter.retry_after() is None
    await limiter.close()


async def test_sliding_window_frees_each_slot_a_period_after_its_call() -> None:
    clock = FakeClock()
    limiter = ProviderRateLimiter("openai", [RateSpec(2, MINUTE)], clock=clock)
    assert await limiter.try_acquire()
    clock.advance(20)
    assert await limiter.try_acquire()
    assert await limiter.try_acquire() is False
    assert limiter.retry_after() == pytest.approx(40.0, abs=0.01)
    clock.advance(40.01)
    assert await limiter.try_acquire()  # the first call left the window
    assert await limiter.try_acquire() is False
    await limiter.close()


@pytest.mark.parametrize("strategy", ALL)
async def test_daily_limit_binds_when_the_minute_limit_has_room(strategy: RateStrategy) -> None:
    clock = FakeClock()
    limiter = ProviderRateLimiter("openai", [RateSpec(5, MINUTE), RateSpec(8, DAY)],
                                  clock=clock, strategy=strategy)
    granted = 0
    for _ in range(6):  # 6 minutes, up to 5 calls each
        granted += sum(await take(limiter, 5))
        clock.advance(MINUTE + 1)
    assert granted == 8
    wait = limiter.retry_after()
    assert wait is not None and wait > MINUTE  # the day, not the minute, refuses
    await limiter.close()


@pytest.mark.parametrize("strategy", ALL)
async def test_daily_count_survives_a_restart(tmp_path: Path, strategy: RateStrategy) -> None:
    db = tmp_path / "data" / "limits.db"
    first = ProviderRateLimiter("openai", [RateSpec(3, DAY)], db_path=db, clock=FakeClock(),
                                strategy=strategy)
    assert await take(first, 3) == [True, True, True]
    await first.close()

    # a new process: a fresh limiter and a fresh clock at the same wall time, an hour later
    later = FakeClock(start=5.0)
    later.advance(3600)
    second = ProviderRateLimiter("openai", [RateSpec(3, DAY)], db_path=db, clock=later,
                                 strategy=strategy)
    assert await second.try_acquire() is False
    later.advance(DAY)
    assert await second.try_acquire() is True
    await second.close()


async def test_providers_sharing_a_file_count_separately(tmp_path: Path) -> None:
    db = tmp_path / "limits.db"
    clock = FakeClock()
    openai = ProviderRateLimiter("openai", [RateSpec(1, DAY)], db_path=db, clock=clock)
    other = ProviderRateLimiter("compat-endpoint", [RateSpec(1, DAY)], db_path=db, clock=clock)
    assert await openai.try_acquire() and await other.try_acquire()
    assert not await openai.try_acquire()
    await openai.close()
    await other.close()


def test_describe_reads_like_the_settings() -> None:
    limiter = ProviderRateLimiter("openai", [RateSpec(5, 60), RateSpec(200, 86_400)],
                                  clock=FakeClock())
    assert limiter.describe() == "5/min, 200/day"
    assert ProviderRateLimiter("x", [RateSpec(7, 90)]).describe() == "7/90 s"


async def test_a_rate_that_can_never_bind_is_tolerated() -> None:
    clock = FakeClock()
    # 10/min can never bind next to 4/hour; pyrate-limiter alone would refuse the pair
    limiter = ProviderRateLimiter("openai", [RateSpec(10, MINUTE), RateSpec(4, 3600)],
                                  clock=clock)
    assert await take(limiter, 5) == [True, True, True, True, False]
    await limiter.close()


def test_rates_that_cannot_be_combined_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="cannot be combined"):
        ProviderRateLimiter("openai", [RateSpec(5, 60), RateSpec(8, 90)])
    with pytest.raises(ValueError, match="at least 1 call"):
        RateSpec(0, 60)


async def test_closed_limiter_refuses_use() -> None:
    limiter = ProviderRateLimiter("openai", [RateSpec(1, 60)], clock=FakeClock())
    await limiter.close()
    await limiter.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await limiter.try_acquire()
