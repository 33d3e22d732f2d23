"""The breaker's sliding window of call outcomes, count- or time-based."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Outcome:
    """One finished call as the breaker counts it.

    ``not_before`` is the monotonic instant before which the server asked us
    not to call again (from a Retry-After on a failure), if any.
    """

    at: float
    failed: bool
    slow: bool
    not_before: float | None = None


class OutcomeWindow:
    """The last ``size`` outcomes (``kind="count"``) or those of the last
    ``size`` seconds (``kind="time"``)."""

    def __init__(self, kind: Literal["count", "time"], size: float) -> None:
        self._kind = kind
        self._size = size
        self._items: deque[Outcome] = deque(maxlen=int(size) if kind == "count" else None)
        self._failed = 0
        self._slow = 0

    def add(self, outcome: Outcome) -> None:
        if self._items.maxlen is not None and len(self._items) == self._items.maxlen:
            self._forget(self._items[0])
        self._items.append(outcome)
        self._failed += outcome.failed
        self._slow += outcome.slow

    def prune(self, now: float) -> None:
        """Drop outcomes older than a time window; a count window keeps its last N."""
        if self._kind != "time":
            return
        horizon = now - self._size
        while self._items and self._items[0].at <= horizon:
            self._forget(self._items.popleft())

    def clear(self) -> None:
        self._items.clear()
        self._failed = 0
        self._slow = 0

    def _forget(self, outcome: Outcome) -> None:
        self._failed -= outcome.failed
        self._slow -= outcome.slow

    @property
    def calls(self) -> int:
        return len(self._items)

    @property
    def failed(self) -> int:
        return self._failed

    @property
    def slow(self) -> int:
        return self._slow

    def failure_rate(self) -> float | None:
        return self._failed / len(self._items) if self._items else None

    def slow_rate(self) -> float | None:
        return self._slow / len(self._items) if self._items else None

    def not_before(self) -> float | None:
        """The latest server-imposed "not before" instant among the outcomes."""
        stamps = [o.not_before for o in self._items if o.not_before is not None]
        return max(stamps) if stamps else None
