"""The cooldown gate after a 429, and reading the server's Retry-After."""

from __future__ import annotations

import email.utils

import pytest

from desktop_app.resilience.clock import FakeClock
from desktop_app.resilience.cooldown import CooldownGate, parse_retry_after


def test_gate_stays_closed_for_the_requested_time() -> None:
    clock = FakeClock()
    gate = CooldownGate(clock)
    assert gate.remaining() == 0.0
    gate.cool_down(20.0, "429 from openai")
    clock.advance(5)
    assert gate.remaining() == pytest.approx(15.0)
    assert gate.reason == "429 from openai"
    clock.advance(15)
    assert gate.remaining() == 0.0
    assert gate.reason == ""


def test_a_shorter_hint_never_shortens_an_active_cooldown() -> None:
    clock = FakeClock()
    gate = CooldownGate(clock)
    gate.cool_down(60.0, "first 429")
    clock.advance(10)
    gate.cool_down(5.0, "second 429")
    assert gate.remaining() == pytest.approx(50.0)
    assert gate.reason == "first 429"
    gate.cool_down(80.0, "third 429")
    assert gate.remaining() == pytest.approx(80.0)
    assert gate.reason == "third 429"


def test_clear_opens_the_gate_at_once() -> None:
    gate = CooldownGate(FakeClock())
    gate.cool_down(60.0, "429")
    gate.clear()
    assert gate.remaining() == 0.0


def test_retry_after_seconds() -> None:
    assert parse_retry_after({"Retry-After": "30"}, now=0.0) == 30.0
    assert parse_retry_after({"retry-after": " 1.5 "}, now=0.0) == 1.5


def test_retry_after_ms_wins_over_retry_after() -> None:
    headers = {"retry-after-ms": "250", "Retry-After": "1"}
    assert parse_retry_after(headers, now=0.0) == pytest.approx(0.25)


def test_retry_after_http_date_is_measured_from_the_wall_clock() -> None:
    clock = FakeClock()
    date = email.utils.formatdate(clock.time() + 42, usegmt=True)
    assert CooldownGate(clock).parse_retry_after({"Retry-After": date}) == pytest.approx(42.0)


def test_retry_after_date_in_the_past_means_no_wait() -> None:
    date = email.utils.formatdate(1_000.0, usegmt=True)
    assert parse_retry_after({"Retry-After": date}, now=2_000.0) == 0.0


@pytest.mark.parametrize(
    "headers",
    [{}, {"Retry-After": "soon"}, {"Retry-After": "-3"}, {"retry-after-ms": "nan"},
     {"content-type": "application/json"}],
)
def test_missing_or_garbled_retry_after_is_ignored(headers: dict[str, str]) -> None:
    assert parse_retry_after(headers, now=0.0) is None
