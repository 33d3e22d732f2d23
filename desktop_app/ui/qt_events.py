"""The one adapter from the engine's plain-Python events to Qt signals (napari style).

The engine emits on its asyncio loop, which under qasync is the GUI thread, so
the signals are delivered directly; should an event ever come from another
thread, Qt queues it to the receivers' thread by itself.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal, SignalInstance

from desktop_app.engine.events import (
    Event,
    EventHub,
    JobAdded,
    JobAttempted,
    JobFinished,
    JobProgress,
    JobRouted,
    JobStarted,
    JobWaiting,
    MetricsUpdated,
    ProviderStateChanged,
    QueueChanged,
)


class EngineSignals(QObject):
    """Re-emits every engine event as a typed Qt signal carrying the event object."""

    job_added = Signal(object)  # JobAdded
    job_started = Signal(object)  # JobStarted
    job_progress = Signal(object)  # JobProgress
    job_attempted = Signal(object)  # JobAttempted
    job_routed = Signal(object)  # JobRouted
    job_waiting = Signal(object)  # JobWaiting
    job_finished = Signal(object)  # JobFinished
    queue_changed = Signal(object)  # QueueChanged
    provider_state_changed = Signal(object)  # ProviderStateChanged
    metrics_updated = Signal(object)  # MetricsUpdated

    def __init__(self, hub: EventHub | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._unsubscribe: Callable[[], None] | None = None
        self._routes: dict[type, SignalInstance] = {
            JobAdded: self.job_added,
            JobStarted: self.job_started,
            JobProgress: self.job_progress,
            JobAttempted: self.job_attempted,
            JobRouted: self.job_routed,
            JobWaiting: self.job_waiting,
            JobFinished: self.job_finished,
            QueueChanged: self.queue_changed,
            ProviderStateChanged: self.provider_state_changed,
            MetricsUpdated: self.metrics_updated,
        }
        if hub is not None:
            self.attach(hub)

    def attach(self, hub: EventHub) -> None:
        self.detach()
        self._unsubscribe = hub.subscribe(self.dispatch)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def dispatch(self, event: Event) -> None:
        """Emit the signal matching ``event``'s type (unknown event types are ignored)."""
        signal = self._routes.get(type(event))
        if signal is not None:
            signal.emit(event)
