"""Per-provider rate limiting on pyrate-limiter 4.5 (its async API).

One ``ProviderRateLimiter`` per provider holds several rates at once
("5/min, 200/day"), counted per request sent. ``try_acquire`` never waits: the
engine takes a slot right before each call, and on "no" reads ``retry_after()``
to decide whether to wait for the next slot or move on (``engine/pacing.py``).

Strategies are the library's own algorithms:

- ``SLIDING_WINDOW`` (default): ``SlidingWindowLog``, an exact rolling window;
  one stored row per call.
- ``FIXED_WINDOW``: ``FixedWindow``, counts that reset on wall-clock aligned
  boundaries (UTC midnight for a daily rate), to mirror an API that resets so.
- ``TOKEN_BUCKET``: ``TokenBucket`` (GCRA), a smooth refill of ``limit`` per
  period with bursts up to ``limit``; a few numbers of state per provider.

With ``db_path`` the counts live in a SQLite file, so a daily limit survives a
restart; the window strategies use the library's ``SQLiteBucket``, the token
bucket a small SQLite ``StateStore`` of ours. Time comes from the injected
``Clock`` (wall time when persisted, since monotonic time restarts with the
machine), fed to the library through its ``now()`` hook. Old rows are trimmed
on acquire rather than by the library's background leak thread, so nothing
runs outside the event loop.
"""

from __future__ import annotations

import enum
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pyrate_limiter import (
    AbstractBucket,
    AbstractClock,
    FixedWindow,
    InMemoryBucket,
    InMemoryStateStore,
    Limiter,
    LogAlgorithm,
    Rate,
    RateItem,
    SingleBucketFactory,
    SlidingWindowLog,
    SQLiteBucket,
    StateBucket,
    StateStore,
    TokenBucket,
)

from desktop_app.resilience.clock import Clock, SystemClock
from desktop_app.resilience.rate_store import SQLiteStateStore

_LEAK_EVERY_MS = 60_000
_UNITS = ((604_800, "week"), (86_400, "day"), (3_600, "h"), (60, "min"), (1, "s"))


@dataclass(frozen=True)
class RateSpec:
    """At most ``limit`` calls in any ``period_s`` seconds."""

    limit: int
    period_s: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.period_s <= 0:
            raise ValueError(
                f"A rate limit needs at least 1 call in a positive period, not {self.limit} "
                f"per {self.period_s:g} s"
            )

    def describe(self) -> str:
        for seconds, unit in _UNITS:
            if self.period_s == seconds:
                return f"{self.limit}/{unit}"
        return f"{self.limit}/{self.period_s:g} s"


class RateStrategy(enum.Enum):
    SLIDING_WINDOW = "sliding_window"
    FIXED_WINDOW = "fixed_window"
    TOKEN_BUCKET = "token_bucket"


class _ClockedMemoryBucket(InMemoryBucket):
    def __init__(self, rates: list[Rate], algorithm: LogAlgorithm, now_ms: _NowMs) -> None:
        super().__init__(rates, algorithm=algorithm)
        self._now_ms = now_ms

    def now(self) -> int:
        return self._now_ms()


class _ClockedSQLiteBucket(SQLiteBucket):
    _now_ms: _NowMs

    def now(self) -> int:
        return self._now_ms()


class _NowMs:
    """Our clock in the integer milliseconds pyrate-limiter counts in."""

    def __init__(self, clock: Clock, *, wall: bool) -> None:
        self._read = clock.time if wall else clock.monotonic

    def __call__(self) -> int:
        return int(self._read() * 1000)


