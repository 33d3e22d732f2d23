"""The breaker's rules, one by one (ARCHITECTURE.md, "Circuit breaker")."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from desktop_app.domain.errors import (
    CircuitOpen,
    ContentRejected,
    DeviceFault,
    Misconfigured,
    QuotaExhausted,
    RateLimited,
    Transient,
)
from desktop_app.resilience.breaker import BreakerConfig, BreakerState, CircuitBreaker
from desktop_app.resilience.clock import FakeClock
from tests.resilience.recorder import Recorder

MakeBreaker = Callable[..., CircuitBreaker]
BOOM = Transient("server error 503")


def fail(breaker: CircuitBreaker, n: int = 1, duration: float = 1.0,
         error: BaseException = BOOM) -> None:
    for _ in range(n):
        breaker.try_acquire().failure(error, duration)


def succeed(breaker: CircuitBreaker, n: int = 1, duration: float = 1.0) -> None:
    for _ in range(n):
        breaker.try_acquire().success(duration)


def open_breaker(breaker: CircuitBreaker) -> None:
    fail(breaker, breaker.config.min_calls)
    assert breaker.state is BreakerState.OPEN


# -- CLOSED: window and thresholds -------------------------------------------


def test_failures_below_min_calls_never_open(make_breaker: MakeBreaker) -> None:
    breaker = make_breaker(min_calls=3)
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN


def test_opens_exactly_at_the_failure_rate_threshold(make_breaker: MakeBreaker) -> None:
    breaker = make_breaker(window_size=6, min_calls=4, failure_rate=0.5)
    succeed(breaker, 2)
    fail(breaker, 1)
    assert breaker.state is BreakerState.CLOSED  # 1 of 3: too few calls anyway
    fail(breaker, 1)  # 2 of 4 = 50 %
    assert breaker.state is BreakerState.OPEN


def test_failure_rate_below_threshold_stays_closed(make_breaker: MakeBreaker) -> None:
    breaker = make_breaker(window_size=6, min_calls=3, failure_rate=0.5)
    for _ in range(10):
        succeed(breaker, 2)
        fail(breaker, 1)  # one in three never reaches 50 %
    assert breaker.state is BreakerState.CLOSED


def test_count_window_forgets_calls_older_than_the_last_n(make_breaker: MakeBreaker) -> None:
    breaker = make_breaker(window_size=4, min_calls=4, failure_rate=0.75)
    fail(breaker, 2)
    succeed(breaker, 2)
    assert breaker.snapshot().failure_rate == 0.5
    succeed(breaker, 2)  # the two failures slide out
    snap = breaker.snapshot()
    assert snap.calls_in_window == 4 and snap.failure_rate == 0.0
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED  # 2 of 4 < 75 %


def test_time_window_forgets_calls_older_than_n_seconds(
    make_breaker: MakeBreaker, clock: FakeClock
) -> None:
    breaker = make_breaker(window="time", window_size=120, min_calls=4)
    fail(breaker, 3)
    clock.advance(121)
    fail(breaker, 1)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().calls_in_window == 1
    clock.advance(60)
    fail(breaker, 3)  # 4 failures within 60 s
    assert breaker.state is BreakerState.OPEN


def test_slow_calls_open_even_when_they_succeed(make_breaker: MakeBreaker) -> None:
    breaker = make_breaker(min_calls=3, slow_rate=0.6, slow_call_s=10.0)
    succeed(breaker, 1, duration=1.0)
    succeed(breaker, 1, duration=10.0)
    assert breaker.state is BreakerState.CLOSED
    succeed(breaker, 1, duration=30.0)  # 2 of 3 slow
    assert breaker.state is BreakerState.OPEN
    assert "were slow" in breaker.snapshot().reason


def test_open_breaker_rejects_with_countdown_and_reason(
    make_breaker: MakeBreaker, clock: FakeClock
) -> None:
    breaker = make_breaker(min_calls=4, open_base_s=30.0)
    succeed(breaker, 1)
    fail(breaker, 3)
    clock.advance(5)
    with pytest.raises(CircuitOpen) as caught:
        breaker.try_acquire()
    assert caught.value.retry_after == pytest.approx(25.0)
    assert caught.value.message == "breaker open after 3 of 4 calls failed; next try in 25 s"
    assert breaker.retry_after() == pytest.approx(25.0)


# -- OPEN: open time ------------------------------------------------------------


def test_open_time_doubles_per_reopen_and_is_capped(
    make_breaker: MakeBreaker, clock: FakeClock
) -> None:
    breaker = make_breaker(min_calls=1, open_base_s=30.0, open_max_s=100.0)
    open_breaker(breaker)
    waits = []
    for _ in range(4):
        wait = breaker.retry_after()
        assert wait is not None
        waits.append(wait)
        clock.advance(wait)
        assert breaker.state is BreakerState.HALF_OPEN
        fail(breaker)  # the trial fails: re-open
    assert waits == [30.0, 60.0, 100.0, 100.0]
    assert breaker.snapshot().opens == 5


def test_server_retry_after_floors_the_open_time(make_breaker: MakeBreaker) -> None:
    breaker = make_breaker(min_calls=2, open_base_s=30.0, open_max_s=60.0)
    fail(breaker, 1, error=RateLimited("slow down", retry_after=90.0))
    fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after() == pytest.approx(90.0)  # above both base and cap


def test_short_server_retry_after_does_not_shorten_the_open_time(
    make_breaker: MakeBreaker,
) -> None:
    breaker = make_breaker(min_calls=1, open_base_s=30.0)
    fail(breaker, 1, error=RateLimited("slow down", retry_after=2.0))
    assert breaker.retry_after() == pytest.approx(30.0)


# -- HALF_OPEN -------------------------------------------------------------------


def test_half_open_is_entered_lazily_when_the_open_time_is_up(
    make_breaker: MakeBreaker, clock: FakeClock, recorder: Recorder
) -> None:
    breaker = make_breaker(min_calls=1, open_base_s=30.0)
    open_breaker(breaker)
    clock.advance(29.9)
    assert breaker.state is BreakerState.OPEN
    clock.advance(0.1)
    assert recorder.edges()[-1] == ("closed", "open")  # nothing happens until asked
    assert breaker.state is BreakerState.HALF_OPEN
    assert recorder.edges()[-1] == ("open", "half_open")
    assert recorder.events[-1].at == pytest.approx(clock.monotonic())


def test_half_open_lets_only_the_allowed_number_of_trials_through(
    make_breaker: MakeBreaker, clock: FakeClock
) -> None:
    breaker = make_breaker(min_calls=1, half_open_calls=2, trial_timeout_s=50.0)
    open_breaker(breaker)
    clock.advance(30)
    first, second = breaker.try_acquire(), breaker.try_acquire()
    with pytest.raises(CircuitOpen) as caught:
        breaker.try_acquire()
    assert "all 2 trial calls are already in flight" in caught.value.message
    assert caught.value.retry_after == pytest.approx(50.0)
    assert breaker.snapshot().trials_in_flight == 2
    first.success(1.0)
    assert breaker.state is BreakerState.HALF_OPEN  # one trial still out
    second.success(1.0)
    assert breaker.state is BreakerState.CLOSED


def test_successful_trial_closes_and_forgets_history(
    make_breaker: MakeBreaker, clock: FakeClock
) -> None:
    breaker = make_breaker(min_calls=1, open_base_s=30.0)
    open_breaker(breaker)
    clock.advance(30)
    fail(breaker)  # first trial fails: open for 60 s
    clock.advance(60)
    succeed(breaker)
    snap = breaker.snapshot()
    assert snap.state is BreakerState.CLOSED
    assert snap.calls_in_window == 0 and snap.opens == 0
    fail(breaker)  # a fresh opening starts again from the base time
    assert breaker.retry_after() == pytest.approx(30.0)


def test_failed_trial_reopens_for_longer(make_breaker: MakeBreaker, clock: FakeClock) -> None:
    breaker = make_breaker(min_calls=1, open_base_s=30.0)
    open_breaker(breaker)
    clock.advance(30)
    breaker.try_acquire().failure(Transient("still down"), 1.0)
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_after() == pytest.approx(60.0)
    assert breaker.snapshot().reason == "the trial call failed: still down"


def test_trial_that_outlives_its_timeout_counts_as_failure(
    make_breaker: MakeBreaker, clock: FakeClock, recorder: Recorder
) -> None:
    breaker = make_breaker(min_calls=1, open_base_s=30.0, trial_timeout_s=300.0)
    open_breaker(breaker)
    clock.advance(30)
    trial = breaker.try_acquire()
    clock.advance(299)
    assert breaker.state is BreakerState.HALF_OPEN
    clock.advance(1)
    assert breaker.state is BreakerState.OPEN
    assert "timed out after 300 s" in breaker.snapshot().reason
    assert breaker.retry_after() == pytest.approx(60.0)
    trial.success(300.0)  # too late: it no longer counts
    assert breaker.state is BreakerState.OPEN
    assert recorder.edges()[-1] == ("half_open", "open")


def test_slow_successful_trial_reopens(make_breaker: MakeBreaker, clock: FakeClock) -> None:
    breaker = make_breaker(min_calls=1, slow_call_s=10.0, slow_rate=1.0)
    open_breaker(breaker)
    clock.advance(30)
    succeed(breaker, duration=12.0)
    assert breaker.state is BreakerState.OPEN


# -- permits returned ------------------------------------------------------------


def test_ignored_outcome_returns_the_trial_slot(
    make_breaker: MakeBreaker, clock: FakeClock
) -> None:
    breaker = make_breaker(min_calls=1)
    open_breaker(breaker)
    clock.advance(30)
    breaker.try_acquire().record(ContentRejected("refused"), 1.0)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.snapshot().trials_in_flight == 0
    breaker.try_acquire().ignore()  # a cancellation hands the slot back too
    succeed(breaker)
    assert breaker.state is BreakerState.CLOSED


def test_ignored_outcomes_do_not_count_in_the_window(make_breaker: MakeBreaker) -> None:
    breaker = make_breaker(min_calls=3)
    for _ in range(5):
        breaker.try_acquire().record(RateLimited("429", retry_after=1.0), 1.0)
    snap = breaker.snapshot()
    assert snap.calls_in_window == 0 and snap.state is BreakerState.CLOSED


def test_a_permit_resolves_only_once(make_breaker: MakeBreaker) -> None:
    breaker = make_breaker(min_calls=2)
    permit = breaker.try_acquire()
    permit.failure(BOOM, 1.0)
    permit.failure(BOOM, 1.0)
    permit.success(1.0)
    assert breaker.snapshot().calls_in_window == 1
    assert breaker.state is BreakerState.CLOSED


def test_late_outcome_never_changes_state(
    make_breaker: MakeBreaker, clock: FakeClock, recorder: Recorder
) -> None:
    breaker = make_breaker(min_calls=1)
    stale = [breaker.try_acquire() for _ in range(3)]
    stale[0].failure(BOOM, 1.0)  # opens
    clock.advance(30)
    trial = breaker.try_acquire()
    events_before = len(recorder.events)
    stale[1].failure(BOOM, 1.0)  # issued while CLOSED: must not re-open HALF_OPEN
    stale[2].record(Misconfigured("bad key"), 1.0)  # nor force it open
    assert breaker.state is BreakerState.HALF_OPEN
    assert len(recorder.events) == events_before
    assert breaker.snapshot().late_outcomes == 2
    trial.success(1.0)
    assert breaker.state is BreakerState.CLOSED


def test_outcome_from_before_a_reset_does_not_count(make_breaker: MakeBreaker) -> None:
    breaker = make_breaker(min_calls=1)
    old = breaker.try_acquire()
    breaker.reset("settings changed")
    old.failure(BOOM, 1.0)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().calls_in_window == 0


# -- forced open and disabled ------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (Misconfigured("No OpenAI API key"), "No OpenAI API key"),
        (QuotaExhausted("insufficient_quota"), "check billing: insufficient_quota"),
        (DeviceFault("illegal memory access"), "restart GPU worker: illegal memory access"),
    ],
)
def test_settings_and_device_errors_force_the_breaker_open(
    make_breaker: MakeBreaker, clock: FakeClock, error: Exception, reason: str
) -> None:
    breaker = make_breaker()
    breaker.try_acquire().record(error, 1.0)  # type: ignore[arg-type]
    clock.advance(10_000)
    assert breaker.state is BreakerState.FORCED_OPEN
    with pytest.raises(CircuitOpen) as caught:
        breaker.try_acquire()
    assert caught.value.message == f"forced open: {reason}"
    assert caught.value.retry_after is None
    assert breaker.retry_after() is None


def test_forced_open_is_left_only_by_reset(make_breaker: MakeBreaker, clock: FakeClock) -> None:
    breaker = make_breaker(min_calls=1)
    breaker.force_open("No OpenAI API key: add one in Settings")
    clock.advance(1e6)
    assert breaker.state is BreakerState.FORCED_OPEN
    breaker.reset("settings changed")
    assert breaker.state is BreakerState.CLOSED
    succeed(breaker)


def test_reset_from_open_closes_at_once(make_breaker: MakeBreaker) -> None:
    breaker = make_breaker(min_calls=1)
    open_breaker(breaker)
    breaker.reset("user pressed try again")
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().opens == 0


# -- events -----------------------------------------------------------------------------


def test_every_transition_is_announced_with_a_reason(
    make_breaker: MakeBreaker, clock: FakeClock, recorder: Recorder
) -> None:
    breaker = make_breaker(min_calls=2)
    fail(breaker, 2)
    clock.advance(30)
    assert breaker.state is BreakerState.HALF_OPEN
    succeed(breaker)
    breaker.force_open("bad key")
    breaker.reset("settings changed")
    assert recorder.edges() == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
        ("closed", "forced_open"),
        ("forced_open", "closed"),
    ]
    assert all(e.reason and e.provider == "local" for e in recorder.events)
    assert recorder.events[0].reason == "2 of 2 calls failed"
    assert recorder.events[0].retry_after_s == pytest.approx(30.0)


def test_a_failing_listener_does_not_break_the_breaker(clock: FakeClock) -> None:
    def listener(_: object) -> None:
        raise RuntimeError("listener bug")

    breaker = CircuitBreaker("cloud", BreakerConfig(min_calls=1), clock, on_transition=listener)
    fail(breaker)
    assert breaker.state is BreakerState.OPEN


# -- settings ---------------------------------------------------------------------------


def test_presets_match_the_documented_starting_values() -> None:
    local, cloud = BreakerConfig.local_gpu(), BreakerConfig.cloud()
    assert (local.window, local.window_size, local.min_calls, local.failure_rate) == (
        "count", 6, 3, 0.5)
    assert (local.open_base_s, local.open_max_s, local.half_open_calls,
            local.trial_timeout_s) == (30.0, 300.0, 1, 300.0)
    assert (cloud.window, cloud.window_size, cloud.min_calls, cloud.failure_rate) == (
        "time", 120.0, 4, 0.5)
    assert (cloud.open_base_s, cloud.open_max_s, cloud.half_open_calls,
            cloud.trial_timeout_s) == (30.0, 600.0, 1, 120.0)


def test_impossible_settings_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="could never open"):
        BreakerConfig(window="count", window_size=3, min_calls=5)
    with pytest.raises(ValueError, match="failure rate"):
        BreakerConfig(failure_rate=0.0)
