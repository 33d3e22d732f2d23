"""Retries: backoff, jitter bounds, the job's deadline, what is never retried."""

from __future__ import annotations

import asyncio
import random

import pytest

from desktop_app.domain.errors import InvalidRequest, Transient
from desktop_app.resilience.clock import FakeClock
from desktop_app.resilience.retry import RetryPolicy, retry_call


class Flaky:
    """Fails ``failures`` times with ``error``, then returns "ok"."""

    def __init__(self, failures: int, error: BaseException | None = None) -> None:
        self.failures = failures
        self.error = error or Transient("server error 503")
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def retry_transient(error: BaseException) -> bool:
    return isinstance(error, Transient)


async def test_retries_until_success_with_growing_backoff() -> None:
    clock = FakeClock()
    fn = Flaky(failures=4)
    policy = RetryPolicy(max_attempts=5, base_s=1.0, max_s=30.0, jitter=0.0)
    result = await retry_call(fn, policy=policy, clock=clock, rng=random.Random(1),
                              deadline=None, should_retry=retry_transient)
    assert result == "ok" and fn.calls == 5
    assert clock.slept == [1.0, 2.0, 4.0, 8.0]


async def test_backoff_is_capped_at_max_delay() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=6, base_s=4.0, max_s=10.0, jitter=0.0)
    await retry_call(Flaky(failures=5), policy=policy, clock=clock, rng=random.Random(1),
                     deadline=None, should_retry=retry_transient)
    assert clock.slept == [4.0, 8.0, 10.0, 10.0, 10.0]


async def test_jitter_stays_within_its_fraction_and_varies() -> None:
    policy = RetryPolicy(max_attempts=4, base_s=2.0, max_s=30.0, jitter=0.5)
    rng = random.Random(7)
    seen: dict[int, list[float]] = {1: [], 2: [], 3: []}
    for _ in range(200):
        clock = FakeClock()
        await retry_call(Flaky(failures=3), policy=policy, clock=clock, rng=rng,
                         deadline=None, should_retry=retry_transient)
        for number, delay in enumerate(clock.slept, start=1):
            seen[number].append(delay)
    for number, delays in seen.items():
        nominal = 2.0 * 2 ** (number - 1)
        assert all(nominal * 0.5 <= d <= nominal for d in delays)
        assert max(delays) - min(delays) > nominal * 0.3  # actually spread out


async def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    fn = Flaky(failures=10)
    with pytest.raises(Transient, match="503"):
        await retry_call(fn, policy=RetryPolicy(max_attempts=3), clock=FakeClock(),
                         rng=random.Random(1), deadline=None, should_retry=retry_transient)
    assert fn.calls == 3


async def test_never_sleeps_past_the_deadline() -> None:
    clock = FakeClock()
    deadline = clock.monotonic() + 5.0
    fn = Flaky(failures=10)
    policy = RetryPolicy(max_attempts=10, base_s=1.0, max_s=30.0, jitter=0.0)
    with pytest.raises(Transient):
        await retry_call(fn, policy=policy, clock=clock, rng=random.Random(1),
                         deadline=deadline, should_retry=retry_transient)
    assert clock.slept == [1.0, 2.0]  # the next 4 s would end at 7 s, past the deadline
    assert clock.monotonic() <= deadline
    assert fn.calls == 3


async def test_deadline_already_too_close_means_no_retry_at_all() -> None:
    clock = FakeClock()
    fn = Flaky(failures=1)
    with pytest.raises(Transient):
        await retry_call(fn, policy=RetryPolicy(base_s=1.0), clock=clock,
                         rng=random.Random(1), deadline=clock.monotonic() + 0.2,
                         should_retry=retry_transient)
    assert fn.calls == 1 and clock.slept == []


async def test_non_retryable_error_propagates_at_once() -> None:
    clock = FakeClock()
    fn = Flaky(failures=1, error=InvalidRequest("size not allowed", field="width"))
    with pytest.raises(InvalidRequest):
        await retry_call(fn, policy=RetryPolicy(), clock=clock, rng=random.Random(1),
                         deadline=None, should_retry=retry_transient)
    assert fn.calls == 1 and clock.slept == []


async def test_cancellation_is_never_retried_even_if_the_predicate_says_yes() -> None:
    fn = Flaky(failures=1, error=asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await retry_call(fn, policy=RetryPolicy(), clock=FakeClock(), rng=random.Random(1),
                         deadline=None, should_retry=lambda _: True)
    assert fn.calls == 1


async def test_cancelling_the_task_during_backoff_stops_the_retries() -> None:
    sleeping = asyncio.Event()

    class SlowClock(FakeClock):
        async def sleep(self, seconds: float) -> None:
            sleeping.set()
            await asyncio.sleep(3600)

    fn = Flaky(failures=10)
    task = asyncio.ensure_future(retry_call(
        fn, policy=RetryPolicy(), clock=SlowClock(), rng=random.Random(1), deadline=None,
        should_retry=retry_transient))
    await sleeping.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fn.calls == 1


async def test_on_retry_reports_attempt_error_and_delay() -> None:
    reports: list[tuple[int, str, float]] = []
    clock = FakeClock()
    await retry_call(Flaky(failures=2), policy=RetryPolicy(jitter=0.0), clock=clock,
                     rng=random.Random(1), deadline=None, should_retry=retry_transient,
                     on_retry=lambda n, err, delay: reports.append((n, str(err), delay)))
    assert reports == [(1, "server error 503", 1.0), (2, "server error 503", 2.0)]


def test_impossible_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.5)
    with pytest.raises(ValueError, match="attempt"):
        RetryPolicy(max_attempts=0)
