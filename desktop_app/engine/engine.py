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
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Literal

from desktop_app.domain.content_filter import check_blocked_terms, find_term
from desktop_app.domain.errors import ImageDeskError, InvalidRequest
from desktop_app.domain.job import Job, JobState
from desktop_app.domain.request import GenerationRequest, ImageRef, RouteMode
from desktop_app.engine.budget import Budget, SpendingCap, SpendTracker
from desktop_app.engine.estimates import HISTORY_DAYS, Estimator
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
from desktop_app.engine.prompt_expansion import PromptExpander
from desktop_app.engine.queue_watch import QueueWatch
from desktop_app.engine.quote import RouteQuote, quote_route
from desktop_app.engine.router import RoutePlan, mode_allows, plan_route
from desktop_app.engine.runner import QueueRunner, RunnerSettings
from desktop_app.engine.saving import ImageSaver
from desktop_app.engine.slots import ProviderSlot
from desktop_app.engine.status import ProviderStatus, gather_statuses
from desktop_app.engine.store_thread import StoreThread
from desktop_app.providers.base import ChecksBeforeQueue, Progress, ProviderKind
from desktop_app.resilience.breaker import BreakerTransition
from desktop_app.resilience.clock import Clock, SystemClock
from desktop_app.store import files
from desktop_app.store.files import ImportReport, import_folder
from desktop_app.store.gallery import Gallery, ImageNotFound, ImageRecord, NewImage, Sort
from desktop_app.store.input_images import InputImages
from desktop_app.store.jobs import JobQueue, QuarantinedJob
from desktop_app.store.metrics import MetricsStore, ProviderTotals
from desktop_app.store.profile_lock import ProfileBusy, ProfileLock
from desktop_app.store.styles import StyleLibrary
from desktop_app.store.wildcards import WildcardFolder

log = logging.getLogger(__name__)

LOCK_RETRY_S = 2.0


