"""Each provider call's record, kept: this session's metrics go to the metrics store
(on the store thread) and its cost to the spend tracker, which the budget caps read.
On start the tracker is loaded with today's and this month's stored spend, so the
caps hold across restarts."""

from __future__ import annotations

import datetime as dt

from desktop_app.engine.budget import Budget, SpendingCap, SpendTracker
from desktop_app.engine.live_slots import LiveSlots
from desktop_app.engine.metrics import CallRecord
from desktop_app.engine.slots import ProviderSlot
from desktop_app.engine.store_thread import StoreThread
from desktop_app.providers.base import ProviderKind
from desktop_app.resilience.clock import Clock
from desktop_app.store.metrics import MetricsStore


class SpendLedger:
    """Spend so far and the caps it is held to (``budget`` is replaced by ``apply``)."""

    def __init__(self, *, clock: Clock, store: StoreThread, metrics_store: MetricsStore,
                 budget: Budget) -> None:
        self._clock = clock
        self._store = store
        self._metrics_store = metrics_store
        self.budget = budget
        self.tracker = SpendTracker(clock)
        self.cap = SpendingCap(self.tracker, lambda: self.budget)

    def record(self, record: CallRecord) -> None:
        """Keep one call's outcome (``Metrics``' sink)."""
        day = dt.date.fromtimestamp(self._clock.time()).isoformat()
        failures = {record.error_class: 1} if record.error_class else {}
        self._store.submit(
            self._metrics_store.record, record.provider, day,
            0 if record.error_class else 1, failures,
            1 if record.error_class == "RateLimited" else 0, record.images, record.cost_usd,
            record.latency_s)
        if record.cost_usd:
            self.tracker.add(record.provider, record.cost_usd)

    def over_budget(self, slot: ProviderSlot) -> str | None:
        """Why ``slot`` is left out of a route by the caps now (only paid ones are)."""
        return self.cap.skip_reason(slot.kind is ProviderKind.CLOUD)

    async def reload(self, slots: LiveSlots) -> None:
        """Load today's and this month's stored spend for each provider."""
        day = self.tracker.today()
        first = day.replace(day=1).isoformat()
        today: dict[str, float] = {}
        month: dict[str, float] = {}
        for slot in slots:
            today[slot.name] = await self._store.run(self._metrics_store.spend, slot.name,
                                                     day.isoformat())
            month[slot.name] = await self._store.run(self._metrics_store.spend, slot.name,
                                                     first)
        self.tracker.load(day, today, month)
