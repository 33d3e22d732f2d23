"""What a provider call waits for before it is made: room under the spending caps
and a free slot in the provider's rate limit.

Rate limits delay, they don't fail: a job whose provider has no free slot waits
for the next one (and says so with ``JobWaiting``), unless another provider of
its route can serve it now or the slot comes after the job's deadline. The
limits count requests, so each attempt of each call takes a slot.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from desktop_app.domain.errors import Cancelled, RateLimited
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.budget import OverBudget, Reservation
from desktop_app.engine.events import JobWaiting
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import most_cost_usd
from desktop_app.resilience.breaker import BreakerState

if TYPE_CHECKING:
    from desktop_app.engine.failover import JobContext


class Skipped(Exception):
    """The provider was not (or no longer) called; ``images`` holds what its earlier
    calls for this job made."""

    def __init__(self, reason: str, images: Sequence[GeneratedImage] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.images = list(images)


def reserve_call(slot: ProviderSlot, request: GenerationRequest, ctx: JobContext) -> Reservation:
    """Hold the call's expected cost against the spending caps (a skip when it would pass one)."""
    if ctx.budget is None:
        return Reservation(None)
    expected = most_cost_usd(slot.provider, request)
    what = f"a call for {request.n} image{'s' if request.n != 1 else ''} on {slot.name}"
    try:
        return ctx.budget.reserve(slot.name, expected, what)
    except OverBudget as over:
        raise Skipped(over.reason) from None


def free_now(slot: ProviderSlot) -> bool:
    """Whether this provider could take a call at once, as far as we can tell without asking it."""
    if slot.retired or slot.full or slot.gate.remaining() > 0:
        return False
    if slot.breaker.state not in (BreakerState.CLOSED, BreakerState.HALF_OPEN):
        return False
    if slot.breaker.retry_after() is not None:  # half-open with its trial calls out
        return False
    return slot.limiter is None or not slot.limiter.retry_after()


async def wait_for_rate_slot(slot: ProviderSlot, ctx: JobContext, *, may_move_on: bool) -> None:
    """After the limiter said no: move on, give up at the deadline, or wait and say so."""
    limiter = slot.limiter
    assert limiter is not None
    wait = limiter.retry_after()
    limits = limiter.describe()
    if wait is None:  # can never fit (cannot happen with our rates of at least 1 call)
        raise Skipped(f"rate limit reached ({limits})")
    if may_move_on:
        raise Skipped(f"rate limit reached ({limits}); next slot in {_secs(wait)} s")
    if ctx.clock.monotonic() + wait >= ctx.deadline:
        raise RateLimited(f"{slot.name}'s rate limit ({limits}) has no free slot before the "
                          f"job's deadline (next in {_secs(wait)} s)", retry_after=wait)
    ctx.hub.emit(JobWaiting(ctx.job_id, slot.name, wait, "rate limit"))
    if ctx.on_waiting is not None:
        ctx.on_waiting(True)
    before_first_call = ctx.calls_started == 0
    started = ctx.clock.monotonic()
    try:
        await sleep_unless_cancelled(ctx, wait)
    finally:
        if ctx.on_waiting is not None:
            ctx.on_waiting(False)
        if before_first_call:  # still as good as queued: the wait is not the job's time
            ctx.deadline += ctx.clock.monotonic() - started


async def sleep_unless_cancelled(ctx: JobContext, seconds: float) -> None:
    sleeper = asyncio.ensure_future(ctx.clock.sleep(seconds))
    canceller = asyncio.ensure_future(ctx.cancel.wait())
    try:
        await asyncio.wait({sleeper, canceller}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        canceller.cancel()
    if ctx.cancel.cancelled:
        raise Cancelled(ctx.cancel.reason)


def _secs(seconds: float) -> int:
    """Whole seconds for a message; a limiter's wait ends a millisecond past the window."""
    return math.ceil(round(seconds, 1))
