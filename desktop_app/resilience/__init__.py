"""Breaker, cooldown gate, rate limiting and retry policy: the parts that keep a
failing or throttled provider from costing the user time (ARCHITECTURE.md)."""

from __future__ import annotations

from desktop_app.resilience.breaker import (
    BreakerConfig,
    BreakerSnapshot,
    BreakerState,
    BreakerTransition,
    CircuitBreaker,
    Permit,
)
from desktop_app.resilience.clock import Clock, FakeClock, ManualClock, SystemClock
from desktop_app.resilience.cooldown import CooldownGate
from desktop_app.resilience.rate_limit import ProviderRateLimiter, RateSpec, RateStrategy
from desktop_app.resilience.retry import RetryPolicy, retry_call

__all__ = [
    "BreakerConfig",
    "BreakerSnapshot",
    "BreakerState",
    "BreakerTransition",
    "CircuitBreaker",
    "Clock",
    "CooldownGate",
    "FakeClock",
    "ManualClock",
    "Permit",
    "ProviderRateLimiter",
    "RateSpec",
    "RateStrategy",
    "RetryPolicy",
    "SystemClock",
    "retry_call",
]
