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
SIZE_SAMPLES = 64  # per provider and size class


def size_class(pixels: int) -> int:
    """Image sizes whose pixel counts are within a factor of about 1.4 share a class
    (512², 768², 1024², 1536² are each their own)."""
    return round(math.log2(max(1, pixels)) * 2)


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
        # the same calls by image size class (size_class), for estimates per size
        self.by_size: dict[int, collections.deque[float]] = {}


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

    def record_success(self, provider: str, latency_s: float, images: int, cost_usd: float,
                       pixels: int | None = None) -> None:
        """``pixels``: the call's image size (width × height), for estimates per size."""
        c = self._get(provider)
        c.successes += 1
        c.images += images
        c.cost_usd += cost_usd
        c.latencies.append(latency_s)
        if pixels:
            c.by_size.setdefault(size_class(pixels), collections.deque(
                maxlen=SIZE_SAMPLES)).append(latency_s)
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

    def recent_latency(self, provider: str, pixels: int) -> tuple[float | None, int]:
        """The median of this session's calls at about this image size, and how many."""
        samples = sorted(self._get(provider).by_size.get(size_class(pixels), ()))
        return percentile(samples, 50), len(samples)

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
