"""Test helper: collects a breaker's transition events."""

from __future__ import annotations

from desktop_app.resilience.breaker import BreakerTransition


class Recorder:
    """Collects every transition a breaker announces."""

    def __init__(self) -> None:
        self.events: list[BreakerTransition] = []

    def __call__(self, event: BreakerTransition) -> None:
        self.events.append(event)

    def edges(self) -> list[tuple[str, str]]:
        return [(e.old.value, e.new.value) for e in self.events]
