"""``Engine``: the one object both faces (the window and the CLI) drive.

It owns the queue runner, the provider slots, metrics and the event hub, and
reaches the store only through its thread. Every user action — submit, cancel,
retry, reorder, pause, search the gallery, reset a provider — is a method here,
so neither face holds a business rule.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import logging
import random
from collections.abc import Collection, Sequence
from pathlib import Path

from desktop_app.domain.content_filter import check_blocked_terms
from desktop_app.domain.errors import ImageDeskError
from desktop_app.domain.job import Job, JobState
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.budget import Budget, SpendTracker
from desktop_app.engine.events import (
    EventHub,
    JobAdded,
    JobFinished,
    ProviderStateChanged,
    QueueChanged,
)
from desktop_app.engine.failover import JobOutcome
from desktop_app.engine.metrics import CallRecord, Metrics
from desktop_app.engine.nsfw import NsfwMode, NsfwSettings, Scorer, screen_images
from desktop_app.engine.runner import QueueRunner, RunnerSettings
from desktop_app.engine.saving import ImageSaver
from desktop_app.engine.slots import ProviderSlot
from desktop_app.engine.status import ProviderStatus, gather_statuses
from desktop_app.engine.store_thread import StoreThread
from desktop_app.providers.base import ProviderKind
from desktop_app.resilience.breaker import BreakerTransition
from desktop_app.resilience.clock import Clock, SystemClock
from desktop_app.store.files import ImportReport, import_folder
from desktop_app.store.gallery import Gallery, ImageRecord
from desktop_app.store.jobs import JobQueue
from desktop_app.store.metrics import MetricsStore
from desktop_app.store.profile_lock import ProfileBusy, ProfileLock

log = logging.getLogger(__name__)

LOCK_RETRY_S = 2.0


class Engine:
    def __init__(
        self,
        *,
        queue: JobQueue,
        gallery: Gallery,
        metrics_store: MetricsStore,
        saver: ImageSaver,
        slots: Sequence[ProviderSlot],
        store: StoreThread | None = None,
        hub: EventHub | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        runner_settings: RunnerSettings | None = None,
        budget: Budget | None = None,
        blocked_terms: Sequence[str] = (),
        nsfw: NsfwSettings | None = None,
        nsfw_scorer: Scorer | None = None,
        lock: ProfileLock | None = None,
    ) -> None:
        self.hub = hub or EventHub()
        self.clock = clock or SystemClock()
        self.metrics = Metrics(sink=self._persist_call)
        self.slots = list(slots)
        self.budget = budget or Budget()
        self.blocked_terms = list(blocked_terms)
        self.nsfw = nsfw or NsfwSettings()
        self._nsfw_scorer = nsfw_scorer
        # Only the process holding the profile's lock recovers and runs its queue:
        # a CLI beside the window must not requeue the window's running jobs.
        self._lock = lock
        self._queue = queue
        self._gallery = gallery
        self._metrics_store = metrics_store
        self.saver = saver
        self._store = store or StoreThread()
        self._runner = QueueRunner(
            queue=queue, store=self._store, slots=self.slots, hub=self.hub, metrics=self.metrics,
            clock=self.clock, rng=rng or random.Random(), save=self._save_images,
            settings=runner_settings, budget=self._over_budget,
        )
        self._runner_task: asyncio.Task[None] | None = None
        self._waiters: dict[int, list[asyncio.Future[Job]]] = {}
        self._background: set[asyncio.Future[None]] = set()
        self._closed = False
        self._spend = SpendTracker(self.clock)
        self.hub.subscribe(self._on_event)
        for slot in self.slots:
            slot.breaker.on_transition = self._on_breaker_transition

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> list[int]:
        """Recover jobs a crash left running, then run the queue in the background.

        If another process runs this profile's queue, jobs added here wait for it
        (it picks them up), and this engine takes over once that process exits."""
        if self._owns_queue():
            recovered = await self._recover()
            self._runner_task = asyncio.create_task(self._runner.run(), name="imagedesk-runner")
            return recovered
        log.warning("another ImageDesk process (pid %s) runs this profile's queue; "
                    "waiting for it", self._lock.holder_pid() if self._lock else None)
        self._runner_task = asyncio.create_task(self._run_once_owner(), name="imagedesk-runner")
        return []

    async def run_until_idle(self) -> None:
        """Process queued jobs until none are left (CLI ``queue run`` and ``generate``)."""
        self.claim_queue()
        await self._recover()
        await self._runner.run(until_idle=True)

    def _owns_queue(self) -> bool:
        return self._lock is None or self._lock.held or self._lock.try_acquire()

    def claim_queue(self) -> None:
        """Become the process that runs this profile's queue, or raise ``ProfileBusy``."""
        if not self._owns_queue():
            assert self._lock is not None
            raise ProfileBusy(self._lock.holder_pid())

    async def _run_once_owner(self) -> None:
        while not self._owns_queue():
            await asyncio.sleep(LOCK_RETRY_S)
        await self._recover()
        await self._runner.run()

    async def _recover(self) -> list[int]:
        """Requeue what a crash left running, drop its unindexed files and temp files."""
        recovered = await self._store.run(self._queue.recover_interrupted)
        await asyncio.to_thread(self.saver.remove_stale_temp_files)
        await self._refresh_spend()
        return recovered

    async def close(self, *, finish_running: bool = False) -> None:
        """Stop the runner and the providers. Jobs stopped mid-run go back to the queue
        at once (with an "interrupted" attempt), so another process holding this
        profile next can run them; a crash leaves them to the next start's recovery.
        Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        await self._runner.stop(finish_running=finish_running)
        if self._runner_task is not None:
            self._runner_task.cancel()
            await asyncio.gather(self._runner_task, return_exceptions=True)
        if self._lock is None or self._lock.held:  # only the queue's runner ran jobs
            try:
                await self._store.run(self._queue.recover_interrupted)
            except Exception:  # the next start's recovery puts them back instead
                log.exception("could not hand the stopped jobs back to the queue")
        for slot in self.slots:
            try:
                await slot.provider.close()
            except Exception:
                log.exception("closing %s failed", slot.name)
            if slot.limiter is not None:
                await slot.limiter.close()
        await self._store.run(lambda: None)  # let pending writes land
        self._store.close()
        if self._lock is not None:
            self._lock.release()

    # -- jobs --------------------------------------------------------------------

    async def submit(self, request: GenerationRequest, priority: int = 0) -> Job:
        """Queue a request; a blocked term raises ``InvalidRequest`` before anything is stored."""
        check_blocked_terms(request.prompt, self.blocked_terms)
        job = await self._store.run(self._queue.add, request, priority)
        self.hub.emit(JobAdded(job.id, request))
        self._runner.wake()
        return job

    async def cancel(self, job_id: int) -> None:
        if self._runner.cancel_running(job_id):
            return
        job = await self._store.run(self._queue.cancel, job_id)
        self.hub.emit(JobFinished(job.id, JobState.CANCELLED, None, (), "Cancelled",
                                  "cancelled by the user"))

    async def retry(self, job_id: int) -> Job:
        job = await self._store.run(self._queue.retry, job_id)
        self.hub.emit(QueueChanged(paused=await self.paused()))
        self._runner.wake()
        return job

    async def move(self, job_id: int, delta: int) -> None:
        await self._store.run(self._queue.move, job_id, delta)
        self.hub.emit(QueueChanged(paused=await self.paused()))

    async def pause(self) -> None:
        await self._store.run(self._queue.set_paused, True)
        self.hub.emit(QueueChanged(paused=True))

    async def resume(self) -> None:
        await self._store.run(self._queue.set_paused, False)
        self.hub.emit(QueueChanged(paused=False))
        self._runner.wake()

    async def paused(self) -> bool:
        return await self._store.run(self._queue.is_paused)

    async def clear_finished(self) -> int:
        count = await self._store.run(self._queue.clear_finished)
        self.hub.emit(QueueChanged(paused=await self.paused()))
        return count

    async def jobs(self, states: Collection[JobState] | None = None, limit: int = 500) -> list[Job]:
        return await self._store.run(self._queue.list, states, limit)

    async def job(self, job_id: int) -> Job | None:
        return await self._store.run(self._queue.get, job_id)

    async def run_job_now(self, job_id: int) -> None:
        """Run this queued job at once and return when it has finished."""
        self.claim_queue()
        await self._recover()
        await self._runner.run_now(job_id)

    async def job_counts(self) -> dict[JobState, int]:
        return await self._store.run(self._queue.counts)

    async def wait_for(self, job_id: int) -> Job:
        """The job once it has finished (succeeded, failed or cancelled)."""
        future: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(future)
        job = await self.job(job_id)
        if job is not None and job.state.finished and not future.done():
            future.set_result(job)
        return await future

    @property
    def running_job_ids(self) -> list[int]:
        return self._runner.running_ids

    # -- gallery -----------------------------------------------------------------

    async def search_images(self, text: str = "", **filters: object) -> list[ImageRecord]:
        return await self._store.run(self._gallery.search, text, **filters)  # type: ignore[arg-type]

    async def image(self, image_id: int) -> ImageRecord | None:
        return await self._store.run(self._gallery.get, image_id)

    async def images_of(self, job: Job) -> list[ImageRecord]:
        records = [await self.image(image_id) for image_id in job.image_ids]
        return [r for r in records if r is not None]

    async def import_folder(self, folder: Path) -> ImportReport:
        return await self._store.run(import_folder, folder, self._gallery)

    async def set_favourite(self, image_id: int, favourite: bool) -> None:
        await self._store.run(self._gallery.set_favourite, image_id, favourite)

    async def delete_image(self, image_id: int) -> None:
        record = await self._store.run(self._gallery.delete, image_id)
        await asyncio.to_thread(self.saver.remove_files, record)

    async def thumbnail(self, image_id: int) -> Path | None:
        record = await self.image(image_id)
        if record is None:
            return None
        return await asyncio.to_thread(self.saver.thumbnail, record.path)

    # -- providers ---------------------------------------------------------------

    @property
    def runner_settings(self) -> RunnerSettings:
        return self._runner.settings

    @runner_settings.setter
    def runner_settings(self, value: RunnerSettings) -> None:
        self._runner.settings = value
        self._runner.wake()

    async def replace_slots(self, slots: Sequence[ProviderSlot]) -> None:
        """Swap in rebuilt provider slots (after a settings change); providers no
        longer used are closed once their running calls have finished with them."""
        old = [s for s in self.slots if s not in slots]
        self.slots[:] = list(slots)
        self._runner.slots[:] = list(slots)
        for slot in slots:
            slot.breaker.on_transition = self._on_breaker_transition
        for slot in old:
            slot.retired = True
            self.hub.emit(ProviderStateChanged(slot.name, "closed", "settings changed"))
            if slot.in_flight == 0:
                await self._close_slot(slot)
            else:  # a job is still running on it: close it once that job lets go
                slot.on_idle = functools.partial(self._close_later, slot)
        self._runner.wake()

    async def _close_slot(self, slot: ProviderSlot) -> None:
        try:
            await slot.provider.close()
            if slot.limiter is not None:
                await slot.limiter.close()
        except Exception:
            log.exception("closing the replaced %s provider failed", slot.name)

    def _close_later(self, slot: ProviderSlot) -> None:
        task = asyncio.ensure_future(self._close_slot(slot))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def slot(self, name: str) -> ProviderSlot:
        for slot in self.slots:
            if slot.name == name:
                return slot
        raise ImageDeskError(f"No provider named {name!r}: known are "
                             f"{', '.join(s.name for s in self.slots)}.")

    def reset_provider(self, name: str, reason: str = "the user pressed try again") -> None:
        """Close a provider's breaker (after a settings change fixed it, or on request)."""
        slot = self.slot(name)
        slot.breaker.reset(reason)
        slot.gate.clear()

    async def provider_statuses(self) -> list[ProviderStatus]:
        await self._store.run(lambda: None)  # let this session's pending metrics land first
        return await gather_statuses(self.slots, self.metrics, self._store,
                                     self._metrics_store, self._spend.today())

    # -- internals ---------------------------------------------------------------

    async def _save_images(self, job: Job, outcome: JobOutcome) -> list[int]:
        if self.nsfw.mode is not NsfwMode.OFF:
            kept = await asyncio.to_thread(screen_images, outcome.images, self.nsfw,
                                           self._nsfw_scorer)
            outcome = dataclasses.replace(outcome, images=kept)

        def journal(path: Path) -> None:  # runs on the file thread; waits for the commit
            self._store.call_sync(self._queue.note_pending_files, job.id, [path])

        saved = await asyncio.to_thread(self.saver.write_files, job, outcome, journal)
        try:
            return await self._store.run(self.saver.index_and_finish, self._queue,
                                         self._gallery, job, outcome, saved)
        except BaseException:  # not indexed: the files must go too, so folder and index agree
            await asyncio.shield(asyncio.to_thread(self.saver.remove_saved, saved))
            raise

    def _persist_call(self, record: CallRecord) -> None:
        day = dt.date.fromtimestamp(self.clock.time()).isoformat()
        failures = {record.error_class: 1} if record.error_class else {}
        self._store.submit(
            self._metrics_store.record, record.provider, day,
            0 if record.error_class else 1, failures,
            1 if record.error_class == "RateLimited" else 0, record.images, record.cost_usd,
            record.latency_s)
        if record.cost_usd:
            self._spend.add(record.provider, record.cost_usd)

    def _over_budget(self, slot: ProviderSlot) -> str | None:
        return self._spend.over(self.budget) if slot.kind is ProviderKind.CLOUD else None

    async def _refresh_spend(self) -> None:
        day = self._spend.today()
        first = day.replace(day=1).isoformat()
        today: dict[str, float] = {}
        month: dict[str, float] = {}
        for slot in self.slots:
            today[slot.name] = await self._store.run(self._metrics_store.spend, slot.name,
                                                     day.isoformat())
            month[slot.name] = await self._store.run(self._metrics_store.spend, slot.name, first)
        self._spend.load(day, today, month)

    def _on_breaker_transition(self, transition: BreakerTransition) -> None:
        self.hub.emit(ProviderStateChanged(transition.provider, transition.new.value,
                                           transition.reason, transition.retry_after_s))

    def _on_event(self, event: object) -> None:
        if isinstance(event, JobFinished):
            waiters = self._waiters.pop(event.job_id, [])
            if waiters:
                task = asyncio.ensure_future(self._resolve_waiters(event.job_id, waiters))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _resolve_waiters(self, job_id: int, waiters: list[asyncio.Future[Job]]) -> None:
        job = await self.job(job_id)
        for future in waiters:
            if not future.done() and job is not None:
                future.set_result(job)
