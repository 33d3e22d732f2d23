from __future__ import annotations

import dataclasses

import pytest
from pytestqt.qtbot import QtBot

from desktop_app.domain.errors import Misconfigured
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.engine import ProviderStatus
from desktop_app.engine.metrics import MetricsSnapshot
from desktop_app.providers.base import Health, HealthState, ProviderKind
from desktop_app.resilience.breaker import BreakerSnapshot, BreakerState
from desktop_app.store.metrics import ProviderTotals
from desktop_app.ui.metrics_panel import MetricsPanel
from desktop_app.ui.provider_status import Light, ProviderIndicator, ProviderStatusBar
from desktop_app.ui.qt_events import EngineSignals
from tests.fakes.scripted_provider import ScriptedProvider
from tests.ui.conftest import EngineMaker, drive


def status(name: str = "openai", *, state: BreakerState = BreakerState.CLOSED,
           reason: str = "", retry_after: float | None = None, busy: bool = False,
           health: Health | None = None, enabled: bool = True) -> ProviderStatus:
    metrics = MetricsSnapshot(name, successes=9, failures=3,
                              failures_by_class={"RateLimited": 2, "Transient": 1},
                              rate_limited=2, images=9, cost_usd=0.36, p50_s=4.2, p95_s=11.0)
    return ProviderStatus(
        name=name, kind=ProviderKind.CLOUD, enabled=enabled,
        health=health or Health(HealthState.READY, "key set"),
        breaker=BreakerSnapshot(state, reason, retry_after, None, None, 0, 0, 0),
        cooldown_s=0.0, rate_limits="5/min, 200/day", metrics=metrics,
        today=ProviderTotals(name, "2026-11-30", successes=9,
                             failures={"RateLimited": 2, "Transient": 1}, rate_limited=2,
                             images=9, cost_usd=0.36, latency_count=9, latency_p50_s=4.2,
                             latency_p95_s=11.0),
        month=ProviderTotals(name, "2026-11-01", successes=100, images=120, cost_usd=4.5),
        busy=busy)


@pytest.mark.parametrize(("given", "light", "shown"), [
    (status(), Light.READY, "openai: ready"),
    (status(busy=True), Light.BUSY, "openai: busy"),
    (status(state=BreakerState.OPEN, reason="3 of 4 calls failed", retry_after=42),
     Light.OPEN, "openai: open 42 s"),
    (status(state=BreakerState.HALF_OPEN), Light.HALF_OPEN, "openai: half-open"),
    (status(state=BreakerState.FORCED_OPEN, reason="invalid API key: check Settings"),
     Light.MISCONFIGURED, "openai: misconfigured"),
    (status(health=Health(HealthState.NOT_CONFIGURED, "No OpenAI API key")),
     Light.MISCONFIGURED, "openai: misconfigured"),
    (status(enabled=False), Light.OFF, "openai: off"),
])
def test_each_provider_state_has_its_own_light_and_text(
        qtbot: QtBot, given: ProviderStatus, light: Light, shown: str) -> None:
    indicator = ProviderIndicator("openai")
    qtbot.addWidget(indicator)
    indicator.show_status(given)
    assert indicator.light is light
    assert shown in indicator.text().replace("&nbsp;", " ")


def test_the_tooltip_carries_the_reason_and_the_errors_by_class(qtbot: QtBot) -> None:
    indicator = ProviderIndicator("openai")
    qtbot.addWidget(indicator)
    indicator.show_status(status(state=BreakerState.FORCED_OPEN,
                                 reason="invalid API key: check Settings"))
    tip = indicator.toolTip()
    assert "invalid API key: check Settings" in tip
    assert "RateLimited ×2" in tip and "Transient ×1" in tip


def test_an_open_breaker_counts_down(qtbot: QtBot, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("desktop_app.ui.provider_status.time.monotonic", lambda: now[0])
    indicator = ProviderIndicator("local")
    qtbot.addWidget(indicator)
    indicator.show_status(dataclasses.replace(
        status("local", state=BreakerState.OPEN, retry_after=30), name="local"))
    assert "open 30 s" in indicator.text()
    now[0] += 12
    assert not indicator.render_text()
    assert "open 18 s" in indicator.text()
    now[0] += 20
    assert indicator.render_text()  # run out: the bar fetches the new state


def test_a_provider_failing_for_its_settings_turns_its_light_and_fills_the_panel(
        qtbot: QtBot, scripted_engines: EngineMaker) -> None:
    local = ScriptedProvider("local", script=[Misconfigured("the model file does not exist")])
    engine = scripted_engines(local)
    signals = EngineSignals(engine.hub)
    bar = ProviderStatusBar(engine, signals)
    panel = MetricsPanel()
    bar.statuses_changed.connect(panel.show_statuses)
    qtbot.addWidget(bar)
    qtbot.addWidget(panel)
    drive(qtbot, engine.submit(GenerationRequest("a fox", width=64, height=64)))
    with qtbot.waitSignal(bar.statuses_changed, timeout=10_000):
        drive(qtbot, engine.run_until_idle())  # the breaker is forced open: an event
    assert bar.indicators["local"].light is Light.MISCONFIGURED
    assert "the model file does not exist" in bar.indicators["local"].toolTip()
    assert panel.cell(0, "Provider") == "local"
    assert panel.cell(0, "Errors by class") == "Misconfigured 1"
    assert panel.cell(0, "Calls today") == "1"


def test_the_metrics_panel_shows_rates_latencies_and_spend(qtbot: QtBot) -> None:
    panel = MetricsPanel()
    qtbot.addWidget(panel)
    panel.show_statuses([status("openai")])
    assert panel.cell(0, "Provider") == "openai"
    assert panel.cell(0, "Success") == "75%"
    assert panel.cell(0, "Errors by class") == "RateLimited 2, Transient 1"
    assert (panel.cell(0, "p50"), panel.cell(0, "p95")) == ("4.2 s", "11.0 s")
    assert panel.cell(0, "Calls today") == "12"
    assert (panel.cell(0, "Spend today"), panel.cell(0, "Spend month")) == ("$0.36", "$4.50")
    assert panel.cell(0, "Images month") == "120"
