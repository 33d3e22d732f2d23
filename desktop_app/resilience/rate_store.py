"""A SQLite ``StateStore`` for pyrate-limiter's token bucket, so its state
(a few numbers per provider) survives a restart like the window buckets' rows.

The library ships in-memory, multiprocess and Redis state stores only; this is
its documented extension point, and the algorithm stays the library's.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from pyrate_limiter import Decision, Rate, StateAlgorithm, StateStore

State = tuple[float, ...]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ratelimit_state (
    key TEXT PRIMARY KEY,
    rates TEXT NOT NULL,
    state TEXT NOT NULL
)
"""


class SQLiteStateStore(StateStore):
    is_async = False

    def __init__(self, db_path: Path, *, key: str) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            str(db_path), isolation_level="DEFERRED", check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)
        self._conn.commit()
        self._key = key

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("rate limit store is closed")
        return self._conn

    @staticmethod
    def _signature(rates: list[Rate]) -> str:
        return json.dumps([[rate.limit, rate.interval, rate.burst] for rate in rates])

    def _load(self, algorithm: StateAlgorithm, rates: list[Rate]) -> State:
        row = self._db().execute(
            "SELECT rates, state FROM ratelimit_state WHERE key = ?", (self._key,)).fetchone()
        # state kept for other rates would be misread; start afresh after a settings change
        if row is None or row[0] != self._signature(rates):
            return algorithm.initial(rates)
        return algorithm.decode(json.loads(row[1]))

    def check(
        self, algorithm: StateAlgorithm, rates: list[Rate], now: int, weight: int
    ) -> Decision:
        new_state, decision = algorithm.step(rates, self._load(algorithm, rates), now, weight)
        if decision.allowed:
            db = self._db()
            db.execute(
                "INSERT OR REPLACE INTO ratelimit_state (key, rates, state) VALUES (?, ?, ?)",
                (self._key, self._signature(rates), json.dumps([str(v) for v in new_state])),
            )
            db.commit()
        return decision

    def read(self, algorithm: StateAlgorithm, rates: list[Rate]) -> State:
        return self._load(algorithm, rates)

    def reset(self) -> None:
        db = self._db()
        db.execute("DELETE FROM ratelimit_state WHERE key = ?", (self._key,))
        db.commit()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
