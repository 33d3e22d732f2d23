"""Where a job would go and what it would cost, before it runs: the route preview's
order with, for each candidate, the seconds and dollars to expect.

The figures are the router's own estimates (``engine/estimates.py``). Nothing is
reserved and no provider is called.
"""

from __future__ import annotations

import dataclasses

from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.estimates import Estimator
from desktop_app.engine.router import RoutePlan


@dataclasses.dataclass(frozen=True)
class CandidateQuote:
    provider: str
    kind: str  # "local", "cloud", "remote"
    seconds: float
    dollars: float
    basis: str  # where the seconds come from (see engine/estimates.py)
    success_rate: float | None  # recent share of calls that succeeded; None: no history
    adaptations: tuple[str, ...] = ()
    # the most it can bill (what the spending caps hold); above ``dollars`` when the
    # provider picks the price (OpenAI's "auto" quality)
    most_dollars: float = 0.0

    def price(self, free: str = "free") -> str:
        """"$0.04", "$0.04, up to $0.17" when it may cost more, or ``free``."""
        if round(self.most_dollars, 2) > round(self.dollars, 2):
            return f"${self.dollars:.2f}, up to ${self.most_dollars:.2f}"
        return free if self.dollars <= 0 else f"${self.dollars:.2f}"

    def short(self, then: str = "") -> str:
        return f"{self.provider}{then} (~{self.seconds:.0f} s, {self.price()})"

    def to_dict(self) -> dict[str, object]:
        return {"provider": self.provider, "kind": self.kind,
                "estimated_seconds": round(self.seconds, 2),
                "estimated_usd": round(self.dollars, 4),
                "most_usd": round(max(self.most_dollars, self.dollars), 4), "basis": self.basis,
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


def quote_route(plan: RoutePlan, request: GenerationRequest, estimator: Estimator) -> RouteQuote:
    quotes = []
    for candidate in plan.candidates:
        guess = estimator.estimate(candidate.slot, candidate.fit, request)
        quotes.append(CandidateQuote(candidate.slot.name, candidate.slot.kind.value,
                                     guess.seconds, guess.dollars, guess.basis,
                                     guess.success_rate, candidate.fit.adaptations,
                                     guess.most_dollars))
    return RouteQuote(tuple(quotes), tuple((s.provider, s.reason) for s in plan.skipped))
