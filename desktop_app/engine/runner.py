"""The queue runner: takes jobs from the store in priority-then-age order and runs
each through the failover loop, saves its images, and records the outcome.

Runs on the engine's loop; the store is reached only through ``StoreThread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Sequence

from desktop_app.domain.errors import Cancelled, ImageDeskError, JobFailed
from desktop_app.domain.job import Attempt, Job, JobState
from desktop_app.domain.request import GenerationRequest, RouteStrategy
from desktop_app.engine.budget import SpendingCap
from desktop_app.engine.estimates import Estimator
from desktop_app.engine.events import EventHub, JobFinished, JobStarted
from desktop_app.engine.failover import JobContext, JobOutcome, run_job
from desktop_app.engine.metrics import Metrics
from desktop_app.engine.paid_calls import PaidCallJournal
from desktop_app.engine.prompt_expansion import PromptExpander
from desktop_app.engine.slots import ProviderSlot
from desktop_app.engine.store_thread import StoreThread
from desktop_app.providers.base import CancelToken
from desktop_app.resilience.clock import Clock
from desktop_app.store.jobs import JobQueue

log = logging.getLogger(__name__)


# How long a cancelled running job may take to stop by itself before its task is cancelled.
CANCEL_GRACE_S = 5.0


@dataclasses.dataclass
class RunnerSettings:
    job_deadline_s: float = 900.0
    max_parallel_jobs: int = 3
    cpu_after_cloud: bool = True


class QueueRunner:
    def __init__(
        self,
        *,
        queue: JobQueue,
        store: StoreThread,
        slots: Sequence[ProviderSlot],
        hub: EventHub,
        metrics: Metrics,
        clock: Clock,
        rng: random.Random,
        save: Callable[[Job, JobOutcome], Awaitable[list[int]]],
        settings: RunnerSettings | None = None,
        budget: SpendingCap | None = None,
        on_attempt: Callable[[int, Attempt], None] | None = None,
        prompts: PromptExpander | None = None,
        estimates: Callable[[], Awaitable[Estimator]] | None = None,
    ) -> None:
        self._queue = queue
        self._store = store
        self.slots = list(slots)
        self._hub = hub
        self._metrics = metrics
        self._clock = clock
        self._rng = rng
        self._save = save
        self.settings = settings or RunnerSettings()
        self._budget = budget
        self._on_attempt = on_attempt
        self._prompts = prompts or PromptExpander(None)
        self._estimates = estimates
        self._wake = asyncio.Event()
        self._running: dict[int, tuple[asyncio.Task[None], CancelToken]] = {}
        self._starting: dict[int, str | None] = {}  # job id -> cancel reason, if cancelled
        self._waiting: set[int] = set()  # running jobs waiting for a provider's rate limit
        self._stopping = False

    # -- control -----------------------------------------------------------------

    def wake(self) -> None:
        """Look at the queue again (a job was added, retried, or the queue resumed)."""
        self._wake.set()

    @property
    def running_ids(self) -> list[int]:
        return list(self._running)

    def cancel_running(self, job_id: int, reason: str = "cancelled by the user") -> bool:
        if job_id in self._starting:  # between the store's start and its task: cancel at launch
            self._starting[job_id] = reason
            return True
        entry = self._running.get(job_id)
        if entry is None:
            return False
        task, token = entry
        token.cancel(reason)
        asyncio.get_running_loop().call_later(CANCEL_GRACE_S, _cancel_if_running, task)
        return True

    async def run_now(self, job_id: int) -> None:
        """Run one queued job at once, whatever its place in the queue (CLI ``generate``)."""
        task = await self._start_and_launch(job_id)
        await asyncio.gather(task, return_exceptions=True)

    async def run(self, *, until_idle: bool = False) -> None:
        """Start jobs as capacity allows; with ``until_idle``, return once the queue is empty."""
        self._stopping = False
        while not self._stopping:
            self._wake.clear()
            try:
                started = await self._start_next() if not await self._paused() else False
            except Exception:  # a store fault must not stop the queue for good
                log.exception("could not start the next job; trying again shortly")
                await asyncio.sleep(1.0)
                continue
            if started:
                continue
            if until_idle and not self._running and await self._queue_is_idle():
                return
            await self._wake.wait()

    async def stop(self, *, finish_running: bool) -> None:
        """Stop taking jobs; either let the running ones finish or put them back in the queue."""
        self._stopping = True
        self._wake.set()
        tasks = [task for task, _ in self._running.values()]
        if not finish_running:
            for task in tasks:
                task.cancel()
        while self._running:  # includes any job launched while we waited
            await asyncio.gather(*(t for t, _ in tuple(self._running.values())),
                                 return_exceptions=True)

    # -- internals ---------------------------------------------------------------

    async def _queue_is_idle(self) -> bool:
        nothing_left = await self._store.run(self._queue.next_runnable, ()) is None
        return nothing_left or await self._paused()

    async def _paused(self) -> bool:
        return await self._store.run(self._queue.is_paused)

    async def _start_next(self) -> bool:
        # A job waiting for a rate-limit slot holds no place: another job that can
        # run now starts beside it (calls stay bounded by each provider's concurrency).
        working = len(self._running) - len(self._waiting)
        if working >= self.settings.max_parallel_jobs:
            return False
        job = await self._store.run(self._queue.next_runnable, tuple(self._running))
        if job is None or self._stopping:
            return False
        await self._start_and_launch(job.id)
        return True

    async def _start_and_launch(self, job_id: int) -> asyncio.Task[None]:
        self._starting[job_id] = None
        try:
            job = await self._store.run(self._queue.start, job_id)
        finally:
            cancelled = self._starting.pop(job_id, None)
        task = self._launch(job)
        if cancelled is not None:
            self.cancel_running(job_id, cancelled)
        return task

    def _launch(self, job: Job) -> asyncio.Task[None]:
        token = CancelToken()
        task = asyncio.create_task(self._run_one(job, token), name=f"job-{job.id}")
        self._running[job.id] = (task, token)
        task.add_done_callback(functools.partial(self._finished, job.id))
        self._hub.emit(JobStarted(job.id))
        return task

    def _finished(self, job_id: int, _task: object = None) -> None:
        self._running.pop(job_id, None)
        self._waiting.discard(job_id)
        self._wake.set()

    def _set_waiting(self, job_id: int, waiting: bool) -> None:
        if waiting:
            self._waiting.add(job_id)
            self._wake.set()
        else:
            self._waiting.discard(job_id)

    async def _run_one(self, job: Job, token: CancelToken) -> None:
        def on_attempt(attempt: Attempt) -> None:
            self._store.submit(self._queue.add_attempt, job.id, attempt)
            if self._on_attempt is not None:
                self._on_attempt(job.id, attempt)

        ctx = JobContext(
            job_id=job.id, hub=self._hub, metrics=self._metrics, clock=self._clock,
            rng=self._rng, cancel=token,
            deadline=self._clock.monotonic() + self.settings.job_deadline_s,
            budget=self._budget, cpu_after_cloud=self.settings.cpu_after_cloud,
            on_attempt=on_attempt, on_waiting=functools.partial(self._set_waiting, job.id),
            paid_calls=PaidCallJournal(self._store, self._queue, job.id),
        )
        try:
            request = await self._prompts.for_run(job.request, self._rng)
            ctx.estimator = await self._estimator_for(request)
            outcome = await run_job(request, self.slots, ctx)
            image_ids = await self._save(job, outcome)
        except Cancelled as error:
            await self._finish(job, JobState.CANCELLED, error="Cancelled", message=error.message)
        except JobFailed as error:
            final = error.final.__name__ if error.final else "NoProvider"
            await self._finish(job, JobState.FAILED, error=final, message=error.message)
        except asyncio.CancelledError:
            if token.cancelled:  # the user's cancel, after the grace period
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._finish(job, JobState.CANCELLED, error="Cancelled",
                                                      message=token.reason))
            # otherwise the app is stopping: the job stays running and is requeued on next start
            raise
        except ImageDeskError as error:  # a typed fault after the call (the output folder)
            log.info("job %d failed: %s", job.id, error.message)
            await self._finish(job, JobState.FAILED, error=type(error).__name__,
                               message=error.message)
        except Exception as error:
            log.exception("job %d failed with an internal error", job.id)
            await self._finish(job, JobState.FAILED, error="InternalError",
                               message=f"ImageDesk hit an internal error: {error}")
        else:
            self._hub.emit(JobFinished(job.id, JobState.SUCCEEDED, outcome.provider,
                                       tuple(image_ids)))

    async def _estimator_for(self, request: GenerationRequest) -> Estimator | None:
        """History is read only for a job whose strategy or cost cap needs it."""
        policy = request.policy
        if self._estimates is None or (policy.strategy is RouteStrategy.PREFER_LOCAL
                                       and policy.max_cost_usd is None):
            return None
        return await self._estimates()

    async def _finish(self, job: Job, state: JobState, *, error: str, message: str) -> None:
        """Record the end; if even that fails (disk full, database locked), say so in the
        event and the log, so no view waits forever on a job that is over for this run."""
        try:
            await self._store.run(self._queue.finish, job.id, state, error=error,
                                  error_message=message)
        except Exception as store_error:
            log.exception("job %d: could not record it as %s", job.id, state.value)
            message = (f"{message} (ImageDesk could not record this: {store_error}; the job "
                       "will be retried on the next start)")
        self._hub.emit(JobFinished(job.id, state, None, (), error, message))


def _cancel_if_running(task: asyncio.Task[None]) -> None:
    if not task.done():
        task.cancel()
