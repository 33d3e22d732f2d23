"""Running one job: try the route's candidates in order, each through its breaker,
cooldown gate, rate limiter and retry policy; classify every failure by the
taxonomy; move on only where the taxonomy allows; stop at the deadline.

The outcome is either images plus the full attempt record, or ``JobFailed``
whose message explains every provider's outcome in one readable text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Callable, Sequence

from desktop_app.domain.errors import (
    Cancelled,
    CircuitOpen,
    ContentRejected,
    Failover,
    JobFailed,
    Misconfigured,
    ProviderError,
    RateLimited,
    Transient,
)
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.job import Attempt, Outcome
from desktop_app.domain.request import MAX_SEED, GenerationRequest
from desktop_app.engine.budget import SpendingCap
from desktop_app.engine.estimates import Estimator
from desktop_app.engine.events import EventHub, JobAttempted, JobProgress, JobRouted, MetricsUpdated
from desktop_app.engine.metrics import Metrics
from desktop_app.engine.pacing import (
    Skipped,
    free_now,
    reserve_call,
    sleep_unless_cancelled,
    wait_for_rate_slot,
)
from desktop_app.engine.paid_calls import PaidCallJournal
from desktop_app.engine.router import BudgetCheck, Candidate, plan_route
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import CancelToken, Progress, ProviderKind
from desktop_app.providers.fitting import fit_for
from desktop_app.resilience.clock import Clock
from desktop_app.resilience.retry import retry_call

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class JobOutcome:
    images: tuple[GeneratedImage, ...]
    attempts: tuple[Attempt, ...]
    provider: str
    request: GenerationRequest  # as run: the seed it was given is recorded here
    # whether any call of this job went to a provider off this machine (cloud, remote)
    left_machine: bool = False

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd for a in self.attempts)


@dataclasses.dataclass
class JobContext:
    """What one run of a job needs from the engine around it."""

    job_id: int
    hub: EventHub
    metrics: Metrics
    clock: Clock
    rng: random.Random
    cancel: CancelToken
    # Monotonic instant. Time spent waiting for a rate-limit slot before the job's
    # first provider call moves it on: until then the job is as good as queued.
    deadline: float
    budget: SpendingCap | None = None
    cpu_after_cloud: bool = True
    on_attempt: Callable[[Attempt], None] | None = None
    billed_unusable_usd: float = 0.0  # calls that failed after being billed (billed_usd)
    # Called with True when the job starts waiting for a provider's rate limit and
    # False when it goes on, so the runner can start other jobs meanwhile.
    on_waiting: Callable[[bool], None] | None = None
    calls_started: int = 0  # provider calls begun for this job, on any provider
    paid_calls: PaidCallJournal | None = None  # marks the job during a cloud call
    estimator: Estimator | None = None  # for a strategy or cost cap; None: declared figures

    def route_budget(self) -> BudgetCheck | None:
        cap = self.budget
        if cap is None:
            return None
        return lambda slot: cap.skip_reason(slot.kind is ProviderKind.CLOUD)


SETTINGS_CHANGED = "its settings changed while this job waited"

# A 429 that names no wait still cools the provider down this long, so the next
# job does not hit the same limit at once.
DEFAULT_RATE_LIMIT_COOLDOWN_S = 10.0


def with_seed(request: GenerationRequest, rng: random.Random) -> GenerationRequest:
    """A request whose seed is set, so the seed used is always recorded."""
    if request.seed is not None:
        return request
    return request.replace(seed=rng.randint(0, MAX_SEED))


async def run_job(
    request: GenerationRequest, slots: Sequence[ProviderSlot], ctx: JobContext
) -> JobOutcome:
    request = with_seed(request, ctx.rng)
    plan = await plan_route(request, slots, budget=ctx.route_budget(),
                            cpu_after_cloud=ctx.cpu_after_cloud, estimator=ctx.estimator)
    attempts: list[Attempt] = []

    def note(attempt: Attempt) -> None:
        attempts.append(attempt)
        if ctx.on_attempt is not None:
            ctx.on_attempt(attempt)
        ctx.hub.emit(JobAttempted(ctx.job_id, attempt))

    for skip in plan.skipped:
        note(Attempt(skip.provider, Outcome.SKIPPED, message=skip.reason,
                     started_at=ctx.clock.time()))

    images: list[GeneratedImage] = []
    left_machine = False  # a call (even a failed one) sent the job off this machine
    last_error: ProviderError | None = None
    previous_failure: Attempt | None = None
    for position, candidate in enumerate(plan.candidates):
        if ctx.cancel.cancelled:
            raise Cancelled(ctx.cancel.reason)
        if ctx.clock.monotonic() >= ctx.deadline:
            last_error = Transient("the job's deadline passed before this provider could start")
            break
        slot = candidate.slot
        if previous_failure is not None:
            ctx.hub.emit(JobRouted(ctx.job_id, slot.name, _short(previous_failure)))
        remaining = request.replace(n=request.n - len(images)) if images else request
        started = ctx.clock.monotonic()
        started_wall = ctx.clock.time()
        billed_before = ctx.billed_unusable_usd
        later = plan.candidates[position + 1:]
        calls_before = ctx.calls_started
        try:
            got, adaptations = await _run_on(slot, candidate, remaining, ctx, later)
        except Skipped as skip:
            images.extend(skip.images)  # paid-for images from the calls made before it
            kept = f" ({len(skip.images)} image(s) kept)" if skip.images else ""
            note(Attempt(slot.name, Outcome.SKIPPED, message=skip.reason + kept,
                         cost_usd=sum(i.cost_usd for i in skip.images),
                         started_at=started_wall))
            continue
        except _CallsFailed as failed:
            error = failed.error
            error.provider = error.provider or slot.name
            last_error = error
            images.extend(failed.images)  # paid-for images from the calls that did succeed
            kept = f" ({len(failed.images)} image(s) kept)" if failed.images else ""
            previous_failure = Attempt(
                slot.name, Outcome.FAILED, error=error.kind, message=error.message + kept,
                duration_s=ctx.clock.monotonic() - started, adaptations=failed.adaptations,
                cost_usd=sum(i.cost_usd for i in failed.images)
                + ctx.billed_unusable_usd - billed_before, started_at=started_wall,
            )
            note(previous_failure)
            if isinstance(error, Cancelled):
                raise error from None
            if not _may_fail_over(error, request):
                break
            continue
        finally:
            left_machine = left_machine or _called_off_machine(slot, ctx, calls_before)
        images.extend(got)
        note(Attempt(
            slot.name, Outcome.SUCCEEDED, message=f"{len(got)} image(s)",
            duration_s=ctx.clock.monotonic() - started, adaptations=adaptations,
            cost_usd=sum(i.cost_usd for i in got) + ctx.billed_unusable_usd - billed_before,
            started_at=started_wall,
        ))
        return JobOutcome(tuple(images), tuple(attempts), slot.name, request, left_machine)

    if images:  # some calls succeeded before every provider failed: keep what was made
        return JobOutcome(tuple(images), tuple(attempts), images[-1].provider, request,
                          left_machine)
    raise JobFailed(_failure_message(attempts, last_error, request),
                    final=type(last_error) if last_error else None)


def _called_off_machine(slot: ProviderSlot, ctx: JobContext, calls_before: int) -> bool:
    return slot.kind is not ProviderKind.LOCAL and ctx.calls_started > calls_before


def _may_fail_over(error: ProviderError, request: GenerationRequest) -> bool:
    if error.failover is Failover.NO:
        return False
    if error.failover is Failover.IF_ALLOWED:
        return request.policy.allow_failover_after_refusal
    return True  # YES, and IF_FITS: every later candidate was fitted by the router


class _CallsFailed(Exception):
    """A provider's call failed; ``images`` holds what its earlier calls made."""

    def __init__(self, error: ProviderError, images: list[GeneratedImage],
                 adaptations: tuple[str, ...]) -> None:
        super().__init__(error.message)
        self.error = error
        self.images = images
        self.adaptations = adaptations


