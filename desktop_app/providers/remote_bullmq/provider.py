"""The remote provider as the engine sees it: jobs go to a BullMQ queue on Redis
and come back from whichever GPU worker took them.

Submitting: the request (seed already chosen) becomes a job with our own id,
one attempt (retries are the engine's business), and bounded retention.
Following: the queue's event stream (``events.py``) for progress and the
outcome, with a direct state check every ``poll_s`` as a safety net, which
also notices a Redis outage or a queue left without workers. Results: a
manifest in the return value, the bytes beside it (``results.py``).
Cancelling: BullMQ's Python port can cancel only inside the worker process
(``Worker.cancelJob``), so a cancel is a Redis key the worker polls, plus
removing the job if no worker has taken it yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from bullmq import Job, Queue

from desktop_app.domain.errors import (
    Cancelled,
    InvalidRequest,
    Misconfigured,
    ProviderError,
    Transient,
)
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import (
    CancelToken,
    Capabilities,
    ConnectionReport,
    Health,
    HealthState,
    Phase,
    Progress,
    ProgressCallback,
    ProviderKind,
    SizeRule,
)
from desktop_app.providers.remote_bullmq import connection, results
from desktop_app.providers.remote_bullmq.config import RemoteConfig
from desktop_app.providers.remote_bullmq.connection_check import WAITING as _WAITING
from desktop_app.providers.remote_bullmq.connection_check import check_connection
from desktop_app.providers.remote_bullmq.errors import (
    PROVIDER,
    from_failed_reason,
    from_redis,
    where,
)
from desktop_app.providers.remote_bullmq.events import EventFollower, JobEvent
from desktop_app.providers.remote_bullmq.fleet import Fleet, read_fleet
from desktop_app.providers.remote_bullmq.protocol import (
    JOB_NAME,
    STALLED_REASON,
    InputManifest,
    JobPayload,
    Keys,
    ResultManifest,
    StepReport,
    decode_failure,
    input_refs,
)
from desktop_app.store.input_images import InputImages, MissingInputImage

log = logging.getLogger(__name__)

PasswordSource = Callable[[], str | None]
# What the router sees before any worker has advertised itself.
FALLBACK_CAPABILITIES = Capabilities(
    sizes=SizeRule(multiple_of=8, min_side=64, max_side=1024), max_images_per_call=4,
    supports_seed=True, supports_negative_prompt=True, supports_steps=True,
    supports_guidance=True, estimated_latency_s=60.0)
_MESSAGES = {
    "waiting": "queued for a remote worker",
    "active": "a remote worker took the job",
    "stalled": "the remote worker stopped responding; the job goes back to the queue",
    "delayed": "the remote worker shut down; the job goes back to the queue",
}


class RemoteProvider:
    """``ImageProvider`` for the user's own GPU machines behind a BullMQ queue."""

    def __init__(self, config: RemoteConfig, password: PasswordSource, *,
                 inputs: InputImages | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.config = config
        self._inputs = inputs  # the profile's input images, sent with image jobs
        self._password_source = password
        self._clock = clock
        self._wall = wall
        self._keys = Keys(config.queue)
        self._client: Any = None
        self._blobs: Any = None
        self._queue: Queue | None = None
        self._events: EventFollower | None = None
        self._connect_lock = asyncio.Lock()
        self._fleet: Fleet | None = None
        self._health: tuple[float, Health] | None = None
        self._has_password = False

    # -- the protocol ------------------------------------------------------------

    @property
    def name(self) -> str:
        return PROVIDER

    @property
    def kind(self) -> ProviderKind:
        return ProviderKind.REMOTE

    def capabilities(self) -> Capabilities:
        fleet = self._fleet
        caps = (fleet.capabilities() if fleet else None) or FALLBACK_CAPABILITIES
        if fleet and fleet.avg_job_s:
            caps = _with_latency(caps, fleet.avg_job_s + self._wait_estimate(fleet))
        return caps

    async def health(self) -> Health:
        if not self.config.redis_url:
            return Health(HealthState.NOT_CONFIGURED,
                          "set the Redis URL of your workers' queue in Settings → Remote")
        cached = self._health
        if cached is not None and self._clock() - cached[0] < self.config.health_cache_s:
            return cached[1]
        health = await self._probe()
        self._health = (self._clock(), health)
        return health

    async def test_connection(self) -> ConnectionReport:
        """Reach Redis with the stored password on a connection of its own, and
        say how many workers are alive and how many jobs wait (Settings → Test)."""
        return await check_connection(self.config,
                                      self._password() if self.config.redis_url else None)

    async def generate(self, request: GenerationRequest, progress: ProgressCallback,
                       cancel: CancelToken) -> list[GeneratedImage]:
        if cancel.cancelled:
            raise Cancelled(cancel.reason or "cancelled by the user", provider=PROVIDER)
        if not self.config.redis_url:
            raise Misconfigured("No Redis URL for remote workers: set it in Settings → Remote.",
                                provider=PROVIDER)
        submitted = self._clock()
        manifest = await self._submit_and_follow(request, progress, cancel)
        progress(Progress(Phase.FINISHING, message="fetching the images"))
        try:
            datas = await results.fetch(manifest, blobs=self._blobs,
                                        folder=self.config.shared_folder)
        except ProviderError:
            raise
        except Exception as exc:
            raise self._redis_error(exc) from exc
        loop = asyncio.get_running_loop()
        details = {**manifest.details, "worker": manifest.worker,
                   "remote_queue": self.config.queue,
                   "remote_total_s": f"{self._clock() - submitted:.2f}",
                   "remote_run_s": f"{manifest.elapsed_s:.2f}"}
        return await loop.run_in_executor(None, _validated, manifest, datas, details)

    async def close(self) -> None:
        events, self._events = self._events, None
        if events is not None:
            await events.close()
        queue, self._queue = self._queue, None
        if queue is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(queue.close(), CLEANUP_TIMEOUT_S)  # closes the client
        blobs, self._blobs, self._client = self._blobs, None, None
        if blobs is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(blobs.aclose(), CLEANUP_TIMEOUT_S)

    # -- connections -------------------------------------------------------------

    def _password(self) -> str | None:
        password = self._password_source() or connection.url_password(self.config.redis_url)
        self._has_password = bool(password)
        return password

    def _new_client(self, *, decode: bool = True) -> Any:
        return connection.client(self.config.redis_url, self._password(), decode=decode,
                                 connect_timeout_s=self.config.connect_timeout_s)

    def _redis_error(self, exc: BaseException) -> ProviderError:
        if isinstance(exc, ProviderError):
            return exc
        return from_redis(exc, self.config.redis_url, has_password=self._has_password)

    async def _ensure_connected(self) -> tuple[Queue, EventFollower]:
        async with self._connect_lock:
            if self._queue is None:
                self._client = self._new_client()
                self._blobs = self._new_client(decode=False)
                self._queue = Queue(self.config.queue, {"connection": self._client})
            if self._events is None:
                follower = EventFollower(self.config.queue, self._new_client)
                try:
                    await follower.start(self._client)
                except Exception as exc:
                    raise self._redis_error(exc) from exc
                self._events = follower
            return self._queue, self._events

    async def _probe(self) -> Health:
        place = where(self.config.redis_url)
        details = {"queue": self.config.queue, "redis": place}
        try:
            if self._queue is None:
                await self._ensure_connected()
            client = self._client
            await client.ping()
            fleet = await read_fleet(client, self._keys)
            counts = await self._queue.getJobCounts(*_WAITING, "active")  # type: ignore[union-attr]
        except Exception as exc:
            error = self._redis_error(exc)
            state = (HealthState.NOT_CONFIGURED if isinstance(error, Misconfigured)
                     else HealthState.UNAVAILABLE)
            return Health(state, error.message, details)
        self._fleet = fleet
        waiting = sum(int(counts.get(s, 0)) for s in _WAITING)
        active = int(counts.get("active", 0))
        wait_s = self._wait_estimate(fleet, waiting)
        details.update(workers=str(fleet.alive), workers_ready=str(fleet.ready),
                       workers_busy=str(fleet.busy), waiting=str(waiting), active=str(active),
                       estimated_wait_s=f"{wait_s:.0f}")
        names = ", ".join(sorted({w.device or w.name for w in fleet.workers}))
        if names:
            details["devices"] = names
        if fleet.alive == 0:
            return Health(HealthState.UNAVAILABLE,
                          f"no remote worker is running on queue {self.config.queue!r} at "
                          f"{place}: start one with `imagedesk worker`", details)
        text = (f"{fleet.alive} remote worker(s), {fleet.busy} busy; {waiting} job(s) waiting"
                + (f", about {wait_s:.0f} s wait" if waiting else ""))
        state = HealthState.BUSY if fleet.busy >= fleet.alive else HealthState.READY
        return Health(state, text, details)

    def _wait_estimate(self, fleet: Fleet, waiting: int | None = None) -> float:
        if waiting is None:
            waiting = int((self._health[1].details.get("waiting", "0")
                           if self._health else "0") or 0)
        per_job = fleet.avg_job_s or FALLBACK_CAPABILITIES.estimated_latency_s
        return waiting * per_job / max(1, fleet.ready)

    # -- one job -----------------------------------------------------------------

    async def _follow(self, job_id: str, inbox: asyncio.Queue[JobEvent],
                      progress: ProgressCallback, cancel: CancelToken) -> ResultManifest:
        """Wait for the outcome; every exit is a manifest or a taxonomy error."""
        watch = _Watch(self._clock())
        getter: asyncio.Future[JobEvent] | None = None
        try:
            while True:
                if cancel.cancelled and watch.cancel_sent is None:
                    await self._request_cancel(job_id)
                    watch.cancel_sent = self._clock()
                if watch.cancel_sent is not None and \
                        self._clock() - watch.cancel_sent > self.config.cancel_grace_s:
                    raise Cancelled(cancel.reason or "cancelled by the user", provider=PROVIDER)
                if getter is None:
                    getter = asyncio.ensure_future(inbox.get())
                waits: set[asyncio.Future[Any]] = {getter}
                waiter = None if cancel.cancelled else asyncio.ensure_future(cancel.wait())
                if waiter is not None:
                    waits.add(waiter)
                done, _ = await asyncio.wait(waits, timeout=self.config.poll_s,
                                             return_when=asyncio.FIRST_COMPLETED)
                if waiter is not None:
                    waiter.cancel()
                if getter in done:
                    event: JobEvent | None = getter.result()
                    getter = None
                elif not done:  # nothing for poll_s: look for ourselves
                    event = await self._check(job_id, watch, cancel)
                else:
                    continue  # the cancel token woke us
                if event is not None:
                    outcome = self._on_event(event, progress, cancel)
                    if outcome is not None:
                        return outcome
        finally:
            if getter is not None:
                getter.cancel()

    def _on_event(self, event: JobEvent, progress: ProgressCallback,
                  cancel: CancelToken) -> ResultManifest | None:
        if event.kind == "progress":
            report = StepReport.from_data(event.data.get("data"))
            if report is not None:
                phase = Phase(report.phase) if report.phase in {p.value for p in Phase} \
                    else Phase.GENERATING
                where_ = f"on {report.worker}" if report.worker else ""
                message = "; ".join(m for m in (report.message, where_) if m)
                progress(Progress(phase, report.step, report.total, message))
        elif event.kind in _MESSAGES:
            progress(Progress(Phase.STARTING, message=_MESSAGES[event.kind]))
        elif event.kind == "completed":
            if cancel.cancelled:
                raise Cancelled(cancel.reason or "cancelled by the user", provider=PROVIDER)
            return _manifest(event.data.get("returnvalue"))
        elif event.kind == "failed":
            raise self._failure(str(event.data.get("failedReason", "")), cancel)
        elif event.kind == "removed":
            raise self._gone(cancel)
        return None

    async def _submit_and_follow(self, request: GenerationRequest, progress: ProgressCallback,
                                 cancel: CancelToken) -> ResultManifest:
        """Queue the job and follow it to its result. A job that BullMQ itself
        failed (Redis went away under the worker as it finished, so no worker
        reported a failure of ours) is queued once more: nothing was delivered."""
        for attempt in range(2):
            try:
                return await self._submit_once(request, progress, cancel)
            except _QueueHiccup as hiccup:
                if attempt:
                    raise
                log.warning("remote job failed in the queue (%s); queueing it again",
                            hiccup.message)
                progress(Progress(Phase.STARTING,
                                  message="the queue lost the job (Redis restarted?); "
                                          "sending it again"))
        raise AssertionError("unreachable")

    async def _submit_once(self, request: GenerationRequest, progress: ProgressCallback,
                           cancel: CancelToken) -> ResultManifest:
        queue, events = await self._ensure_connected()
        job_id = uuid.uuid4().hex
        inbox = events.watch(job_id)
        inputs: InputManifest | None = None
        try:
            inputs = await self._upload_inputs(request, job_id)
            payload = JobPayload(request, self.config.transport, self._wall(), inputs)
            try:
                await queue.add(JOB_NAME, payload.to_data(), {
                    "jobId": job_id, "attempts": 1,
                    "removeOnComplete": {"age": self.config.keep_finished_s},
                    "removeOnFail": {"age": self.config.keep_finished_s}})
            except Exception as exc:
                raise self._redis_error(exc) from exc
            progress(Progress(Phase.STARTING, message=_MESSAGES["waiting"]))
            manifest = await self._follow(job_id, inbox, progress, cancel)
        except asyncio.CancelledError:
            await asyncio.shield(self._request_cancel(job_id))
            raise
        finally:
            events.unwatch(job_id)
            if inputs is not None:
                await asyncio.shield(self._remove_inputs(inputs))
        return manifest

    async def _upload_inputs(self, request: GenerationRequest,
                             job_id: str) -> InputManifest | None:
        """Put the job's input images where workers fetch them (the results'
        transport), read from this profile's store and checked against their names."""
        refs = input_refs(request)
        if not refs:
            return None
        store = self._inputs
        if store is None:
            raise Misconfigured("This remote provider has no input image store, so it cannot "
                                "send image jobs.", provider=PROVIDER)
        try:
            datas = [(ref.sha256, await asyncio.to_thread(store.read, ref)) for ref in refs]
        except MissingInputImage as exc:
            raise InvalidRequest(exc.message, field="work", provider=PROVIDER) from exc
        try:
            return await results.upload_inputs(
                datas, keys=self._keys, job_id=job_id, transport=self.config.transport,
                blobs=self._blobs, folder=self.config.shared_folder,
                ttl_s=max(INPUT_TTL_S, self.config.keep_finished_s),
                max_bytes=MAX_INLINE_INPUT_BYTES)
        except results.InputsTooLarge as exc:
            raise InvalidRequest(str(exc), field="work", provider=PROVIDER) from exc
        except OSError as exc:
            raise Transient(f"Cannot put the input images in the shared folder "
                            f"{self.config.shared_folder}: {exc.strerror or exc}.",
                            provider=PROVIDER) from exc
        except Exception as exc:
            raise self._redis_error(exc) from exc

    async def _remove_inputs(self, inputs: InputManifest) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(results.remove_inputs(
                inputs, blobs=self._blobs, folder=self.config.shared_folder), CLEANUP_TIMEOUT_S)

    def _failure(self, reason: str, cancel: CancelToken) -> ProviderError:
        error = from_failed_reason(reason)
        if cancel.cancelled or isinstance(error, Cancelled):
            return Cancelled(cancel.reason or error.message, provider=PROVIDER)
        if decode_failure(reason) is None and reason.strip() != STALLED_REASON:
            return _QueueHiccup(error.message, provider=PROVIDER)
        return error

    def _gone(self, cancel: CancelToken) -> ProviderError:
        if cancel.cancelled:
            return Cancelled(cancel.reason or "cancelled by the user", provider=PROVIDER)
        return Transient("The remote job disappeared from the queue (was the queue emptied, "
                         "or Redis restarted without persistence?).", provider=PROVIDER)

    async def _check(self, job_id: str, watch: _Watch,
                     cancel: CancelToken) -> JobEvent | None:
        """The safety net: the job's state read directly, and the situation around it."""
        queue = self._queue
        assert queue is not None
        try:
            state = await queue.getJobState(job_id)
            job = await Job.fromId(queue, job_id) if state in ("completed", "failed") else None
            fleet = await read_fleet(self._client, self._keys) if state in _WAITING else None
        except Exception as exc:
            error = self._redis_error(exc)
            if isinstance(error, Misconfigured):
                raise error from exc
            watch.down_since = watch.down_since or self._clock()
            if self._clock() - watch.down_since > self.config.lost_redis_grace_s:
                await self._request_cancel(job_id)
                raise Transient(f"Lost Redis for over {self.config.lost_redis_grace_s:.0f} s "
                                f"while a remote worker had the job ({error.message}).",
                                provider=PROVIDER) from exc
            return None
        watch.down_since = None
        if state == "completed" and job is not None:
            return JobEvent("completed", {"jobId": job_id, "returnvalue": job.returnvalue})
        if state == "failed" and job is not None:
            return JobEvent("failed", {"jobId": job_id, "failedReason": job.failedReason})
        if state == "unknown":
            raise self._gone(cancel)
        if fleet is not None:
            self._fleet = fleet
            if fleet.alive:
                watch.no_worker_since = None
            else:
                watch.no_worker_since = watch.no_worker_since or self._clock()
                if self._clock() - watch.no_worker_since > self.config.no_worker_grace_s:
                    with contextlib.suppress(Exception):
                        await queue.remove(job_id)
                    raise Transient(f"No remote worker is alive on queue "
                                    f"{self.config.queue!r}; the job was taken back.",
                                    provider=PROVIDER)
        return None

    async def _request_cancel(self, job_id: str) -> None:
        """Best effort: flag the job for its worker, and remove it if still queued."""
        if self._client is None or self._queue is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._client.set(self._keys.cancel(job_id), "1",
                                                    ex=max(60, self.config.keep_finished_s)),
                                   CLEANUP_TIMEOUT_S)
        with contextlib.suppress(Exception):  # refused (0) while a worker holds its lock
            await asyncio.wait_for(self._queue.remove(job_id), CLEANUP_TIMEOUT_S)


