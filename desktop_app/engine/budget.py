"""Spending caps for the cloud: what has been spent today and this month, kept
current as calls are billed, and the router's "over budget" reason."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

from desktop_app.resilience.clock import Clock


@dataclasses.dataclass(frozen=True)
class Budget:
    daily_usd: float | None = None
    monthly_usd: float | None = None


class SpendTracker:
    """Dollars spent across cloud providers, per calendar day and month (local time).

    Loaded from the store at start; every billed call adds to it; the day's and
    the month's totals start again from zero when the date rolls over, without
    waiting for a restart.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._day = self.today()
        self._today: dict[str, float] = {}
        self._month: dict[str, float] = {}

    def today(self) -> dt.date:
        return dt.date.fromtimestamp(self._clock.time())

    def load(self, day: dt.date, today: Mapping[str, float], month: Mapping[str, float]) -> None:
        self._day, self._today, self._month = day, dict(today), dict(month)

    def add(self, provider: str, cost_usd: float) -> None:
        self._roll_over()
        self._today[provider] = self._today.get(provider, 0.0) + cost_usd
        self._month[provider] = self._month.get(provider, 0.0) + cost_usd

    def over(self, budget: Budget) -> str | None:
        """The reason the cloud is skipped, or None while under both caps."""
        self._roll_over()
        today, month = sum(self._today.values()), sum(self._month.values())
        if budget.daily_usd is not None and today >= budget.daily_usd:
            return f"over budget: ${today:.2f} spent today of a ${budget.daily_usd:.2f} daily cap"
        if budget.monthly_usd is not None and month >= budget.monthly_usd:
            return (f"over budget: ${month:.2f} spent this month of a "
                    f"${budget.monthly_usd:.2f} monthly cap")
        return None

    def _roll_over(self) -> None:
        now = self.today()
        if now == self._day:
            return
        if (now.year, now.month) != (self._day.year, self._day.month):
            self._month = {}
        self._today = {}
        self._day = now
