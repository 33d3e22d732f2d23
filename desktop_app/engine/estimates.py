"""What to expect from a provider for one request: seconds, dollars, and how sure.

Seconds come from measured history: this session's recent calls at about the
request's image size once there are ``MIN_SAMPLES`` of them, else its recent calls
of any size (so a provider that has turned slow today ranks lower at once), else
the last days' calls from the metrics store, else what the provider declares. A
provider whose recent calls often failed is expected to take longer to deliver
(seconds divided by its success rate). Dollars are the provider's declared price
per image times the images asked for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.metrics import Metrics
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import most_cost_usd
from desktop_app.providers.fitting import Fit
from desktop_app.store.metrics import ProviderTotals

MIN_SAMPLES = 3  # measured calls before history replaces the declared figure
HISTORY_DAYS = 7
MIN_SUCCESS_RATE = 0.1  # below this, one success in ten is what the estimate assumes


@dataclasses.dataclass(frozen=True)
class Estimate:
    seconds: float  # to a delivered result, failures counted in
    dollars: float
    basis: str  # "measured: median of the last 12 calls" or "declared by the provider"
    success_rate: float | None  # recent share of calls that succeeded; None: no history
    # the most the job's calls can bill (``providers.base.most_cost_usd``): what a
    # money guard compares, where ``dollars`` is the typical figure shown
    most_dollars: float = 0.0


class Estimator:
    def __init__(self, recent: Metrics | None = None,
                 history: Mapping[str, ProviderTotals] | None = None) -> None:
        self._recent = recent
        self._history = history or {}

    def estimate(self, slot: ProviderSlot, fit: Fit, request: GenerationRequest) -> Estimate:
        caps = slot.provider.capabilities()
        calls = max(1, len(fit.calls))
        per_call, basis, rate = caps.estimated_latency_s, "declared by the provider", None
        history = self._history.get(slot.name)
        if history is not None:
            tried = history.successes + history.failure_count
            rate = history.successes / tried if tried else None
            if history.latency_count >= MIN_SAMPLES and history.latency_p50_s is not None:
                per_call = history.latency_p50_s
                basis = f"measured: median of {history.latency_count} calls in {HISTORY_DAYS} days"
        if self._recent is not None:
            snap = self._recent.snapshot(slot.name)
            tried = snap.successes + snap.failures
            if tried >= MIN_SAMPLES:
                rate = snap.successes / tried
            if snap.successes >= MIN_SAMPLES and snap.p50_s is not None:
                per_call = snap.p50_s
                basis = f"measured: median of the last {snap.successes} calls"
            sized, count = self._recent.recent_latency(slot.name, request.width * request.height)
            if count >= MIN_SAMPLES and sized is not None:  # calls at about this size
                per_call = sized
                basis = f"measured: median of the last {count} calls at this size"
        seconds = per_call * calls
        if rate is not None:
            seconds /= max(rate, MIN_SUCCESS_RATE)
        most = sum(most_cost_usd(slot.provider, call) for call in fit.calls) if fit.calls \
            else most_cost_usd(slot.provider, request)
        typical = caps.cost_per_image_usd * request.n
        if most > 0:  # a cheap job (low quality, small size) is never quoted above its most
            typical = min(typical, most)
        return Estimate(seconds, typical, basis, rate, most)