# Clean-up calls (cancel flags, closing connections) never hold a job up longer.
CLEANUP_TIMEOUT_S = 5.0
# Input images wait in Redis at least this long for a worker (the desktop removes
# them when the job ends; the expiry covers a desktop that died first).
INPUT_TTL_S = 24 * 3600
MAX_INLINE_INPUT_BYTES = 64 * 2**20


class _Watch:
    def __init__(self, now: float) -> None:
        self.started = now
        self.cancel_sent: float | None = None
        self.down_since: float | None = None
        self.no_worker_since: float | None = None


def _manifest(value: object) -> ResultManifest:
    try:
        return ResultManifest.from_data(value)
    except ValueError as exc:
        raise Transient(f"A remote worker returned something ImageDesk cannot read ({exc}); "
                        "is a different worker program consuming this queue?",
                        provider=PROVIDER) from exc


def _with_latency(caps: Capabilities, latency: float) -> Capabilities:
    return dataclasses.replace(caps, estimated_latency_s=latency)


def _validated(manifest: ResultManifest, datas: list[bytes],
               details: dict[str, str]) -> list[GeneratedImage]:
    """Decode every image once (off the loop) before it leaves the provider."""
    from PIL import Image

    out = []
    for entry, data in zip(manifest.images, datas, strict=True):
        try:
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                fmt, size = (image.format or "").lower(), image.size
                image.load()
        except Exception as exc:
            raise Transient(f"A remote worker returned an image that does not decode ({exc}).",
                            provider=PROVIDER) from exc
        if size != (entry.width, entry.height):
            raise Transient(f"A remote worker returned {size[0]}x{size[1]}, not the "
                            f"{entry.width}x{entry.height} it announced.", provider=PROVIDER)
        out.append(GeneratedImage(
            data=data, format="jpeg" if fmt == "jpeg" else fmt or entry.format,
            width=size[0], height=size[1], provider=PROVIDER, model=manifest.model,
            seed=entry.seed, cost_usd=0.0, details={**details, "model": manifest.model}))
    return out


class _QueueHiccup(Transient):
    """A job failed by BullMQ itself rather than by our worker (its reason is not
    ``encode_failure``'s): Redis failed under the queue, so the job may be queued
    again without any result having been delivered."""