async def _run_on(
    slot: ProviderSlot, candidate: Candidate, request: GenerationRequest, ctx: JobContext,
    later: Sequence[Candidate],
) -> tuple[list[GeneratedImage], tuple[str, ...]]:
    """All the calls one provider needs for the request; raises taxonomy errors.

    ``later`` are the route's next candidates: while none of this provider's
    calls has been made, one of them that can serve now is preferred to waiting
    for this provider's rate limit.
    """
    fit = candidate.fit
    if request.n != sum(c.n for c in fit.calls):  # partial images came from a previous provider
        fit = fit_for(request, slot.provider,
                      allow_adaptation=request.policy.allow_adaptation)
    if slot.retired:
        raise Skipped(SETTINGS_CHANGED)
    images: list[GeneratedImage] = []
    slot.in_flight += 1  # a retired slot is closed only once no job uses it
    try:
        for index, call in enumerate(fit.calls):
            images.extend(await _call_with_retries(slot, call, ctx, later if index == 0 else (),
                                                   first_call=index == 0))
    except ProviderError as error:
        raise _CallsFailed(error, images, fit.adaptations) from error
    except Skipped as skip:
        raise Skipped(skip.reason, images) from None
    finally:
        slot.in_flight -= 1
        if slot.retired and slot.in_flight == 0 and slot.on_idle is not None:
            slot.on_idle()
    return images, fit.adaptations