class ProviderRateLimiter:
    def __init__(
        self,
        name: str,
        rates: Sequence[RateSpec],
        *,
        db_path: Path | None = None,
        clock: Clock | None = None,
        strategy: RateStrategy = RateStrategy.SLIDING_WINDOW,
    ) -> None:
        if not rates:
            raise ValueError(f"Rate limiter for {name} needs at least one rate")
        self.name = name
        self.strategy = strategy
        self._specs = tuple(rates)
        self._key = name
        persisted = db_path is not None
        self._now_ms = _NowMs(clock or SystemClock(),
                              wall=persisted or strategy is RateStrategy.FIXED_WINDOW)
        lib_rates = _library_rates(name, self._specs)
        self._bucket = self._make_bucket(lib_rates, db_path)
        self._limiter = Limiter(SingleBucketFactory(self._bucket, schedule_leak=False))
        self._free_at_ms: int | None = None
        self._last_leak_ms = self._now_ms()
        self._closed = False

    def _make_bucket(self, rates: list[Rate], db_path: Path | None) -> AbstractBucket:
        table = "ratelimit_" + re.sub(r"[^A-Za-z0-9_]", "_", self.name)
        if self.strategy is RateStrategy.TOKEN_BUCKET:
            store: StateStore = (InMemoryStateStore() if db_path is None
                                 else SQLiteStateStore(db_path, key=self.name))
            return StateBucket(rates, algorithm=TokenBucket(), store=store,
                               clock=_LibClock(self._now_ms))
        algorithm: LogAlgorithm = (FixedWindow() if self.strategy is RateStrategy.FIXED_WINDOW
                                   else SlidingWindowLog())
        if db_path is None:
            return _ClockedMemoryBucket(rates, algorithm, self._now_ms)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        bucket = _ClockedSQLiteBucket.init_from_file(
            rates, table=table, db_path=str(db_path), algorithm=algorithm)
        assert isinstance(bucket, _ClockedSQLiteBucket)
        bucket._now_ms = self._now_ms
        bucket.conn.execute("PRAGMA journal_mode=WAL")
        bucket.conn.execute("PRAGMA synchronous=NORMAL")
        return bucket

    async def try_acquire(self) -> bool:
        """Count one call and return True, or return False at once when any rate is full."""
        if self._closed:
            raise RuntimeError(f"rate limiter for {self.name} is closed")
        self._maybe_leak()
        allowed = await self._limiter.try_acquire_async(self._key, blocking=False)
        if allowed:
            self._free_at_ms = None
            return True
        now = self._now_ms()
        wait = self._bucket.waiting(RateItem(self._key, now))
        assert isinstance(wait, int)  # our buckets are all synchronous
        self._free_at_ms = now + wait if wait >= 0 else None
        return False

    def retry_after(self) -> float | None:
        """Seconds until the last refused call would fit (the rate that refused it),
        or None when nothing was refused since the last success."""
        if self._free_at_ms is None:
            return None
        return max(0.0, (self._free_at_ms - self._now_ms()) / 1000.0)

    def describe(self) -> str:
        return ", ".join(spec.describe() for spec in self._specs)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._limiter.close()

    def _maybe_leak(self) -> None:
        now = self._now_ms()
        if now - self._last_leak_ms >= _LEAK_EVERY_MS:
            self._last_leak_ms = now
            self._bucket.leak(now)


class _LibClock(AbstractClock):
    """Adapter for buckets that take a pyrate-limiter clock object."""

    def __init__(self, now_ms: _NowMs) -> None:
        self._now_ms = now_ms

    def now(self) -> int:
        return self._now_ms()


def _library_rates(name: str, specs: Sequence[RateSpec]) -> list[Rate]:
    """pyrate-limiter's rates, without those another rate makes redundant.

    The library wants each longer period to have a higher limit and a lower
    average rate. A rate that breaks this because it can never bind (10/min
    next to 5/h; 1000/h next to 5/min) is dropped; one that truly cannot be
    expressed is an error the user can fix in the settings.
    """
    ordered = sorted({(s.limit, round(s.period_s * 1000)) for s in specs}, key=lambda r: r[1])
    kept: list[tuple[int, int]] = []
    for i, (limit, period) in enumerate(ordered):
        shadowed_by_longer = any(lim <= limit for lim, _ in ordered[i + 1:])
        shadowed_by_shorter = any(
            limit >= lim * -(-period // per) for lim, per in ordered[:i])
        if not (shadowed_by_longer or shadowed_by_shorter):
            kept.append((limit, period))
    if not _valid(kept):
        listed = ", ".join(s.describe() for s in specs)
        raise ValueError(
            f"Rate limits for {name} cannot be combined ({listed}): each longer period needs "
            "a higher limit but a lower average rate than the shorter ones. Adjust them in "
            "Settings."
        )
    return [Rate(limit, period) for limit, period in kept]


def _valid(rates: list[tuple[int, int]]) -> bool:
    return all(
        later_limit > limit and later_limit / later_period <= limit / period
        for (limit, period), (later_limit, later_period) in itertools.pairwise(rates)
    )


__all__ = ["ProviderRateLimiter", "RateSpec", "RateStrategy"]
