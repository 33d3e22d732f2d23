"""Per-provider counters and latency percentiles, kept in memory with a snapshot API.

The queue runner persists the same figures per day through the store, so they
survive restarts; this module is what the engine updates on every call.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Callable

LATENCY_SAMPLES = 512


@dataclasses.dataclass(frozen=True)
class MetricsSnapshot:
    provider: str
    successes: int
    failures: int
    failures_by_class: dict[str, int]
    rate_limited: int
    images: int
    cost_usd: float
    p50_s: float | None
    p95_s: float | None

    @property
    def calls(self) -> int:
        return self.successes + self.failures


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


class _Counters:
    def __init__(self) -> None:
        self.successes = 0
        self.failures: collections.Counter[str] = collections.Counter()
        self.rate_limited = 0
        self.images = 0
        self.cost_usd = 0.0
        self.latencies: collections.deque[float] = collections.deque(maxlen=LATENCY_SAMPLES)


@dataclasses.dataclass(frozen=True)
class CallRecord:
    """One provider call's outcome, as handed to the persistence sink."""

    provider: str
    error_class: str | None  # None: success
    latency_s: float
    images: int = 0
    cost_usd: float = 0.0


class Metrics:
    """This session's figures; ``sink`` receives every call so the store can keep
    per-day totals that survive restarts."""

    def __init__(self, sink: Callable[[CallRecord], None] | None = None) -> None:
        self._by_provider: dict[str, _Counters] = {}
        self.sink = sink

    def _get(self, provider: str) -> _Counters:
        return self._by_provider.setdefault(provider, _Counters())

    def record_success(self, provider: str, latency_s: float, images: int, cost_usd: float) -> None:
        c = self._get(provider)
        c.successes += 1
        c.images += images
        c.cost_usd += cost_usd
        c.latencies.append(latency_s)
        if self.sink is not None:
            self.sink(CallRecord(provider, None, latency_s, images, cost_usd))

    def record_failure(self, provider: str, error_class: str, latency_s: float,
                       cost_usd: float = 0.0) -> None:
        """``cost_usd``: what the failed call was billed (an unusable paid image)."""
        c = self._get(provider)
        c.failures[error_class] += 1
        c.cost_usd += cost_usd
        if error_class == "RateLimited":
            c.rate_limited += 1
        if self.sink is not None:
            self.sink(CallRecord(provider, error_class, latency_s, cost_usd=cost_usd))

    def snapshot(self, provider: str) -> MetricsSnapshot:
        c = self._get(provider)
        ordered = sorted(c.latencies)
        return MetricsSnapshot(
            provider=provider,
            successes=c.successes,
            failures=sum(c.failures.values()),
            failures_by_class=dict(c.failures),
            rate_limited=c.rate_limited,
            images=c.images,
            cost_usd=c.cost_usd,
            p50_s=percentile(ordered, 50),
            p95_s=percentile(ordered, 95),
        )
