"""The cooldown gate after a 429."""

from __future__ import annotations

import pytest

from desktop_app.resilience.clock import FakeClock
from desktop_app.resilience.cooldown import CooldownGate


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
