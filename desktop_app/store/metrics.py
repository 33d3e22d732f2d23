"""Provider metrics per provider per day, so the numbers (and the spend that the
daily and monthly caps check) survive restarts.

Latency is kept as a log-spaced histogram per day (buckets 10 % apart from
10 ms to about 2.5 hours): bounded in size whatever the traffic, and p50/p95
read back within one bucket's width (±5 %).
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from collections.abc import Mapping

from desktop_app.store.database import reading, transaction

LATENCY_MIN_S = 0.01
LATENCY_GROWTH = 1.1
LATENCY_BUCKETS = 140  # 0.01 s * 1.1**140 ~ 6.3 hours; longer goes in the last bucket


def latency_bucket(seconds: float) -> int:
    if seconds <= LATENCY_MIN_S:
        return 0
    index = int(math.log(seconds / LATENCY_MIN_S) / math.log(LATENCY_GROWTH)) + 1
    return min(LATENCY_BUCKETS - 1, index)


def bucket_value(bucket: int) -> float:
    """A representative latency for a bucket: its geometric middle."""
    if bucket == 0:
        return LATENCY_MIN_S
    low = LATENCY_MIN_S * LATENCY_GROWTH ** (bucket - 1)
    return low * math.sqrt(LATENCY_GROWTH)


@dataclasses.dataclass(frozen=True)
class ProviderTotals:
    provider: str
    since_day: str
    successes: int = 0
    failures: Mapping[str, int] = dataclasses.field(default_factory=dict)  # error class -> count
    rate_limited: int = 0
    images: int = 0
    cost_usd: float = 0.0
    latency_count: int = 0
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None

    @property
    def failure_count(self) -> int:
        return sum(self.failures.values())


class MetricsStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def record(self, provider: str, day: str, successes: int = 0,
               failures_by_class: Mapping[str, int] | None = None, rate_limited: int = 0,
               images: int = 0, cost_usd: float = 0.0, latency_s: float | None = None) -> None:
        """Add to the day's counters (one transaction)."""
        with transaction(self.conn) as conn:
            conn.execute(
                "INSERT INTO metrics_daily (provider, day, successes, rate_limited, images, "
                "cost_usd) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (provider, day) DO UPDATE SET "
                "successes = successes + excluded.successes, "
                "rate_limited = rate_limited + excluded.rate_limited, "
                "images = images + excluded.images, cost_usd = cost_usd + excluded.cost_usd",
                (provider, day, int(successes), int(rate_limited), int(images),
                 float(cost_usd)))
            for error_class, count in (failures_by_class or {}).items():
                conn.execute(
                    "INSERT INTO metrics_failures (provider, day, error_class, count) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (provider, day, error_class) "
                    "DO UPDATE SET count = count + excluded.count",
                    (provider, day, error_class, int(count)))
            if latency_s is not None and latency_s >= 0 and math.isfinite(latency_s):
                conn.execute(
                    "INSERT INTO metrics_latency (provider, day, bucket, count) "
                    "VALUES (?, ?, ?, 1) ON CONFLICT (provider, day, bucket) "
                    "DO UPDATE SET count = count + 1",
                    (provider, day, latency_bucket(latency_s)))

    def totals(self, provider: str, since_day: str) -> ProviderTotals:
        """Everything recorded for ``provider`` on ``since_day`` and after."""
        with reading(self.conn) as conn:
            row = conn.execute(
                "SELECT COALESCE(SUM(successes), 0), COALESCE(SUM(rate_limited), 0), "
                "COALESCE(SUM(images), 0), COALESCE(SUM(cost_usd), 0) FROM metrics_daily "
                "WHERE provider = ? AND day >= ?", (provider, since_day)).fetchone()
            failures = {
                str(name): int(count) for name, count in conn.execute(
                    "SELECT error_class, SUM(count) FROM metrics_failures "
                    "WHERE provider = ? AND day >= ? GROUP BY error_class ORDER BY error_class",
                    (provider, since_day))}
            histogram = [(int(b), int(c)) for b, c in conn.execute(
                "SELECT bucket, SUM(count) FROM metrics_latency WHERE provider = ? AND day >= ? "
                "GROUP BY bucket ORDER BY bucket", (provider, since_day))]
        count = sum(c for _, c in histogram)
        return ProviderTotals(
            provider=provider, since_day=since_day, successes=int(row[0]), failures=failures,
            rate_limited=int(row[1]), images=int(row[2]), cost_usd=float(row[3]),
            latency_count=count, latency_p50_s=_percentile(histogram, 50),
            latency_p95_s=_percentile(histogram, 95))

    def spend(self, provider: str | None, since_day: str) -> float:
        """Dollars spent since ``since_day`` (inclusive), on one provider or all."""
        with reading(self.conn) as conn:
            if provider is None:
                row = conn.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM metrics_daily "
                                   "WHERE day >= ?", (since_day,)).fetchone()
            else:
                row = conn.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM metrics_daily "
                                   "WHERE provider = ? AND day >= ?",
                                   (provider, since_day)).fetchone()
        return float(row[0])

    def prune(self, before_day: str) -> None:
        """Forget days before ``before_day`` (keeps the tables small over years)."""
        with transaction(self.conn) as conn:
            for table in ("metrics_daily", "metrics_failures", "metrics_latency"):
                conn.execute(f"DELETE FROM {table} WHERE day < ?", (before_day,))


def _percentile(histogram: list[tuple[int, int]], pct: float) -> float | None:
    total = sum(c for _, c in histogram)
    if total == 0:
        return None
    rank = max(1, math.ceil(pct / 100 * total))
    seen = 0
    for bucket, count in histogram:
        seen += count
        if seen >= rank:
            return bucket_value(bucket)
    return bucket_value(histogram[-1][0])
