"""Our own circuit breaker (ARCHITECTURE.md, "Circuit breaker").

Libraries were rejected because they count consecutive failures, let any
number of trial calls through after the cool-off, count an ignored error as a
success and mishandle cancellation. This one:

- CLOSED: outcomes go into a sliding window (last N calls, or calls of the last
  N seconds). Once it holds ``min_calls``, it opens when the failure rate
  reaches ``failure_rate`` or the slow-call rate reaches ``slow_rate``.
- OPEN: rejects at once with ``retry_after``. Open time is
  ``open_base_s * 2**(opens-1)`` capped at ``open_max_s``, and never shorter
  than a server Retry-After carried by a failure in the window.
- HALF_OPEN, entered lazily when the open time is up: at most
  ``half_open_calls`` trial permits out at once; a trial not back within
  ``trial_timeout_s`` counts as failed. Any failed trial re-opens (longer);
  when ``half_open_calls`` trials have succeeded it closes and forgets.
- An ignored outcome or a cancellation hands the permit back (freeing the
  trial slot). A permit issued before the latest transition is *late*: its
  outcome is counted in ``late_outcomes`` and changes nothing else.
- FORCED_OPEN is left only through ``reset()``. A provider turned off in
  Settings is not a breaker state: its slot's ``enabled`` keeps it out of routes.

Single event loop, no locks; every instant comes from the injected clock.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from desktop_app.domain.errors import BreakerEffect, CircuitOpen, ProviderError
from desktop_app.resilience.clock import Clock
from desktop_app.resilience.window import Outcome, OutcomeWindow

log = logging.getLogger(__name__)


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"


@dataclass(frozen=True)
class BreakerConfig:
    """Thresholds and timings of one provider's breaker (all are settings)."""

    window: Literal["count", "time"] = "count"
    window_size: float = 6  # calls for "count", seconds for "time"
    min_calls: int = 3
    failure_rate: float = 0.5
    slow_rate: float = 1.0
    slow_call_s: float = 120.0
    open_base_s: float = 30.0
    open_max_s: float = 300.0
    half_open_calls: int = 1
    trial_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        problems = []
        if self.window not in ("count", "time"):
            problems.append(f"window must be 'count' or 'time', not {self.window!r}")
        if self.window_size <= 0:
            problems.append("window size must be positive")
        if self.min_calls < 1:
            problems.append("minimum number of calls must be at least 1")
        if self.window == "count" and self.min_calls > self.window_size:
            problems.append(
                f"minimum calls ({self.min_calls}) cannot exceed a count window of "
                f"{self.window_size:g} calls, or the breaker could never open"
            )
        for name in ("failure_rate", "slow_rate"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                problems.append(f"{name.replace('_', ' ')} must be in (0, 1], not {value}")
        if self.slow_call_s <= 0 or self.trial_timeout_s <= 0:
            problems.append("slow-call threshold and trial timeout must be positive")
        if self.open_base_s <= 0 or self.open_max_s < self.open_base_s:
            problems.append("open time must be positive and its maximum at least its base")
        if self.half_open_calls < 1:
            problems.append("half-open trial calls must be at least 1")
        if problems:
            raise ValueError("Invalid breaker settings: " + "; ".join(problems))

    @classmethod
    def local_gpu(cls) -> BreakerConfig:
        return cls(window="count", window_size=6, min_calls=3, failure_rate=0.5,
                   open_base_s=30.0, open_max_s=300.0, half_open_calls=1,
                   trial_timeout_s=300.0)

    @classmethod
    def cloud(cls) -> BreakerConfig:
        return cls(window="time", window_size=120.0, min_calls=4, failure_rate=0.5,
                   open_base_s=30.0, open_max_s=600.0, half_open_calls=1,
                   trial_timeout_s=120.0)


@dataclass(frozen=True)
class BreakerTransition:
    provider: str
    old: BreakerState
    new: BreakerState
    reason: str
    at: float  # monotonic instant at which the change took effect
    retry_after_s: float | None


@dataclass(frozen=True)
class BreakerSnapshot:
    state: BreakerState
    reason: str
    retry_after_s: float | None
    failure_rate: float | None  # None while the window is empty
    slow_rate: float | None
    calls_in_window: int
    opens: int  # consecutive openings since the breaker last closed
    trials_in_flight: int
    late_outcomes: int = 0  # outcomes that arrived after the state they were issued in


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class Permit:
    """Leave to make one call; report its outcome exactly once.

    Later reports are no-ops. A permit issued before the breaker's latest
    transition is late: its outcome changes no state.
    """

    __slots__ = ("_breaker", "_resolved", "generation", "trial")

    def __init__(self, breaker: CircuitBreaker, generation: int, trial: bool) -> None:
        self._breaker = breaker
        self.generation = generation
        self.trial = trial
        self._resolved = False

    @property
    def resolved(self) -> bool:
        return self._resolved

    def _take(self) -> bool:
        if self._resolved:
            return False
        self._resolved = True
        return True

    def success(self, duration_s: float) -> None:
        if self._take():
            self._breaker._outcome(self, failed=False, duration_s=duration_s, error=None)

    def failure(self, error: BaseException, duration_s: float) -> None:
        if self._take():
            self._breaker._outcome(self, failed=True, duration_s=duration_s, error=error)

    def ignore(self) -> None:
        if self._take():
            self._breaker._returned(self)

    def record(self, error: ProviderError | None, duration_s: float) -> None:
        """Count an outcome the way the error taxonomy says."""
        if error is None:
            self.success(duration_s)
        elif error.breaker is BreakerEffect.FAILURE:
            self.failure(error, duration_s)
        elif error.breaker is BreakerEffect.FORCE_OPEN:
            if self._take():
                reason = getattr(error, "reason", None) or error.message
                self._breaker._forced_by(self, str(reason))
        else:
            self.ignore()


@dataclass
class _Trials:
    deadlines: dict[Permit, float] = field(default_factory=dict)
    succeeded: int = 0
    slow: int = 0


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        config: BreakerConfig,
        clock: Clock,
        on_transition: Callable[[BreakerTransition], None] | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._clock = clock
        self.on_transition = on_transition
        self._state = BreakerState.CLOSED
        self._reason = "ready"
        self._generation = 0
        self._window = OutcomeWindow(config.window, config.window_size)
        self._opens = 0
        self._open_until = 0.0
        self._trials = _Trials()
        self._late = 0

    # -- reading ---------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        self._refresh()
        return self._state

    def retry_after(self) -> float | None:
        """Seconds until a call could pass; None if one can pass now (or never
        will by waiting: FORCED_OPEN, where ``try_acquire`` raises)."""
        self._refresh()
        now = self._clock.monotonic()
        if self._state is BreakerState.OPEN:
            return max(0.0, self._open_until - now)
        if self._state is BreakerState.HALF_OPEN and self._trials_full():
            return max(0.0, min(self._trials.deadlines.values()) - now)
        return None

    def snapshot(self) -> BreakerSnapshot:
        retry_after = self.retry_after()  # refreshes
        self._window.prune(self._clock.monotonic())
        return BreakerSnapshot(
            state=self._state,
            reason=self._reason,
            retry_after_s=retry_after,
            failure_rate=self._window.failure_rate(),
            slow_rate=self._window.slow_rate(),
            calls_in_window=self._window.calls,
            opens=self._opens,
            trials_in_flight=len(self._trials.deadlines),
            late_outcomes=self._late,
        )

    # -- calls -----------------------------------------------------------

    def try_acquire(self) -> Permit:
        """A permit for one call, or ``CircuitOpen`` saying why not and for how long."""
        self._refresh()
        state = self._state
        if state is BreakerState.CLOSED:
            return Permit(self, self._generation, trial=False)
        if state is BreakerState.HALF_OPEN and not self._trials_full():
            permit = Permit(self, self._generation, trial=True)
            self._trials.deadlines[permit] = self._clock.monotonic() + self.config.trial_timeout_s
            return permit
        wait = self.retry_after()
        if state is BreakerState.OPEN:
            message = f"breaker open after {self._reason}; next try in {_secs(wait)}"
        elif state is BreakerState.HALF_OPEN:
            busy = ("a trial call is" if self.config.half_open_calls == 1
                    else f"all {self.config.half_open_calls} trial calls are")
            message = f"breaker half-open: {busy} already in flight; next try in {_secs(wait)}"
        else:
            message = f"forced open: {self._reason}"
        raise CircuitOpen(message, retry_after=wait)

    # -- commands --------------------------------------------------------

    def force_open(self, reason: str) -> None:
        """Stop all calls until ``reset()`` (bad key, billing, GPU needs a restart).

        A forced-open breaker takes the new reason.
        """
        self._refresh()
        self._trials = _Trials()
        self._move(BreakerState.FORCED_OPEN, reason, self._clock.monotonic())

    def reset(self, reason: str = "settings changed") -> None:
        """Back to CLOSED with an empty window, from any state. Calls still in
        flight become late: their outcomes no longer count."""
        self._refresh()
        self._window.clear()
        self._opens = 0
        self._trials = _Trials()
        if self._state is BreakerState.CLOSED:
            self._generation += 1
            self._reason = reason
            return
        self._move(BreakerState.CLOSED, reason, self._clock.monotonic())

    # -- internals -------------------------------------------------------

    def _trials_full(self) -> bool:
        return len(self._trials.deadlines) >= self.config.half_open_calls

    def _refresh(self) -> None:
        """Apply what time alone decides: a trial that timed out, an open time that is up."""
        now = self._clock.monotonic()
        while True:
            if self._state is BreakerState.HALF_OPEN and self._trials.deadlines:
                first = min(self._trials.deadlines.values())
                if first <= now:
                    self._open(f"the trial call timed out after {self.config.trial_timeout_s:g} s",
                               at=first, not_before=None)
                    continue
            if self._state is BreakerState.OPEN and self._open_until <= now:
                self._trials = _Trials()
                self._move(BreakerState.HALF_OPEN, "open time is up; trying again",
                           self._open_until)
                continue
            return

    def _is_late(self, permit: Permit) -> bool:
        if permit.generation != self._generation:
            self._late += 1
            return True
        return False

    def _outcome(
        self, permit: Permit, *, failed: bool, duration_s: float, error: BaseException | None
    ) -> None:
        self._refresh()
        if self._is_late(permit):
            return
        now = self._clock.monotonic()
        slow = duration_s >= self.config.slow_call_s
        server_wait = _retry_after_of(error)
        not_before = now + server_wait if server_wait else None
        if permit.trial:
            self._trial_outcome(permit, failed=failed, slow=slow, error=error,
                                now=now, not_before=not_before)
            return
        self._window.prune(now)
        self._window.add(Outcome(at=now, failed=failed, slow=slow, not_before=not_before))
        self._check_thresholds(now)

    def _check_thresholds(self, now: float) -> None:
        window, config = self._window, self.config
        if window.calls < config.min_calls:
            return
        failure_rate = window.failure_rate() or 0.0
        slow_rate = window.slow_rate() or 0.0
        if failure_rate >= config.failure_rate:
            reason = f"{window.failed} of {window.calls} calls failed"
        elif slow_rate >= config.slow_rate:
            reason = (f"{window.slow} of {window.calls} calls were slow "
                      f"(over {config.slow_call_s:g} s)")
        else:
            return
        self._open(reason, at=now, not_before=window.not_before())

    def _trial_outcome(
        self, permit: Permit, *, failed: bool, slow: bool, error: BaseException | None,
        now: float, not_before: float | None,
    ) -> None:
        self._trials.deadlines.pop(permit, None)
        if failed:
            detail = f": {error}" if error is not None and str(error) else ""
            self._open(f"the trial call failed{detail}", at=now, not_before=not_before)
            return
        self._trials.succeeded += 1
        self._trials.slow += slow
        needed = self.config.half_open_calls
        if self._trials.succeeded < needed:
            return
        if self._trials.slow / needed >= self.config.slow_rate:
            self._open(f"{self._trials.slow} of {_plural(needed, 'trial call')} were slow",
                       at=now, not_before=None)
            return
        self._window.clear()
        self._opens = 0
        self._trials = _Trials()
        self._move(BreakerState.CLOSED, f"{_plural(needed, 'trial call')} succeeded", now)

    def _returned(self, permit: Permit) -> None:
        self._refresh()
        if self._is_late(permit):
            return
        self._trials.deadlines.pop(permit, None)

    def _forced_by(self, permit: Permit, reason: str) -> None:
        self._refresh()
        if self._is_late(permit):
            return
        self.force_open(reason)

    def _open(self, reason: str, *, at: float, not_before: float | None) -> None:
        self._opens += 1
        config = self.config
        open_s = min(config.open_max_s, config.open_base_s * 2 ** (self._opens - 1))
        self._open_until = max(at + open_s, not_before or 0.0)
        self._window.clear()
        self._trials = _Trials()
        self._move(BreakerState.OPEN, reason, at)

    def _move(self, new: BreakerState, reason: str, at: float) -> None:
        old = self._state
        self._state = new
        self._reason = reason
        self._generation += 1
        retry_after = (max(0.0, self._open_until - self._clock.monotonic())
                       if new is BreakerState.OPEN else None)
        if self.on_transition is None:
            return
        event = BreakerTransition(self.name, old, new, reason, at, retry_after)
        try:
            self.on_transition(event)
        except Exception:  # a listener's bug must not break the breaker's bookkeeping
            log.exception("breaker %s: transition listener failed", self.name)


def _retry_after_of(error: BaseException | None) -> float | None:
    value = getattr(error, "retry_after", None)
    if isinstance(value, int | float) and value > 0:
        return float(value)
    return None


def _secs(seconds: float | None) -> str:
    return f"{math.ceil(seconds or 0.0)} s"