async def _call_with_retries(
    slot: ProviderSlot, request: GenerationRequest, ctx: JobContext,
    later: Sequence[Candidate] = (), *, first_call: bool = False,
) -> list[GeneratedImage]:
    """One call of the job on ``slot``, retried as its policy allows. Every attempt
    is an HTTP request for the provider's limits: each takes a rate-limit slot."""
    first_attempt = True

    def should_retry(error: BaseException) -> bool:
        if isinstance(error, RateLimited):
            wait = error.retry_after or 0.0
            return 0 < wait <= slot.max_rate_limit_wait_s and (
                ctx.clock.monotonic() + wait < ctx.deadline)
        return isinstance(error, ProviderError) and error.retry_same

    async def once() -> list[GeneratedImage]:
        nonlocal first_attempt
        if ctx.cancel.cancelled:
            raise Cancelled(ctx.cancel.reason)
        wait = slot.gate.remaining()
        if wait > 0:
            # Only a short wait is worth it; a long one fails over (ARCHITECTURE: RateLimited).
            if wait > slot.max_rate_limit_wait_s or ctx.clock.monotonic() + wait >= ctx.deadline:
                raise RateLimited(f"{slot.name} is cooling down for {wait:.0f} s after a rate "
                                  "limit", retry_after=wait)
            await sleep_unless_cancelled(ctx, wait)
        may_move_on = first_attempt and any(free_now(c.slot) for c in later)
        first_attempt = False
        return await _call_when_allowed(slot, request, ctx, may_move_on=may_move_on,
                                        first_call=first_call)

    try:
        return await retry_call(
            once, policy=slot.retry, clock=ctx.clock, rng=ctx.rng, deadline=lambda: ctx.deadline,
            should_retry=should_retry,
            on_retry=lambda n, err, delay: log.info(
                "%s: retry %d in %.1f s after %s", slot.name, n, delay, err),
        )
    except CircuitOpen as error:
        raise Skipped(f"breaker open: {error.message}") from error


