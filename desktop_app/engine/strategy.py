"""The job's routing strategy applied to the route's candidates (README: "Routing
strategies"). The configured order (priorities, CPU after cloud, standbys) breaks
ties, so "prefer local" is exactly that order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from desktop_app.domain.request import GenerationRequest, RouteStrategy
from desktop_app.engine.estimates import Estimate, Estimator

if TYPE_CHECKING:
    from desktop_app.engine.router import Candidate

# Balanced: a dollar weighs as much as five minutes of waiting.
BALANCED_SECONDS_PER_DOLLAR = 300.0
_CENT = 0.005  # rounding slack on a cost cap, so $0.04 is not "over" a $0.04 cap


def apply_strategy(candidates: Sequence[Candidate], request: GenerationRequest,
                   estimator: Estimator) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """The candidates in the strategy's order, and (provider, reason) for those the
    job's cost cap rules out."""
    policy = request.policy
    guesses = [(c, estimator.estimate(c.slot, c.fit, request)) for c in candidates]
    skipped = []
    if policy.max_cost_usd is not None:
        cap = policy.max_cost_usd
        kept = []
        for candidate, guess in guesses:
            if guess.most_dollars > cap + _CENT * cap + 1e-9:
                skipped.append((candidate.slot.name,
                                f"could cost up to ${guess.most_dollars:.2f}, over this "
                                f"job's cap of ${cap:.2f}"))
            else:
                kept.append((candidate, guess))
        guesses = kept
    if policy.strategy is not RouteStrategy.PREFER_LOCAL:
        guesses.sort(key=lambda pair: _key(policy.strategy, pair[1], policy.target_s))
    return [c for c, _ in guesses], skipped


def _key(strategy: RouteStrategy, guess: Estimate, target_s: float | None) -> tuple[float, ...]:
    if strategy is RouteStrategy.CHEAPEST:
        in_time = target_s is None or guess.seconds <= target_s
        # within the target: cheapest first; past it (a fallback): fastest first
        return (0, guess.dollars, guess.seconds) if in_time else (1, guess.seconds, guess.dollars)
    if strategy is RouteStrategy.FASTEST:
        return (guess.seconds, guess.dollars)
    return (guess.seconds + BALANCED_SECONDS_PER_DOLLAR * guess.dollars,)
