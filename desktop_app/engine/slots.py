"""A provider as the engine holds it: with its breaker, cooldown gate, rate limiter,
retry policy and concurrency limit."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from desktop_app.providers.base import ImageProvider, ProviderKind
from desktop_app.resilience.breaker import CircuitBreaker
from desktop_app.resilience.cooldown import CooldownGate
from desktop_app.resilience.rate_limit import ProviderRateLimiter
from desktop_app.resilience.retry import RetryPolicy


@dataclasses.dataclass(eq=False)
class ProviderSlot:
    provider: ImageProvider
    breaker: CircuitBreaker
    gate: CooldownGate
    limiter: ProviderRateLimiter | None = None
    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    priority: int = 0  # lower runs first
    enabled: bool = True
    # Why a slot is off when the user did not turn it off (a setting that guards
    # money could not be read); the router gives it as the reason to skip.
    off_reason: str | None = None
    concurrency: int = 1
    # Serve only while no free candidate of this kind is in the route (remote
    # workers placed "when the local GPU is busy or unavailable").
    standby_for: ProviderKind | None = None
    in_flight: int = 0  # jobs using it: calling, between calls, or waiting for a rate-limit slot
    # Runs a RateLimited call again on the same provider only when the server
    # asks for a wait this short and the deadline allows it.
    max_rate_limit_wait_s: float = 5.0
    # Set when new settings replaced this slot: no new calls start on it, and
    # ``on_idle`` runs once its last running call has finished (to close it).
    retired: bool = False
    on_idle: Callable[[], None] | None = None
    _semaphore: asyncio.Semaphore | None = dataclasses.field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def kind(self) -> ProviderKind:
        return self.provider.kind

    @property
    def semaphore(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(max(1, self.concurrency))
        return self._semaphore

    @property
    def full(self) -> bool:
        """As many jobs use it as it takes calls at once: a new job would queue."""
        return self.in_flight >= max(1, self.concurrency)