async def _call_when_allowed(
    slot: ProviderSlot, request: GenerationRequest, ctx: JobContext, *, may_move_on: bool,
    first_call: bool,
) -> list[GeneratedImage]:
    """Make one provider call once the spending cap and the rate limit allow it.

    The slot is taken inside the provider's concurrency limit, right before the
    call, so the limiter counts requests when they are sent. Waiting for a slot
    happens outside that limit: a waiting job holds nothing other jobs need.
    """
    while True:
        reservation = reserve_call(slot, request, ctx)
        try:
            async with slot.semaphore:
                if slot.retired and first_call:
                    raise Skipped(SETTINGS_CHANGED)
                if slot.limiter is None or await slot.limiter.try_acquire():
                    return await _call_once(slot, request, ctx)
        finally:
            reservation.release()
        await wait_for_rate_slot(slot, ctx, may_move_on=may_move_on)


async def _call_once(
    slot: ProviderSlot, request: GenerationRequest, ctx: JobContext
) -> list[GeneratedImage]:
    permit = slot.breaker.try_acquire()
    started = ctx.clock.monotonic()

    def progress(update: Progress) -> None:
        ctx.hub.emit(JobProgress(ctx.job_id, slot.name, update.step, update.total,
                                 update.message, update.preview_png))

    error: ProviderError | None = None
    images: list[GeneratedImage] = []
    remaining = ctx.deadline - ctx.clock.monotonic()
    if remaining <= 0:  # waited out the deadline (e.g. for the GPU): not the provider's fault
        permit.ignore()
        raise Transient(f"the job's deadline passed before {slot.name} could start")
    ctx.calls_started += 1
    paid = ctx.paid_calls if slot.kind is ProviderKind.CLOUD else None
    if paid is not None:
        await paid.started(slot.name)
    try:
        async with asyncio.timeout(remaining):
            images = await slot.provider.generate(request, progress, ctx.cancel)
    except TimeoutError:
        error = Transient(f"{slot.name} did not finish before the job's deadline")
    except asyncio.CancelledError:
        permit.ignore()
        raise
    except ProviderError as exc:
        error = exc
    except Exception as exc:  # a provider bug must not take the engine down
        # The exception's text may hold anything (even a key): it goes to the
        # redacted log only, never into the job's record or image metadata.
        log.exception("%s raised an unclassified error", slot.name)
        error = Transient(f"{slot.name} failed unexpectedly ({type(exc).__name__}); "
                          "details are in the log")
    if error is None and not images:
        error = Transient(f"{slot.name} returned no images")
    if paid is not None:  # a cancelled (app stopping) call keeps its mark for recovery
        paid.ended(charged=error is None)
    duration = ctx.clock.monotonic() - started
    if isinstance(error, Misconfigured) and request.model is not None:
        # The job's own model choice failed, not the provider's setup: other jobs
        # (with the configured model) must not find the provider forced open.
        permit.ignore()
    else:
        permit.record(error, duration)
    if error is not None:
        if isinstance(error, RateLimited):
            slot.gate.cool_down(error.retry_after or DEFAULT_RATE_LIMIT_COOLDOWN_S,
                                error.message)
        ctx.metrics.record_failure(slot.name, error.kind, duration, error.billed_usd)
        ctx.billed_unusable_usd += error.billed_usd  # paid for although it failed
        ctx.hub.emit(MetricsUpdated(slot.name))
        error.provider = slot.name
        raise error
    ctx.metrics.record_success(slot.name, duration, len(images), sum(i.cost_usd for i in images),
                               pixels=request.width * request.height)
    ctx.hub.emit(MetricsUpdated(slot.name))
    return images


def _short(attempt: Attempt) -> str:
    return f"{attempt.provider} {attempt.error or 'failed'}: {attempt.message}"


def _failure_message(
    attempts: Sequence[Attempt], last_error: ProviderError | None, request: GenerationRequest
) -> str:
    if not attempts:
        return ("No provider is set up to serve this job: "
                "add an OpenAI key or a local model in Settings.")
    refused = isinstance(last_error, ContentRejected)
    if refused and not request.policy.allow_failover_after_refusal:
        head = "The prompt was refused and failover after a refusal is off"
    elif refused:
        head = "The prompt was refused by every provider that was tried"
    else:
        head = "No provider could serve this job"
    return head + ":\n" + "\n".join(f"- {a.describe()}" for a in attempts)
