"""``Engine``: the one object every face (the window, the CLI, the HTTP API) drives.

Every user action — submit, cancel, retry, reorder, pause, search the gallery,
reset a provider — is a method here, so no face holds a business rule. The engine
owns the queue runner, the event hub and metrics, and reaches the store only
through its thread; the work behind each group of methods lives in its own module:

- ``admission``: what a request passes before it is queued, which jobs are private
- ``live_slots``: the provider slots in use, swapped after a settings change
- ``spend_ledger``: each call's metrics and cost, the budget caps they feed
- ``route_queries``: route preview, price quote, prompt limits (nothing is called)
- ``result_keeping``: a finished job's images screened, written and indexed
- ``job_waiters``: ``wait_for`` a job to finish
- ``queue_ownership``: which process runs the profile's queue
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import logging
import random
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Literal

from desktop_app.domain.job import Job, JobState
from desktop_app.domain.request import GenerationRequest, ImageRef, RouteMode
from desktop_app.engine._background import BackgroundTasks
from desktop_app.engine.admission import Admission
from desktop_app.engine.budget import Budget
from desktop_app.engine.config import EngineConfig
from desktop_app.engine.estimates import Estimator
from desktop_app.engine.events import EventHub, JobAdded, JobFinished, QueueChanged
from desktop_app.engine.job_waiters import JobWaiters
from desktop_app.engine.live_slots import LiveSlots
from desktop_app.engine.metrics import Metrics
from desktop_app.engine.nsfw import NsfwSettings, Scorer
from desktop_app.engine.prompt_expansion import PromptExpander
from desktop_app.engine.queue_ownership import QueueOwnership
from desktop_app.engine.queue_watch import QueueWatch
from desktop_app.engine.quote import RouteQuote
from desktop_app.engine.result_keeping import ResultKeeper
from desktop_app.engine.route_queries import RouteQueries
from desktop_app.engine.router import RoutePlan
from desktop_app.engine.runner import QueueRunner, RunnerSettings
from desktop_app.engine.saving import ImageSaver
from desktop_app.engine.slots import ProviderSlot
from desktop_app.engine.spend_ledger import SpendLedger
from desktop_app.engine.status import ProviderStatus, gather_statuses
from desktop_app.engine.store_thread import StoreThread
from desktop_app.providers.base import Progress
from desktop_app.resilience.clock import Clock, SystemClock
from desktop_app.store import files
from desktop_app.store.files import ImportReport, import_folder
from desktop_app.store.gallery import Gallery, ImageNotFound, ImageRecord, NewImage, Sort
from desktop_app.store.input_images import InputImages
from desktop_app.store.jobs import JobQueue, QuarantinedJob
from desktop_app.store.metrics import MetricsStore
from desktop_app.store.profile_lock import ProfileLock
from desktop_app.store.styles import StyleLibrary
from desktop_app.store.wildcards import WildcardFolder

__all__ = ["Engine", "EngineConfig", "ProviderStatus"]

log = logging.getLogger(__name__)


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
        private_terms: Sequence[str] = (),
        private_folders: Sequence[Path] = (),
        nsfw: NsfwSettings | None = None,
        nsfw_scorer: Scorer | None = None,
        lock: ProfileLock | None = None,
        inputs: InputImages | None = None,
        wildcards: WildcardFolder | None = None,
        styles: StyleLibrary | None = None,
    ) -> None:
        self.hub = hub or EventHub()
        self.clock = clock or SystemClock()
        self._queue = queue
        self._gallery = gallery
        self._store = store or StoreThread()
        self._background = BackgroundTasks()
        self._ownership = QueueOwnership(lock)
        self._ledger = SpendLedger(clock=self.clock, store=self._store,
                                   metrics_store=metrics_store, budget=budget or Budget())
        self.metrics = Metrics(sink=self._ledger.record)
        self._results = ResultKeeper(store=self._store, queue=queue, gallery=gallery,
                                     saver=saver, nsfw=nsfw or NsfwSettings(),
                                     scorer=nsfw_scorer)
        prompts = PromptExpander(wildcards, styles)
        self._admission = Admission(prompts=prompts, inputs=inputs,
                                    slots=lambda: self._slots, blocked_terms=blocked_terms,
                                    private_terms=private_terms,
                                    private_folders=private_folders)
        self._runner = QueueRunner(
            queue=queue, store=self._store, slots=slots, hub=self.hub, metrics=self.metrics,
            clock=self.clock, rng=rng or random.Random(), save=self._results.keep,
            settings=runner_settings, budget=self._ledger.cap, prompts=prompts,
            estimates=self.estimator,
        )
        self._slots = LiveSlots(slots, self.hub, self._background,
                                on_change=self._runner_slots)
        self._routes = RouteQueries(slots=self._slots, ledger=self._ledger,
                                    metrics=self.metrics, store=self._store,
                                    metrics_store=metrics_store, clock=self.clock,
                                    runner_settings=lambda: self._runner.settings)
        self._metrics_store = metrics_store
        self._runner_task: asyncio.Task[None] | None = None
        self._watch = QueueWatch(self._store, queue, self._changed_elsewhere)
        self._waiters = JobWaiters(self.hub, self.job, self._background)
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> list[int]:
        """Recover jobs a crash left running, then run the queue in the background.

        If another process runs this profile's queue, jobs added here wait for it
        (it picks them up), and this engine takes over once that process exits.
        Jobs other processes add or change show up here (``QueueWatch``)."""
        self._watch.start()
        if self._ownership.owned():
            recovered = await self._recover()
            self._runner_task = asyncio.create_task(self._runner.run(), name="imagedesk-runner")
            return recovered
        log.warning("another ImageDesk process (pid %s) runs this profile's queue; "
                    "waiting for it", self._ownership.holder_pid())
        self._runner_task = asyncio.create_task(self._run_once_owner(), name="imagedesk-runner")
        return []

    async def run_until_idle(self) -> None:
        """Process queued jobs until none are left (CLI ``queue run`` and ``generate``)."""
        self.claim_queue()
        await self._recover()
        await self._runner.run(until_idle=True)

    def claim_queue(self) -> None:
        """Become the process that runs this profile's queue, or raise ``ProfileBusy``."""
        self._ownership.claim()

    async def _run_once_owner(self) -> None:
        await self._ownership.wait()
        await self._recover()
        await self._runner.run()

    async def _recover(self) -> list[int]:
        """Requeue what a crash left running, drop its unindexed files and temp files."""
        recovered = await self._store.run(self._queue.recover_interrupted)
        await asyncio.to_thread(self._results.saver.remove_stale_temp_files)
        await self._ledger.reload(self._slots)
        return recovered

    async def close(self, *, finish_running: bool = False) -> None:
        """Stop the runner and the providers. Jobs stopped mid-run go back to the queue
        at once (with an "interrupted" attempt), so another process holding this
        profile next can run them; a crash leaves them to the next start's recovery.
        Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        await self._watch.stop()
        await self._runner.stop(finish_running=finish_running)
        if self._runner_task is not None:
            self._runner_task.cancel()
            await asyncio.gather(self._runner_task, return_exceptions=True)
        if self._ownership.held:  # only the queue's runner ran jobs
            try:
                await self._store.run(self._queue.recover_interrupted)
            except Exception:  # the next start's recovery puts them back instead
                log.exception("could not hand the stopped jobs back to the queue")
        await self._slots.close_all()
        await self._store.run(lambda: None)  # let pending writes land
        self._store.close()
        self._ownership.release()

    # -- jobs --------------------------------------------------------------------

    async def submit(self, request: GenerationRequest, priority: int = 0) -> Job:
        """Queue a request; a blocked term raises ``InvalidRequest`` before anything is stored."""
        [job] = await self.submit_many([request], priority)
        return job

    async def submit_many(self, requests: Sequence[GenerationRequest],
                          priority: int = 0) -> list[Job]:
        """Queue requests in one transaction (a grid's cells): each is checked first, and
        either all of them are queued or none is."""
        checked = [await self._admission.check(request) for request in requests]
        jobs = await self._store.run(self._queue.add_many, checked, priority)
        for job in jobs:
            self.hub.emit(JobAdded(job.id, job.request))
        self._runner.wake()
        return jobs

    async def add_input_image(self, image: Path | bytes, role: Literal["source", "mask"] =
                              "source", gallery_id: int | None = None) -> ImageRef:
        """Store a source image or mask (a file, or encoded bytes) for an image-to-image
        request; ``InputImageError`` says what is wrong with it."""
        return await self._admission.add_input_image(image, role, gallery_id)

    async def use_as_source(self, image_id: int) -> ImageRef:
        """A gallery image as the source of a new job (its lineage is kept; a private
        job's image keeps its jobs private)."""
        record = await self.image(image_id)
        if record is None:
            raise ImageNotFound(image_id)
        return await self._admission.add_input_image(
            record.path, "source", image_id, private=bool(record.provenance.get("private")))

    async def cancel(self, job_id: int) -> None:
        if self._runner.cancel_running(job_id):
            return
        # Holding the profile's lock, a job still marked running that our runner does not
        # run has no process left running it (an interrupted `queue run`): it may be cancelled.
        job = await self._store.run(self._queue.cancel, job_id,
                                    orphaned=self._ownership.owned())
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
        return await self._store.run(self._queue.jobs, states, limit)

    async def job(self, job_id: int) -> Job | None:
        return await self._store.run(self._queue.get, job_id)

    async def run_job_now(self, job_id: int) -> None:
        """Run this queued job at once and return when it has finished."""
        self.claim_queue()
        await self._recover()
        await self._runner.run_now(job_id)

    async def quarantined_jobs(self) -> list[QuarantinedJob]:
        """Job rows that did not read back, with why (``jobs()`` leaves out one whose
        request is unreadable: the faces list these beside it)."""
        return await self._store.run(self._queue.quarantined)

    async def job_counts(self) -> dict[JobState, int]:
        return await self._store.run(self._queue.counts)

    async def wait_for(self, job_id: int) -> Job:
        """The job once it has finished (succeeded, failed or cancelled)."""
        return await self._waiters.wait_for(job_id)

    @property
    def running_job_ids(self) -> list[int]:
        return self._runner.running_ids

    # -- gallery -----------------------------------------------------------------

    async def search_images(self, text: str = "", *, provider: str | None = None,
                            model: str | None = None, favourites_only: bool = False,
                            since: float | None = None, until: float | None = None,
                            sort: Sort = "newest", limit: int = 200,
                            offset: int = 0, kind: str | None = None,
                            source_image_id: int | None = None,
                            style: str | None = None) -> list[ImageRecord]:
        """Images whose prompt holds every word of ``text``, filtered (see ``Gallery.search``)."""
        return await self._store.run(functools.partial(
            self._gallery.search, text, provider=provider, model=model,
            favourites_only=favourites_only, since=since, until=until, sort=sort, limit=limit,
            offset=offset, kind=kind, source_image_id=source_image_id, style=style))

    async def image(self, image_id: int) -> ImageRecord | None:
        return await self._store.run(self._gallery.get, image_id)

    async def images_of(self, job: Job) -> list[ImageRecord]:
        records = [await self.image(image_id) for image_id in job.image_ids]
        return [r for r in records if r is not None]

    async def add_made_image(self, data: bytes, stem: str, parameters: str,
                             image: NewImage) -> ImageRecord:
        """Save an image the engine made from others (a comparison grid) into the gallery
        folder with its metadata, and index it as ``image`` says."""
        folder = self._results.saver.folder / dt.date.fromtimestamp(
            self.clock.time()).strftime("%Y-%m-%d")
        path = await asyncio.to_thread(files.write_image_atomic, folder, stem, data, "png",
                                       parameters=parameters,
                                       provenance=dict(image.provenance))
        return await self._store.run(self._gallery.add, dataclasses.replace(image, path=path))

    async def import_folder(self, folder: Path) -> ImportReport:
        return await self._store.run(import_folder, folder, self._gallery)

    async def set_favourite(self, image_id: int, favourite: bool) -> None:
        await self._store.run(self._gallery.set_favourite, image_id, favourite)

    async def delete_image(self, image_id: int) -> None:
        record = await self._store.run(self._gallery.delete, image_id)
        await asyncio.to_thread(self._results.saver.remove_files, record)

    async def thumbnail(self, image_id: int) -> Path | None:
        record = await self.image(image_id)
        if record is None:
            return None
        return await asyncio.to_thread(self._results.saver.thumbnail, record.path)

    # -- settings ----------------------------------------------------------------

    async def apply(self, config: EngineConfig) -> None:
        """Run by new rules from now on (after a settings change): the provider
        slots (a slot not in ``config`` is closed once its running calls let go),
        budget caps, blocked terms, NSFW screening, runner limits, gallery folder.
        Jobs already running finish under the rules they started with."""
        await self._slots.replace(config.slots)
        self._ledger.budget = config.budget
        self._admission.apply(config.blocked_terms, config.private_terms, config.private_folders)
        self._results.nsfw = config.nsfw
        self._results.saver.folder = config.gallery_folder
        self._results.saver.quality = config.output_quality
        self._runner.settings = config.runner
        self._runner.wake()

    # -- providers ---------------------------------------------------------------

    async def warm_up(self, on_message: Callable[[str], None]) -> float | None:
        """Start the enabled local provider's worker and load its model now ("warm
        on start"); seconds taken, or None when no local provider can warm up.
        ``on_message`` gets each loading step as a short sentence."""
        slot = self._slots.first_local()
        warm = getattr(slot.provider, "warm", None) if slot is not None else None
        if warm is None:
            return None

        def relay(progress: Progress) -> None:
            if progress.message:
                on_message(progress.message)

        took = await warm(relay)
        return float(took)

    async def route_preview(self, request: GenerationRequest) -> RoutePlan:
        """Which providers would serve ``request`` now, in order, and why each
        other one would be skipped (nothing is reserved or called)."""
        return await self._routes.preview(request)

    async def route_quote(self, request: GenerationRequest) -> RouteQuote:
        """The route preview with the seconds and dollars to expect from each candidate
        (measured over the last days where there is history); nothing is called."""
        return await self._routes.quote(request)

    async def estimator(self) -> Estimator:
        """Estimates from this session's calls and the last days' stored history."""
        return await self._routes.estimator()

    def prompt_limits(self) -> dict[RouteMode, tuple[int, str]]:
        """For each routing mode, the shortest prompt limit among the enabled
        providers that mode may use, and whose it is (the editor warns past it)."""
        return self._routes.prompt_limits()

    @property
    def runner_settings(self) -> RunnerSettings:
        return self._runner.settings

    @property
    def slots(self) -> tuple[ProviderSlot, ...]:
        """The provider slots in use (read-only: change them with ``apply``)."""
        return tuple(self._slots)

    def slot(self, name: str) -> ProviderSlot:
        return self._slots.find(name)

    def reset_provider(self, name: str, reason: str = "the user pressed try again") -> None:
        """Close a provider's breaker (after a settings change fixed it, or on request)."""
        slot = self.slot(name)
        slot.breaker.reset(reason)
        slot.gate.clear()

    async def provider_statuses(self) -> list[ProviderStatus]:
        await self._store.run(lambda: None)  # let this session's pending metrics land first
        return await gather_statuses(list(self._slots), self.metrics, self._store,
                                     self._metrics_store, self._ledger.tracker.today())

    # -- internals ---------------------------------------------------------------

    def _runner_slots(self, slots: Sequence[ProviderSlot]) -> None:
        self._runner.slots[:] = list(slots)  # ``apply`` wakes the runner once all is set

    def _changed_elsewhere(self, paused: bool) -> None:
        """Another process changed the queue: show it, and run what it added."""
        self._runner.wake()
        self.hub.emit(QueueChanged(paused=paused))
