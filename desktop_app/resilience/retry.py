"""Retries on the same provider: the one retry loop of the app (tenacity).

Backoff is exponential with *proportional jitter*: before retry ``k`` (1-based)
the nominal delay is ``d = min(max_s, base_s * 2**(k-1))`` and the actual delay
is drawn uniformly from ``[(1 - jitter) * d, d]``. ``jitter=1.0`` is AWS's
"full jitter", ``jitter=0.5`` (the default) its "equal jitter", ``0`` none.
Delays therefore never exceed ``max_s``, and their floor still doubles, so
clients that failed together spread out without waiting longer than asked.

The loop never sleeps past the job's deadline: when the next delay would end
after it, the last error is raised at once so the engine can fail over while
there is still time. Errors ``should_retry`` rejects propagate at once, and
``asyncio.CancelledError`` (or any other BaseException that is not an
Exception) is never retried.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from desktop_app.resilience.clock import Clock

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3  # calls in all, the first included
    base_s: float = 1.0
    max_s: float = 30.0
    jitter: float = 0.5  # fraction of the nominal delay that may be shaved off

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("Invalid retry settings: at least 1 attempt is needed")
        if self.base_s < 0 or self.max_s < self.base_s:
            raise ValueError("Invalid retry settings: need 0 <= base delay <= maximum delay")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"Invalid retry settings: jitter must be in [0, 1], not {self.jitter}")

    def nominal_delay(self, retry_number: int) -> float:
        """The delay before retry ``retry_number`` (1-based), before jitter."""
        return min(self.max_s, self.base_s * 2.0 ** (retry_number - 1))

    def delay(self, retry_number: int, rng: random.Random) -> float:
        nominal = self.nominal_delay(retry_number)
        return nominal * (1.0 - self.jitter * rng.random())


async def retry_call(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    clock: Clock,
    rng: random.Random,
    deadline: float | Callable[[], float] | None,
    should_retry: Callable[[BaseException], bool],
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """Await ``fn()`` until it succeeds, retrying as ``policy`` allows.

    ``deadline`` is a monotonic instant (``clock.monotonic()`` scale), a function
    returning it (read before each sleep, for a deadline that may move), or None.
    ``on_retry(retry_number, error, delay_s)`` is called before each sleep.
    The error that ends the loop is raised as itself, never wrapped.
    """

    def retryable(error: BaseException) -> bool:
        return isinstance(error, Exception) and should_retry(error)

    def wait(state: RetryCallState) -> float:
        return policy.delay(state.attempt_number, rng)

    def stop(state: RetryCallState) -> bool:
        if state.attempt_number >= policy.max_attempts:
            return True
        if deadline is None:
            return False
        limit = deadline() if callable(deadline) else deadline
        return clock.monotonic() + state.upcoming_sleep > limit

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is None or state.outcome is None:
            return
        error = state.outcome.exception()
        if error is not None:
            on_retry(state.attempt_number, error, state.upcoming_sleep)

    async def attempt() -> T:
        # awaited here, so fn may be any callable returning an awaitable
        return await fn()

    retrying = AsyncRetrying(
        sleep=clock.sleep,
        stop=stop,
        wait=wait,
        retry=retry_if_exception(retryable),
        before_sleep=before_sleep,
        reraise=True,
    )
    return await retrying(attempt)
