"""Breaker invariants under random sequences of calls, outcomes and clock steps."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop_app.domain.errors import (
    CircuitOpen,
    ContentRejected,
    Misconfigured,
    ProviderError,
    RateLimited,
    Transient,
)
from desktop_app.resilience.breaker import (
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
    Permit,
)
from desktop_app.resilience.clock import FakeClock
from tests.resilience.recorder import Recorder

S = BreakerState
# Edges the breaker may take on its own (thresholds, time, trial outcomes).
AUTOMATIC_EDGES = {
    (S.CLOSED, S.OPEN),
    (S.OPEN, S.HALF_OPEN),
    (S.HALF_OPEN, S.OPEN),
    (S.HALF_OPEN, S.CLOSED),
}
OUTCOME_ERRORS: list[ProviderError | None] = [
    None,
    Transient("503"),
    RateLimited("429", retry_after=45.0),
    ContentRejected("refused"),
    Misconfigured("bad key"),
]


@dataclass(frozen=True)
class Op:
    kind: str
    index: int = 0
    value: float = 0.0


ops = st.one_of(
    st.builds(Op, st.just("acquire")),
    st.builds(Op, st.sampled_from(["success", "failure", "ignore", "record"]),
              st.integers(0, 50), st.floats(0.0, 400.0)),
    st.builds(Op, st.just("advance"), st.just(0), st.floats(0.0, 700.0)),
    # step to a fraction of the current retry_after: probes the instant a wait ends
    st.builds(Op, st.just("advance_near"), st.just(0), st.sampled_from([0.5, 0.999, 1.0, 1.001])),
    st.builds(Op, st.sampled_from(["force", "reset"])),
)

configs = st.builds(
    BreakerConfig,
    window=st.sampled_from(["count", "time"]),
    window_size=st.sampled_from([4, 6, 10]),
    min_calls=st.integers(1, 4),
    failure_rate=st.sampled_from([0.25, 0.5, 1.0]),
    slow_rate=st.sampled_from([0.5, 1.0]),
    slow_call_s=st.sampled_from([60.0, 120.0]),
    open_base_s=st.sampled_from([10.0, 30.0]),
    open_max_s=st.sampled_from([30.0, 300.0]),
    half_open_calls=st.integers(1, 3),
    trial_timeout_s=st.sampled_from([50.0, 300.0]),
)


class Run:
    """Drives one breaker and checks every invariant after every step."""

    def __init__(self, config: BreakerConfig) -> None:
        self.clock = FakeClock()
        self.events = Recorder()
        self.breaker = CircuitBreaker("p", config, self.clock, on_transition=self.events)
        self.config = config
        self.permits: list[tuple[Permit, int]] = []  # permit and the epoch it was issued in
        self.silent_resets = 0  # a reset while CLOSED announces nothing but starts a new epoch
        self.blocked_until: float | None = None  # seen OPEN: no permit before this instant

    def epoch(self) -> int:
        return len(self.events.events) + self.silent_resets

    def step(self, op: Op) -> None:
        before = len(self.events.events)
        state_before = self.breaker.state  # applies what time alone decides
        allowed_manual: set[BreakerState] = set()
        if op.kind == "acquire":
            self.acquire()
        elif op.kind == "advance":
            self.clock.advance(op.value)
        elif op.kind == "advance_near":
            self.clock.advance((self.breaker.retry_after() or 1.0) * op.value)
        elif op.kind == "force":
            allowed_manual = {S.FORCED_OPEN}
            self.breaker.force_open("forced by test")
        elif op.kind == "reset":
            allowed_manual = {S.CLOSED}
            if state_before is S.CLOSED:
                self.silent_resets += 1
            self.breaker.reset("reset by test")
            self.blocked_until = None
        elif self.permits:
            self.resolve(op, before, allowed_manual)
        self.check_edges(before, allowed_manual)
        self.check_state()

    def acquire(self) -> None:
        now = self.clock.monotonic()
        epoch = self.epoch()
        try:
            permit = self.breaker.try_acquire()
        except CircuitOpen:
            return
        assert self.blocked_until is None or now >= self.blocked_until, (
            "an OPEN breaker handed out a permit before its retry_after")
        self.permits.append((permit, epoch))

    def resolve(self, op: Op, before: int, allowed_manual: set[BreakerState]) -> None:
        # mostly a permit still out, sometimes any (resolving twice must be a no-op)
        pending = [p for p in self.permits if not p[0].resolved] if op.index % 4 else []
        pool = pending or self.permits
        permit, issued_epoch = pool[op.index % len(pool)]
        late = issued_epoch != self.epoch() and not permit.resolved
        state = self.breaker.state
        if op.kind == "success":
            permit.success(op.value)
        elif op.kind == "failure":
            permit.failure(Transient("down"), op.value)
        elif op.kind == "ignore":
            permit.ignore()
        else:
            error = OUTCOME_ERRORS[op.index % len(OUTCOME_ERRORS)]
            if error is not None and error.breaker.value == "force_open":
                allowed_manual.add(S.FORCED_OPEN)
            permit.record(error, op.value)
        if late:
            assert self.breaker.state is state, "a late outcome changed the state"
            assert len(self.events.events) == before, "a late outcome caused a transition"

    def check_edges(self, before: int, allowed_manual: set[BreakerState]) -> None:
        for event in self.events.events[before:]:
            edge = (event.old, event.new)
            assert edge in AUTOMATIC_EDGES or event.new in allowed_manual, f"illegal edge {edge}"
            assert event.reason
        chain = self.events.events
        for earlier, later in itertools.pairwise(chain):
            assert earlier.new is later.old, "transitions must chain"

    def check_state(self) -> None:
        snap = self.breaker.snapshot()
        assert snap.trials_in_flight <= self.config.half_open_calls
        if snap.state is not S.HALF_OPEN:
            assert snap.trials_in_flight == 0
        if snap.state is S.OPEN:
            assert snap.retry_after_s is not None and snap.retry_after_s > 0
            until = self.clock.monotonic() + snap.retry_after_s
            self.blocked_until = until
        elif snap.state is S.CLOSED:
            self.blocked_until = None
        if self.events.events:
            assert self.events.events[-1].new is snap.state


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, steps=st.lists(ops, max_size=80))
def test_breaker_invariants_hold_under_random_sequences(config: BreakerConfig,
                                                        steps: list[Op]) -> None:
    run = Run(config)
    for op in steps:
        run.step(op)


@settings(max_examples=200, deadline=None)
@given(config=configs, steps=st.lists(ops, max_size=60))
def test_an_open_breaker_rejects_until_its_retry_after(config: BreakerConfig,
                                                       steps: list[Op]) -> None:
    run = Run(config)
    for op in steps:
        run.step(op)
    if run.breaker.state is S.OPEN:
        wait = run.breaker.retry_after()
        assert wait is not None
        run.clock.advance(wait * 0.999)
        try:
            run.breaker.try_acquire()
        except CircuitOpen as rejected:
            assert rejected.retry_after is not None and rejected.retry_after > 0
        else:
            raise AssertionError("OPEN breaker let a call through before retry_after")
        run.clock.advance(wait * 0.001 + 1e-9)
        run.breaker.try_acquire()  # the time is up: a trial may go
