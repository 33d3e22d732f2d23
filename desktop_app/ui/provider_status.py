"""One indicator per provider in the status bar: ready, busy, open with a countdown,
half-open, misconfigured with its reason; the tooltip carries the last error.

Statuses are fetched from the engine when an event says something changed
(breaker transition, metrics, a job starting or ending), debounced; the
countdown itself ticks locally.
"""

from __future__ import annotations

import enum
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal, SignalInstance
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QWidget

from desktop_app.engine.status import BreakerState, HealthState
from desktop_app.ui.qt_events import EngineSignals
from desktop_app.ui.tasks import spawn

if TYPE_CHECKING:
    from desktop_app.engine.engine import Engine
    from desktop_app.engine.status import ProviderStatus


class Light(enum.Enum):
    READY = ("ready", "#2ea043")
    BUSY = ("busy", "#3478f6")
    OPEN = ("open", "#d97706")
    HALF_OPEN = ("half-open", "#d4a72c")
    COOLING = ("cooling down", "#d97706")
    MISCONFIGURED = ("misconfigured", "#d1242f")
    OFF = ("off", "#8b8b8b")

    @property
    def label(self) -> str:
        return self.value[0]

    @property
    def colour(self) -> str:
        return self.value[1]


def light_for(status: ProviderStatus) -> tuple[Light, str]:
    """Which light a provider shows, and the reason behind it."""
    breaker = status.breaker
    if not status.enabled:
        return Light.OFF, "disabled in Settings"
    if breaker.state is BreakerState.FORCED_OPEN:
        return Light.MISCONFIGURED, breaker.reason
    if status.health.state is HealthState.NOT_CONFIGURED:
        return Light.MISCONFIGURED, status.health.message
    if breaker.state is BreakerState.OPEN:
        return Light.OPEN, breaker.reason
    if breaker.state is BreakerState.HALF_OPEN:
        return Light.HALF_OPEN, breaker.reason
    if status.cooldown_s > 0:
        return Light.COOLING, "the provider asked us to wait (429)"
    if status.busy:
        return Light.BUSY, ""
    return Light.READY, status.health.message


class ProviderIndicator(QLabel):
    reset_requested = Signal(str)
    settings_requested = Signal()

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.setObjectName(f"provider-{name}")
        self.light = Light.READY
        self.reason = ""
        self._until: float | None = None  # monotonic instant the countdown ends
        self.setTextFormat(Qt.TextFormat.RichText)

    def show_status(self, status: ProviderStatus) -> None:
        self.light, self.reason = light_for(status)
        wait = status.breaker.retry_after_s if self.light is Light.OPEN else (
            status.cooldown_s if self.light is Light.COOLING else None)
        self._until = time.monotonic() + wait if wait else None
        self.render_text()
        m = status.metrics
        lines = [f"{status.name} ({status.kind.value}): {self.light.label}"]
        if self.reason:
            lines.append(self.reason)
        if status.health.message and status.health.message != self.reason:
            lines.append(f"Health: {status.health.message}")
        if m.failures_by_class:
            errors = ", ".join(f"{k} ×{v}" for k, v in sorted(m.failures_by_class.items()))
            lines.append(f"Errors: {errors}")
        lines.append(f"Rate limits: {status.rate_limits}")
        lines.append("Right-click to try again or open Settings.")
        self.setToolTip("\n".join(lines))

    def remaining_s(self) -> float | None:
        return None if self._until is None else max(0.0, self._until - time.monotonic())

    def render_text(self) -> bool:
        """Redraw; True when a countdown has just run out (the caller re-fetches)."""
        text = self.light.label
        remaining = self.remaining_s()
        if remaining is not None:
            text += f" {remaining:.0f} s"
        self.setText(f"<span style='color:{self.light.colour}'>●</span> {self.name}: {text}")
        return remaining == 0.0

    def mousePressEvent(self, event: QMouseEvent) -> None:
        menu = QMenu(self)
        menu.addAction(f"Try {self.name} again", lambda: self.reset_requested.emit(self.name))
        menu.addAction("Provider settings…", self.settings_requested.emit)
        menu.popup(event.globalPosition().toPoint())


class ProviderStatusBar(QWidget):
    statuses_changed = Signal(list)  # list[ProviderStatus]
    settings_requested = Signal()

    def __init__(self, engine: Engine | None, signals: EngineSignals,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine: Engine = engine  # type: ignore[assignment]  # set by MainWindow.attach
        self.indicators: dict[str, ProviderIndicator] = {}
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self.refresh)
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._tick)
        self._ticker.start()
        self._signals = signals
        for signal in self._watched():
            signal.connect(self._changed)
        self._fetching = False
        self._stopped = False

    def _watched(self) -> tuple[SignalInstance, ...]:
        s = self._signals
        return (s.provider_state_changed, s.metrics_updated, s.job_started, s.job_finished)

    def _changed(self, _event: object) -> None:
        self._debounce.start()

    def stop(self) -> None:
        """No more fetching: the window is closing. Its timers would otherwise go on
        firing for as long as the widget lives, each one starting an engine call on
        an event loop that may be gone by then."""
        if self._stopped:
            return
        self._stopped = True
        self._debounce.stop()
        self._ticker.stop()
        for signal in self._watched():
            signal.disconnect(self._changed)

    def refresh(self) -> None:
        if self._stopped:
            return
        if self._fetching:
            self._debounce.start()
            return
        self._fetching = True

        def done(statuses: list[ProviderStatus]) -> None:
            self._fetching = False
            if not self._stopped:  # the window may have closed while the engine answered
                self.show_statuses(statuses)
        task = spawn(self.engine.provider_statuses(), done)
        task.add_done_callback(lambda _t: setattr(self, "_fetching", False))

    def show_statuses(self, statuses: list[ProviderStatus]) -> None:
        names = [s.name for s in statuses]
        for name in list(self.indicators):
            if name not in names:
                self.indicators.pop(name).deleteLater()
        for status in statuses:
            indicator = self.indicators.get(status.name)
            if indicator is None:
                indicator = ProviderIndicator(status.name, self)
                indicator.reset_requested.connect(self.reset)
                indicator.settings_requested.connect(self.settings_requested.emit)
                self.indicators[status.name] = indicator
                self._layout.addWidget(indicator)
            indicator.show_status(status)
        self.statuses_changed.emit(statuses)

    def reset(self, name: str) -> None:
        self.engine.reset_provider(name)
        self.refresh()

    def _tick(self) -> None:
        expired = False
        for indicator in self.indicators.values():
            expired = indicator.render_text() or expired
        if expired:
            self._debounce.start()
