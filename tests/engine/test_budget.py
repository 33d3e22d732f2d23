from __future__ import annotations

import datetime as dt

from desktop_app.engine.budget import Budget, SpendTracker
from desktop_app.resilience.clock import FakeClock


def _clock_at(year: int, month: int, day: int, hour: int = 23) -> FakeClock:
    when = dt.datetime(year, month, day, hour, 30).timestamp()
    return FakeClock(wall_start=when)


def test_the_daily_cap_skips_the_cloud_and_frees_it_after_midnight() -> None:
    clock = _clock_at(2026, 11, 30)
    spend = SpendTracker(clock)
    cap = Budget(daily_usd=1.0, monthly_usd=5.0)
    spend.add("openai", 0.6)
    assert spend.over(cap) is None
    spend.add("openai", 0.6)
    assert spend.over(cap) == "over budget: $1.20 spent today of a $1.00 daily cap"
    clock.advance(3600)  # 00:30 on the 1st of December: a new day and a new month
    assert spend.over(cap) is None


def test_the_monthly_cap_holds_across_days_of_the_same_month() -> None:
    clock = _clock_at(2026, 11, 10)
    spend = SpendTracker(clock)
    spend.load(spend.today(), {"openai": 0.0}, {"openai": 4.5})
    spend.add("openai", 0.6)
    clock.advance(86_400)
    assert spend.over(Budget(monthly_usd=5.0)) == (
        "over budget: $5.10 spent this month of a $5.00 monthly cap")
