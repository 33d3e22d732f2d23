"""Spending caps for the cloud: what has been spent today and this month, what
calls in flight may still cost, and the reasons a call is refused.

Money is never spent twice or over the cap: before each paid call its expected
cost is *reserved* (``SpendingCap.reserve``); a call whose reservation would
pass a cap is never made. When the call ends its real cost is added (through
the metrics sink) and the reservation is released, so parallel jobs, or the
several calls of a multi-image job, cannot all pass a check made while nothing
had been billed yet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Callable, Mapping

from desktop_app.resilience.clock import Clock

# Costs are estimates in dollars; a reservation that lands on the cap to within
# this much still fits (two $0.04 images under a $0.08 cap).
_EPSILON_USD = 1e-9


@dataclasses.dataclass(frozen=True)
class Budget:
    daily_usd: float | None = None
    monthly_usd: float | None = None


class SpendTracker:
    """Dollars spent across cloud providers, per calendar day and month (local time),
    plus what the calls in flight have reserved.

    Loaded from the store at start; every billed call adds to it; the day's and
    the month's totals start again from zero when the date rolls over, without
    waiting for a restart. Reservations belong to calls in flight, not to a day.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._day = self.today()
        self._today: dict[str, float] = {}
        self._month: dict[str, float] = {}
        self._held: dict[int, float] = {}
        self._ids = itertools.count(1)

    def today(self) -> dt.date:
        return dt.date.fromtimestamp(self._clock.time())

    def load(self, day: dt.date, today: Mapping[str, float], month: Mapping[str, float]) -> None:
        self._day, self._today, self._month = day, dict(today), dict(month)

    def add(self, provider: str, cost_usd: float) -> None:
        self._roll_over()
        self._today[provider] = self._today.get(provider, 0.0) + cost_usd
        self._month[provider] = self._month.get(provider, 0.0) + cost_usd

    @property
    def held_usd(self) -> float:
        """What calls in flight have reserved and not yet settled."""
        return sum(self._held.values())

    def over(self, budget: Budget) -> str | None:
        """The reason the cloud is skipped, or None while a cap still has room."""
        return self._refusal(budget, 0.0, "")

    def reserve(self, budget: Budget, provider: str, expected_usd: float,
                what: str) -> Reservation:
        """Hold ``expected_usd`` for one call, or raise ``OverBudget`` naming the cap."""
        if expected_usd <= 0:
            return Reservation(None)
        reason = self._refusal(budget, expected_usd, what)
        if reason is not None:
            raise OverBudget(reason)
        key = next(self._ids)
        self._held[key] = expected_usd
        return Reservation(lambda: self._held.pop(key, None))

    def _refusal(self, budget: Budget, extra: float, what: str) -> str | None:
        self._roll_over()
        held = self.held_usd
        for label, spent, cap in (
            ("today", sum(self._today.values()), budget.daily_usd),
            ("this month", sum(self._month.values()), budget.monthly_usd),
        ):
            if cap is None:
                continue
            period = "daily" if label == "today" else "monthly"
            in_flight = f" and ${held:.2f} held for calls in flight" if held > 0 else ""
            if extra <= 0 and spent + held >= cap - _EPSILON_USD:
                return (f"over budget: ${spent:.2f} spent {label}{in_flight} of a "
                        f"${cap:.2f} {period} cap")
            if extra > 0 and spent + held + extra > cap + _EPSILON_USD:
                return (f"over budget: {what} (up to ${extra:.2f}) would pass the ${cap:.2f} "
                        f"{period} cap (${spent:.2f} spent {label}{in_flight})")
        return None

    def _roll_over(self) -> None:
        now = self.today()
        if now == self._day:
            return
        if (now.year, now.month) != (self._day.year, self._day.month):
            self._month = {}
        self._today = {}
        self._day = now


class OverBudget(Exception):
    """A paid call was not made: its expected cost would pass a spending cap."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Reservation:
    """Money held for one call; ``release()`` once the call has ended (its real
    cost is on the tracker by then). Releasing twice is harmless."""

    __slots__ = ("_release",)

    def __init__(self, release: Callable[[], object] | None) -> None:
        self._release = release

    def release(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


class SpendingCap:
    """The engine's caps as the router and the failover loop use them.

    ``budget`` is read on every use, so new caps from Settings apply to the next call.
    """

    def __init__(self, spend: SpendTracker, budget: Callable[[], Budget]) -> None:
        self._spend = spend
        self._budget = budget

    def skip_reason(self, paid: bool) -> str | None:
        """Why a paid provider is left out of a route right now, if it is."""
        return self._spend.over(self._budget()) if paid else None

    def reserve(self, provider: str, expected_usd: float, what: str) -> Reservation:
        return self._spend.reserve(self._budget(), provider, expected_usd, what)
