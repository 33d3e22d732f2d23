"""What the status bar, the metrics panel and ``imagedesk providers`` show of a provider."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Sequence

from desktop_app.engine.metrics import Metrics, MetricsSnapshot
from desktop_app.engine.slots import ProviderSlot
from desktop_app.engine.store_thread import StoreThread
from desktop_app.providers.base import Health, HealthState, ProviderKind
from desktop_app.resilience.breaker import BreakerSnapshot, BreakerState
from desktop_app.store.metrics import MetricsStore, ProviderTotals


@dataclasses.dataclass(frozen=True)
class ProviderStatus:
    """Everything the status bar, the metrics panel and ``imagedesk providers`` show."""

    name: str
    kind: ProviderKind
    enabled: bool
    health: Health
    breaker: BreakerSnapshot
    cooldown_s: float
    rate_limits: str
    metrics: MetricsSnapshot  # this session
    today: ProviderTotals  # persisted, survive restarts
    month: ProviderTotals
    busy: bool

    @property
    def spend_today_usd(self) -> float:
        return self.today.cost_usd

    @property
    def spend_month_usd(self) -> float:
        return self.month.cost_usd


async def gather_statuses(slots: Sequence[ProviderSlot], metrics: Metrics, store: StoreThread,
                          metrics_store: MetricsStore, today: dt.date) -> list[ProviderStatus]:
    """Each provider's health (asked concurrently), breaker, cooldown, limits, this
    session's figures and the persisted totals for today and this month."""
    first = today.replace(day=1).isoformat()
    healths = await asyncio.gather(*(s.provider.health() for s in slots))
    statuses = []
    for slot, health in zip(slots, healths, strict=True):
        statuses.append(ProviderStatus(
            name=slot.name, kind=slot.kind, enabled=slot.enabled, health=health,
            breaker=slot.breaker.snapshot(), cooldown_s=slot.gate.remaining(),
            rate_limits=slot.limiter.describe() if slot.limiter else "none",
            metrics=metrics.snapshot(slot.name),
            today=await store.run(metrics_store.totals, slot.name, today.isoformat()),
            month=await store.run(metrics_store.totals, slot.name, first),
            busy=slot.in_flight > 0,
        ))
    return statuses


# What a face needs to read a ProviderStatus, so it reaches providers and resilience
# only through the engine (the import contracts in pyproject.toml).
__all__ = ["BreakerSnapshot", "BreakerState", "Health", "HealthState", "ProviderKind",
           "ProviderStatus", "gather_statuses"]