@dataclasses.dataclass(frozen=True)
class EngineConfig:
    """Everything settings decide about a running engine, handed over in one
    ``Engine.apply`` (bootstrap builds it from ``Settings``)."""

    slots: Sequence[ProviderSlot]
    runner: RunnerSettings
    budget: Budget
    blocked_terms: Sequence[str]
    nsfw: NsfwSettings
    gallery_folder: Path
    output_quality: int = 90  # JPEG / WebP encoding quality
    private_terms: Sequence[str] = ()  # a prompt with one of these never leaves this machine
    private_folders: Sequence[Path] = ()  # a source image from these never leaves it either


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
        self.metrics = Metrics(sink=self._persist_call)
        self._slots = list(slots)
        self._budget = budget or Budget()
        self._blocked_terms = list(blocked_terms)
        self._private_terms = list(private_terms)
        self._private_folders = list(private_folders)
        self._nsfw = nsfw or NsfwSettings()
        self._nsfw_scorer = nsfw_scorer
        # Only the process holding the profile's lock recovers and runs its queue:
        # a CLI beside the window must not requeue the window's running jobs.
        self._lock = lock
        self._queue = queue
        self._gallery = gallery
        self._metrics_store = metrics_store
        self._saver = saver
        self._inputs = inputs
        self._store = store or StoreThread()
        self._spend = SpendTracker(self.clock)
        self._cap = SpendingCap(self._spend, lambda: self._budget)
        self._prompts = PromptExpander(wildcards, styles)
        self._runner = QueueRunner(
            queue=queue, store=self._store, slots=self._slots, hub=self.hub, metrics=self.metrics,
            clock=self.clock, rng=rng or random.Random(), save=self._save_images,
            settings=runner_settings, budget=self._cap, prompts=self._prompts,
            estimates=self.estimator,
        )
        self._runner_task: asyncio.Task[None] | None = None
        self._watch = QueueWatch(self._store, queue, self._changed_elsewhere)
        self._waiters: dict[int, list[asyncio.Future[Job]]] = {}
        self._background: set[asyncio.Future[None]] = set()
        self._closed = False
        self.hub.subscribe(self._on_event)
        for slot in self._slots:
            slot.breaker.on_transition = self._on_breaker_transition

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> list[int]:
        """Recover jobs a crash left running, then run the queue in the background.

        If another process runs this profile's queue, jobs added here wait for it
        (it picks them up), and this engine takes over once that process exits.
        Jobs other processes add or change show up here (``QueueWatch``)."""
        self._watch.start()
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
        await asyncio.to_thread(self._saver.remove_stale_temp_files)
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
        await self._watch.stop()
        await self._runner.stop(finish_running=finish_running)
        if self._runner_task is not None:
            self._runner_task.cancel()
            await asyncio.gather(self._runner_task, return_exceptions=True)
        if self._lock is None or self._lock.held:  # only the queue's runner ran jobs
            try:
                await self._store.run(self._queue.recover_interrupted)
            except Exception:  # the next start's recovery puts them back instead
                log.exception("could not hand the stopped jobs back to the queue")
        for slot in self._slots:
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
        [job] = await self.submit_many([request], priority)
        return job

    async def submit_many(self, requests: Sequence[GenerationRequest],
                          priority: int = 0) -> list[Job]:
        """Queue requests in one transaction (a grid's cells): each is checked first, and
        either all of them are queued or none is."""
        checked = [await self._checked(request) for request in requests]
        jobs = await self._store.run(self._queue.add_many, checked, priority)
        for job in jobs:
            self.hub.emit(JobAdded(job.id, job.request))
        self._runner.wake()
        return jobs

    async def _checked(self, request: GenerationRequest) -> GenerationRequest:
        check_blocked_terms(request.prompt, self._blocked_terms)
        await self._prompts.check(request)  # a wildcard that names no file is refused now
        request = self._privacy_rules(request)
        await self._local_checks(request)
        for ref in request.input_images:  # refused now, not when it runs
            if self._inputs is None or not self._inputs.has(ref):
                raise InvalidRequest(f"The input image {ref.sha256[:12]}… is not stored; add it "
                                     "with Engine.add_input_image first.", field="work")
        return request

    async def _local_checks(self, request: GenerationRequest) -> None:
        """What this machine's provider refuses before a job is queued (a LoRA the
        prompt names that is not installed), when the job may run on it."""
        policy = request.policy
        for slot in self._slots:
            if (slot.kind is ProviderKind.LOCAL and slot.enabled
                    and isinstance(slot.provider, ChecksBeforeQueue)
                    and mode_allows(policy.mode, slot.kind)
                    and policy.provider in (None, slot.name)):
                await slot.provider.check_before_queue(request)

    def _privacy_rules(self, request: GenerationRequest) -> GenerationRequest:
        """A prompt holding one of the user's private terms is marked private (recorded on
        the queued job, so it holds through restarts and failover)."""
        if request.policy.private:
            return request
        private = any(find_term(text, self._private_terms) is not None
                      for text in (request.prompt, request.negative_prompt))
        if self._inputs is not None:
            private = private or any(self._inputs.is_private(ref)
                                     for ref in request.input_images)
        if private:
            return request.replace(policy=dataclasses.replace(request.policy, private=True))
        return request

    async def add_input_image(self, image: Path | bytes, role: Literal["source", "mask"] =
                              "source", gallery_id: int | None = None) -> ImageRef:
        """Store a source image or mask (a file, or encoded bytes) for an image-to-image
        request; ``InputImageError`` says what is wrong with it."""
        if self._inputs is None:
            raise InvalidRequest("This engine has no input image store.", field="work")
        inputs = self._inputs
        if isinstance(image, bytes):
            return await asyncio.to_thread(inputs.add, image, role, gallery_id=gallery_id)
        ref = await asyncio.to_thread(inputs.add_file, image, role, gallery_id)
        if self._in_private_folder(image):
            await asyncio.to_thread(inputs.mark_private, ref)
        return ref

    def _in_private_folder(self, path: Path) -> bool:
        try:
            where = path.resolve()
        except (OSError, RuntimeError):
            return True  # cannot tell: fail closed
        return any(where.is_relative_to(folder.expanduser().resolve())
                   for folder in self._private_folders)

    async def use_as_source(self, image_id: int) -> ImageRef:
        """A gallery image as the source of a new job (its lineage is kept)."""
        record = await self.image(image_id)
        if record is None:
            raise ImageNotFound(image_id)
        ref = await self.add_input_image(record.path, "source", gallery_id=image_id)
        if record.provenance.get("private") and self._inputs is not None:
            await asyncio.to_thread(self._inputs.mark_private, ref)  # a private job's image
        return ref

    async def cancel(self, job_id: int) -> None:
        if self._runner.cancel_running(job_id):
            return
        # Holding the profile's lock, a job still marked running that our runner does not
        # run has no process left running it (an interrupted `queue run`): it may be cancelled.
        job = await self._store.run(self._queue.cancel, job_id, orphaned=self._owns_queue())
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
        folder = self._saver.folder / dt.date.fromtimestamp(self.clock.time()).strftime(
            "%Y-%m-%d")
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
        await asyncio.to_thread(self._saver.remove_files, record)

    async def thumbnail(self, image_id: int) -> Path | None:
        record = await self.image(image_id)
        if record is None:
            return None
        return await asyncio.to_thread(self._saver.thumbnail, record.path)

    # -- settings ----------------------------------------------------------------

    async def apply(self, config: EngineConfig) -> None:
        """Run by new rules from now on (after a settings change): the provider
        slots (a slot not in ``config`` is closed once its running calls let go),
        budget caps, blocked terms, NSFW screening, runner limits, gallery folder.
        Jobs already running finish under the rules they started with."""
        await self._replace_slots(config.slots)
        self._budget = config.budget
        self._blocked_terms = list(config.blocked_terms)
        self._private_terms = list(config.private_terms)
        self._private_folders = list(config.private_folders)
        self._nsfw = config.nsfw
        self._saver.folder = config.gallery_folder
        self._saver.quality = config.output_quality
        self._runner.settings = config.runner
        self._runner.wake()

    # -- providers ---------------------------------------------------------------

    async def warm_up(self, on_message: Callable[[str], None]) -> float | None:
        """Start the enabled local provider's worker and load its model now ("warm
        on start"); seconds taken, or None when no local provider can warm up.
        ``on_message`` gets each loading step as a short sentence."""
        slot = next((s for s in self._slots if s.kind is ProviderKind.LOCAL and s.enabled), None)
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
        return await plan_route(request, self._slots, budget=self._over_budget,
                                cpu_after_cloud=self.runner_settings.cpu_after_cloud,
                                estimator=await self.estimator())

    async def route_quote(self, request: GenerationRequest) -> RouteQuote:
        """The route preview with the seconds and dollars to expect from each candidate
        (measured over the last days where there is history); nothing is called."""
        estimator = await self.estimator()
        plan = await plan_route(request, self._slots, budget=self._over_budget,
                                cpu_after_cloud=self.runner_settings.cpu_after_cloud,
                                estimator=estimator)
        return quote_route(plan, request, estimator)

    async def estimator(self) -> Estimator:
        """Estimates from this session's calls and the last days' stored history."""
        today = dt.date.fromtimestamp(self.clock.time())
        since = (today - dt.timedelta(days=HISTORY_DAYS - 1)).isoformat()
        store = self._metrics_store
        history: dict[str, ProviderTotals] = {}
        for slot in self._slots:
            history[slot.name] = await self._store.run(store.totals, slot.name, since)
        return Estimator(self.metrics, history)

    def prompt_limits(self) -> dict[RouteMode, tuple[int, str]]:
        """For each routing mode, the shortest prompt limit among the enabled
        providers that mode may use, and whose it is (the editor warns past it)."""
        limits: dict[RouteMode, tuple[int, str]] = {}
        for mode in RouteMode:
            candidates = [(s.provider.capabilities().max_prompt_chars, s.name)
                          for s in self._slots if s.enabled and mode_allows(mode, s.kind)]
            if candidates:
                limits[mode] = min(candidates)
        return limits

    @property
    def runner_settings(self) -> RunnerSettings:
        return self._runner.settings

    @property
    def slots(self) -> tuple[ProviderSlot, ...]:
        """The provider slots in use (read-only: change them with ``apply``)."""
        return tuple(self._slots)

    async def _replace_slots(self, slots: Sequence[ProviderSlot]) -> None:
        """Swap in rebuilt provider slots (after a settings change); providers no
        longer used are closed once their running calls have finished with them."""
        old = [s for s in self._slots if s not in slots]
        self._slots[:] = list(slots)
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
        for slot in self._slots:
            if slot.name == name:
                return slot
        raise ImageDeskError(f"No provider named {name!r}: known are "
                             f"{', '.join(s.name for s in self._slots)}.")

    def reset_provider(self, name: str, reason: str = "the user pressed try again") -> None:
        """Close a provider's breaker (after a settings change fixed it, or on request)."""
        slot = self.slot(name)
        slot.breaker.reset(reason)
        slot.gate.clear()

    async def provider_statuses(self) -> list[ProviderStatus]:
        await self._store.run(lambda: None)  # let this session's pending metrics land first
        return await gather_statuses(self._slots, self.metrics, self._store,
                                     self._metrics_store, self._spend.today())

    # -- internals ---------------------------------------------------------------

    async def _save_images(self, job: Job, outcome: JobOutcome) -> list[int]:
        if self._nsfw.mode is not NsfwMode.OFF:
            kept = await asyncio.to_thread(screen_images, outcome.images, self._nsfw,
                                           self._nsfw_scorer)
            outcome = dataclasses.replace(outcome, images=kept)

        def journal(path: Path) -> None:  # runs on the file thread; waits for the commit
            self._store.call_sync(self._queue.note_pending_files, job.id, [path])

        saved = await asyncio.to_thread(self._saver.write_files, job, outcome, journal)
        try:
            return await self._store.run(self._saver.index_and_finish, self._queue,
                                         self._gallery, job, outcome, saved)
        except BaseException:  # not indexed: the files must go too, so folder and index agree
            await asyncio.shield(asyncio.to_thread(self._saver.remove_saved, saved))
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
        return self._cap.skip_reason(slot.kind is ProviderKind.CLOUD)

    async def _refresh_spend(self) -> None:
        day = self._spend.today()
        first = day.replace(day=1).isoformat()
        today: dict[str, float] = {}
        month: dict[str, float] = {}
        for slot in self._slots:
            today[slot.name] = await self._store.run(self._metrics_store.spend, slot.name,
                                                     day.isoformat())
            month[slot.name] = await self._store.run(self._metrics_store.spend, slot.name, first)
        self._spend.load(day, today, month)

    def _changed_elsewhere(self, paused: bool) -> None:
        """Another process changed the queue: show it, and run what it added."""
        self._runner.wake()
        self.hub.emit(QueueChanged(paused=paused))

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
