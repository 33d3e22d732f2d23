from __future__ import annotations

import datetime as dt

import pytest

from desktop_app.engine.budget import Budget, OverBudget, SpendTracker
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


def test_a_reservation_holds_money_until_it_is_released() -> None:
    spend = SpendTracker(_clock_at(2026, 11, 10, hour=12))
    cap = Budget(daily_usd=0.10)
    held = spend.reserve(cap, "openai", 0.06, "a call for 1 image on openai")
    with pytest.raises(OverBudget) as info:  # 0.06 held + 0.06 would pass 0.10
        spend.reserve(cap, "openai", 0.06, "a call for 1 image on openai")
    assert info.value.reason == (
        "over budget: a call for 1 image on openai (up to $0.06) would pass the $0.10 daily "
        "cap ($0.00 spent today and $0.06 held for calls in flight)")
    assert spend.over(cap) is None  # 0.06 of 0.10 is still under the cap

    spend.add("openai", 0.05)  # the call is billed less than its estimate
    held.release()
    held.release()  # twice is harmless
    assert spend.held_usd == 0.0
    again = spend.reserve(cap, "openai", 0.05, "a call for 1 image on openai")
    assert spend.over(cap) == (
        "over budget: $0.05 spent today and $0.05 held for calls in flight of a $0.10 daily cap")
    again.release()


def test_a_free_call_needs_no_reservation_even_over_the_cap() -> None:
    spend = SpendTracker(_clock_at(2026, 11, 10, hour=12))
    spend.add("openai", 5.0)
    spend.reserve(Budget(daily_usd=1.0), "local", 0.0, "a call").release()
    assert spend.held_usd == 0.0
