from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from desktop_app.store.database import open_database
from desktop_app.store.metrics import MetricsStore, latency_bucket


def test_counters_add_up_per_provider_and_day(conn: sqlite3.Connection) -> None:
    metrics = MetricsStore(conn)
    metrics.record("openai", "2026-03-01", successes=1, images=2, cost_usd=0.08)
    metrics.record("openai", "2026-03-01", failures_by_class={"Transient": 2, "RateLimited": 1},
                   rate_limited=1)
    metrics.record("openai", "2026-03-02", successes=3, failures_by_class={"Transient": 1},
                   cost_usd=0.04)
    metrics.record("local", "2026-03-02", successes=5)
    totals = metrics.totals("openai", "2026-03-01")
    assert (totals.successes, totals.images, totals.rate_limited) == (4, 2, 1)
    assert totals.failures == {"RateLimited": 1, "Transient": 3}
    assert totals.failure_count == 4
    assert totals.cost_usd == pytest.approx(0.12)
    assert metrics.totals("openai", "2026-03-02").successes == 3
    assert metrics.totals("nobody", "2026-03-01").successes == 0


def test_spend_since_a_day_for_one_provider_or_all(conn: sqlite3.Connection) -> None:
    metrics = MetricsStore(conn)
    metrics.record("openai", "2026-02-28", cost_usd=1.0)
    metrics.record("openai", "2026-03-01", cost_usd=0.25)
    metrics.record("other", "2026-03-05", cost_usd=0.5)
    assert metrics.spend("openai", "2026-03-01") == pytest.approx(0.25)  # this month
    assert metrics.spend(None, "2026-03-01") == pytest.approx(0.75)
    assert metrics.spend("openai", "2026-03-06") == 0.0


def test_latency_percentiles_are_within_five_percent(conn: sqlite3.Connection) -> None:
    metrics = MetricsStore(conn)
    samples = [0.5 + i * 0.1 for i in range(100)]  # 0.5 .. 10.4 s
    for value in samples:
        metrics.record("local", "2026-03-01", successes=1, latency_s=value)
    totals = metrics.totals("local", "2026-03-01")
    assert totals.latency_count == 100
    assert totals.latency_p50_s == pytest.approx(samples[49], rel=0.05)
    assert totals.latency_p95_s == pytest.approx(samples[94], rel=0.05)
    assert metrics.totals("local", "2026-03-02").latency_p50_s is None


def test_latency_storage_stays_bounded(conn: sqlite3.Connection) -> None:
    metrics = MetricsStore(conn)
    for i in range(300):
        metrics.record("local", "2026-03-01", latency_s=(i % 50) * 0.3 + 0.001)
    rows = conn.execute("SELECT COUNT(*) FROM metrics_latency").fetchone()[0]
    assert rows <= 50
    assert latency_bucket(10**9) == latency_bucket(10**12)  # huge values share the last bucket


def test_metrics_survive_reopening_the_database(db_path: Path) -> None:
    MetricsStore(open_database(db_path)).record("openai", "2026-03-01", successes=2,
                                                failures_by_class={"QuotaExhausted": 1},
                                                cost_usd=0.5, latency_s=12.0)
    totals = MetricsStore(open_database(db_path)).totals("openai", "2026-01-01")
    assert (totals.successes, dict(totals.failures), totals.cost_usd) == (
        2, {"QuotaExhausted": 1}, 0.5)
    assert totals.latency_p50_s == pytest.approx(12.0, rel=0.05)


def test_prune_forgets_old_days(conn: sqlite3.Connection) -> None:
    metrics = MetricsStore(conn)
    metrics.record("local", "2025-01-01", successes=1, latency_s=1.0,
                   failures_by_class={"Transient": 1})
    metrics.record("local", "2026-01-01", successes=1)
    metrics.prune("2025-06-01")
    totals = metrics.totals("local", "2000-01-01")
    assert (totals.successes, dict(totals.failures), totals.latency_count) == (1, {}, 0)
