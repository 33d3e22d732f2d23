"""Where a job would go and what it would cost, before it runs: the route preview's
order with, for each candidate, the seconds and dollars to expect.

Seconds come from measured history where there is enough of it (the provider's
median call time over the last days, from the metrics store), otherwise from what
the provider declares; a provider whose recent calls mostly failed says so. Dollars
are the provider's declared price per image times the images asked for. Nothing is
reserved and no provider is called.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.router import RoutePlan
from desktop_app.store.metrics import ProviderTotals

MIN_SAMPLES = 3  # measured calls before history replaces the declared figure
HISTORY_DAYS = 7


@dataclasses.dataclass(frozen=True)
class CandidateQuote:
    provider: str
    kind: str  # "local", "cloud", "remote"
    seconds: float
    dollars: float
    basis: str  # "measured: median of 12 calls" or "declared by the provider"
    success_rate: float | None  # recent share of calls that succeeded; None: no history
    adaptations: tuple[str, ...] = ()

    def short(self, then: str = "") -> str:
        price = "free" if self.dollars <= 0 else f"${self.dollars:.2f}"
        return f"{self.provider}{then} (~{self.seconds:.0f} s, {price})"

    def to_dict(self) -> dict[str, object]:
        return {"provider": self.provider, "kind": self.kind,
                "estimated_seconds": round(self.seconds, 2),
                "estimated_usd": round(self.dollars, 4), "basis": self.basis,
                "success_rate": self.success_rate, "adaptations": list(self.adaptations)}


@dataclasses.dataclass(frozen=True)
class RouteQuote:
    candidates: tuple[CandidateQuote, ...]
    skipped: tuple[tuple[str, str], ...]  # (provider, reason)

    def line(self) -> str:
        """One line for the user: "local (~6 s, free) → openai if it fails (~20 s, $0.04)"."""
        if not self.candidates:
            reasons = "; ".join(f"{name}: {reason}" for name, reason in self.skipped)
            return f"no provider can take this job ({reasons})" if reasons else \
                "no provider can take this job"
        first, *rest = self.candidates
        return " → ".join([first.short(), *(c.short(" if it fails") for c in rest[:1]),
                           *(c.short(" after that") for c in rest[1:])])

    def to_dict(self) -> dict[str, object]:
        return {"order": [c.to_dict() for c in self.candidates],
                "skipped": [{"provider": p, "reason": r} for p, r in self.skipped],
                "summary": self.line()}


Totals = Callable[[str], Awaitable[ProviderTotals]]


async def quote_route(plan: RoutePlan, request: GenerationRequest, totals: Totals) -> RouteQuote:
    quotes = []
    for candidate in plan.candidates:
        slot = candidate.slot
        caps = slot.provider.capabilities()
        calls = max(1, len(candidate.fit.calls))
        history = await totals(slot.name)
        tried = history.successes + history.failure_count
        rate = history.successes / tried if tried else None
        if history.latency_count >= MIN_SAMPLES and history.latency_p50_s is not None:
            per_call = history.latency_p50_s
            basis = f"measured: median of {history.latency_count} calls"
        else:
            per_call = caps.estimated_latency_s
            basis = "declared by the provider"
        dollars = caps.cost_per_image_usd * request.n
        quotes.append(CandidateQuote(slot.name, slot.kind.value, per_call * calls, dollars,
                                     basis, rate, candidate.fit.adaptations))
    return RouteQuote(tuple(quotes), tuple((s.provider, s.reason) for s in plan.skipped))
