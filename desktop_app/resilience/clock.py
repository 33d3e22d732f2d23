"""Time as a parameter: the breaker, gate, limiter and retries read time only
through a ``Clock``, so tests and benchmarks drive them with a ``FakeClock``
and run in milliseconds (ARCHITECTURE.md, "Testing doctrine").
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Monotonic time for intervals, wall time for persisted stamps, and sleep."""

    def monotonic(self) -> float: ...

    def time(self) -> float:
        """Wall clock, epoch seconds."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: ``time.monotonic``, ``time.time`` and ``asyncio.sleep``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that moves only when told to.

    ``monotonic()`` starts at ``start``; ``time()`` starts at ``wall_start``
    (a plausible epoch instant) and moves in step with it. ``sleep()`` advances
    both at once, yields to the loop once, and records the requested seconds in
    ``slept`` so tests can assert how long code chose to wait.
    """

    def __init__(self, start: float = 1000.0, *, wall_start: float = 1_700_000_000.0) -> None:
        self._mono = float(start)
        self._wall = float(wall_start)
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back in time (asked to advance {seconds} s)")
        self._mono += seconds
        self._wall += seconds

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, float(seconds))
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)
