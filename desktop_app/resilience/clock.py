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


class ManualClock:
    """A clock whose sleepers wake only when ``advance()`` moves time past them.

    Unlike ``FakeClock`` (where each ``sleep()`` jumps time at once), several
    coroutines can sleep at the same time here, as they do on the real clock:
    the test decides when time moves, so it can look at the world while jobs
    wait (how many requests a rate limit let through, which job is waiting).
    ``sleep(0)`` only yields.
    """

    def __init__(self, start: float = 1000.0, *, wall_start: float = 1_700_000_000.0) -> None:
        self._mono = float(start)
        self._wall = float(wall_start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = 0

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall

    @property
    def sleepers(self) -> int:
        """Coroutines asleep on this clock right now."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    def advance(self, seconds: float) -> None:
        """Move time on and wake, in time order, every sleeper that is due."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back in time (asked to advance {seconds} s)")
        self._mono += seconds
        self._wall += seconds
        self._sleepers.sort(key=lambda item: (item[0], item[1]))
        due = [item for item in self._sleepers if item[0] <= self._mono]
        self._sleepers = [item for item in self._sleepers if item[0] > self._mono]
        for _, _, future in due:
            if not future.done():
                future.set_result(None)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._order += 1
        self._sleepers.append((self._mono + seconds, self._order, future))
        await future
