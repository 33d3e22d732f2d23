"""Questions a face asks about routing before anything runs: which providers would
serve a request and why each other one is skipped, what each would cost in seconds
and dollars, and the prompt limit each routing mode must respect. Nothing here
reserves or calls a provider."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from desktop_app.domain.request import GenerationRequest, RouteMode
from desktop_app.engine.estimates import HISTORY_DAYS, Estimator
from desktop_app.engine.live_slots import LiveSlots
from desktop_app.engine.metrics import Metrics
from desktop_app.engine.quote import RouteQuote, quote_route
from desktop_app.engine.router import RoutePlan, mode_allows, plan_route
from desktop_app.engine.runner import RunnerSettings
from desktop_app.engine.spend_ledger import SpendLedger
from desktop_app.engine.store_thread import StoreThread
from desktop_app.resilience.clock import Clock
from desktop_app.store.metrics import MetricsStore, ProviderTotals


class RouteQueries:
    def __init__(self, *, slots: LiveSlots, ledger: SpendLedger, metrics: Metrics,
                 store: StoreThread, metrics_store: MetricsStore, clock: Clock,
                 runner_settings: Callable[[], RunnerSettings]) -> None:
        self._slots = slots
        self._ledger = ledger
        self._metrics = metrics
        self._store = store
        self._metrics_store = metrics_store
        self._clock = clock
        self._runner_settings = runner_settings

    async def estimator(self) -> Estimator:
        """Estimates from this session's calls and the last days' stored history."""
        today = dt.date.fromtimestamp(self._clock.time())
        since = (today - dt.timedelta(days=HISTORY_DAYS - 1)).isoformat()
        history: dict[str, ProviderTotals] = {}
        for slot in self._slots:
            history[slot.name] = await self._store.run(self._metrics_store.totals, slot.name,
                                                       since)
        return Estimator(self._metrics, history)

    async def preview(self, request: GenerationRequest,
                      estimator: Estimator | None = None) -> RoutePlan:
        return await plan_route(request, list(self._slots), budget=self._ledger.over_budget,
                                cpu_after_cloud=self._runner_settings().cpu_after_cloud,
                                estimator=estimator or await self.estimator())

    async def quote(self, request: GenerationRequest) -> RouteQuote:
        estimator = await self.estimator()
        return quote_route(await self.preview(request, estimator), request, estimator)

    def prompt_limits(self) -> dict[RouteMode, tuple[int, str]]:
        limits: dict[RouteMode, tuple[int, str]] = {}
        for mode in RouteMode:
            candidates = [(s.provider.capabilities().max_prompt_chars, s.name)
                          for s in self._slots if s.enabled and mode_allows(mode, s.kind)]
            if candidates:
                limits[mode] = min(candidates)
        return limits
