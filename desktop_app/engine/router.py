"""Which providers may serve a request, in which order, and why each other one is skipped.

The router reads state (breaker, cooldown, health, capabilities, policy,
budget) but changes none: rate-limit slots and breaker permits are taken by the
failover loop only for the provider it actually calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence

from desktop_app.domain.request import GenerationRequest, RouteMode
from desktop_app.engine.estimates import Estimator
from desktop_app.engine.slots import ProviderSlot
from desktop_app.engine.strategy import apply_strategy
from desktop_app.providers.base import Health, HealthState, ProviderKind
from desktop_app.providers.fitting import Fit, fit_for
from desktop_app.resilience.breaker import BreakerState

# A local provider that reports running on the CPU ranks after the cloud by this much.
CPU_PENALTY = 1000

PRIVATE_REASON = "this job is private: it never leaves this machine"

BudgetCheck = Callable[[ProviderSlot], str | None]


@dataclasses.dataclass(frozen=True)
class Candidate:
    slot: ProviderSlot
    fit: Fit


@dataclasses.dataclass(frozen=True)
class Skip:
    provider: str
    reason: str


@dataclasses.dataclass(frozen=True)
class RoutePlan:
    candidates: tuple[Candidate, ...]
    skipped: tuple[Skip, ...]



def private_allows(kind: ProviderKind) -> bool:
    """The one "never leaves this machine" rule, for private jobs and "local only":
    not the cloud, and not the user's remote workers either (their machines are
    other machines: the prompt and images would travel over the network)."""
    return kind is ProviderKind.LOCAL


def mode_allows(mode: RouteMode, kind: ProviderKind) -> bool:
    """The routing mode's rule: "local only" is this machine only (the same rule as
    a private job), "cloud only" is the paid APIs."""
    if mode is RouteMode.LOCAL_ONLY:
        return private_allows(kind)
    if mode is RouteMode.CLOUD_ONLY:
        return kind is ProviderKind.CLOUD
    return True


def _policy_reason(slot: ProviderSlot, request: GenerationRequest) -> str | None:
    policy = request.policy
    if not slot.enabled:
        return slot.off_reason or "disabled in Settings"
    if policy.private and not private_allows(slot.kind):
        return PRIVATE_REASON
    if policy.provider is not None and slot.name != policy.provider:
        return f"this job asked for {policy.provider} only"
    if not mode_allows(policy.mode, slot.kind):
        return f"disabled by policy: {policy.mode.value} only"
    if (policy.mode is RouteMode.AUTO and slot.kind is ProviderKind.CLOUD
            and not policy.allow_cloud_fallback and policy.provider is None):
        return "disabled by policy: cloud fallback turned off"
    return None


def _state_reason(slot: ProviderSlot) -> str | None:
    breaker = slot.breaker
    state = breaker.state
    if state in (BreakerState.OPEN, BreakerState.FORCED_OPEN):
        snap = breaker.snapshot()
        if state is BreakerState.OPEN:
            wait = snap.retry_after_s or 0.0
            return f"breaker open ({snap.reason}); next try in {wait:.0f} s"
        return f"breaker {state.value.replace('_', ' ')}: {snap.reason}"
    if state is BreakerState.HALF_OPEN and breaker.retry_after() is not None:  # trials all out
        return "breaker half-open: a trial call is already in flight"
    remaining = slot.gate.remaining()
    if remaining > 0:
        return f"cooling down after a rate limit ({slot.gate.reason}); {remaining:.0f} s left"
    return None


def _rank(slot: ProviderSlot, health: Health, cpu_after_cloud: bool) -> int:
    on_cpu = health.details.get("device", "").startswith("cpu")
    return slot.priority + (CPU_PENALTY if cpu_after_cloud and on_cpu else 0)


def _place_standbys(ranked: list[tuple[int, int, Candidate]],
                    skipped: list[Skip]) -> list[tuple[int, int, Candidate]]:
    """A standby slot stands aside while a candidate of the kind it backs is free;
    when every one is busy (or none made the route), it goes first."""
    out = []
    for rank, index, candidate in ranked:
        kind = candidate.slot.standby_for
        if kind is None:
            out.append((rank, index, candidate))
            continue
        free = [c.slot.name for _, _, c in ranked
                if c.slot.kind is kind and c.slot.standby_for is None and not c.slot.full]
        if free:
            skipped.append(Skip(candidate.slot.name, f"standing by while {free[0]} is free"))
            continue
        out.append((min(r for r, _, _ in ranked) - 1, index, candidate))
    return out


async def plan_route(
    request: GenerationRequest,
    slots: Sequence[ProviderSlot],
    *,
    budget: BudgetCheck | None = None,
    cpu_after_cloud: bool = True,
    estimator: Estimator | None = None,
) -> RoutePlan:
    skipped: list[Skip] = []
    ranked: list[tuple[int, int, Candidate]] = []
    checks = [s for s in slots if _policy_reason(s, request) is None]
    healths = dict(zip(checks, await asyncio.gather(*(s.provider.health() for s in checks)),
                       strict=True))
    for index, slot in enumerate(slots):
        reason = _policy_reason(slot, request)
        health = healths.get(slot)
        if reason is None and health is not None and health.state is HealthState.NOT_CONFIGURED:
            reason = f"not configured: {health.message}" if not health.message.startswith(
                "not configured") else health.message
        if reason is None and health is not None and health.state is HealthState.UNAVAILABLE:
            reason = f"unavailable: {health.message}"
        if reason is None:
            reason = _state_reason(slot)
        if reason is None and budget is not None:
            reason = budget(slot)
        fit: Fit | None = None
        if reason is None:
            fit = fit_for(request, slot.provider,
                          allow_adaptation=request.policy.allow_adaptation)
            if not fit.fits:
                reason = f"capabilities don't fit: {fit.reason}"
        if reason is not None or fit is None or health is None:
            skipped.append(Skip(slot.name, reason or "not available"))
            continue
        ranked.append((_rank(slot, health, cpu_after_cloud), index, Candidate(slot, fit)))
    ranked = _place_standbys(ranked, skipped)
    ranked.sort(key=lambda item: (item[0], item[1]))
    ordered, over_cap = apply_strategy([c for _, _, c in ranked], request,
                                       estimator or Estimator())
    skipped += [Skip(name, reason) for name, reason in over_cap]
    return RoutePlan(tuple(ordered), tuple(skipped))
