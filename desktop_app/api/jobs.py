"""Running a request for an API client: submit it marked ``origin="api"``, wait for
it, hand back its images' bytes, or an ``ApiError`` with the status the failure
deserves. A client that hangs up cancels its job. Progress of the API's jobs is
kept here for Automatic1111's ``/progress``."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable

from desktop_app.api.errors import ApiError
from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.job import Job, JobState
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.engine import Engine
from desktop_app.engine.events import Event, JobFinished, JobProgress, JobStarted
from desktop_app.store.gallery import ImageRecord

DEFAULT_RETRY_AFTER_S = 30.0


@dataclasses.dataclass
class JobTrack:
    """What ``/sdapi/v1/progress`` reports of a running API job."""

    job_id: int
    submitted_at: float
    started_at: float | None = None
    step: int = 0
    total: int = 0
    preview_png: bytes | None = None
    on_preview: Callable[[bytes], None] | None = None  # a streaming client's partial images


@dataclasses.dataclass(frozen=True)
class Finished:
    job: Job
    images: list[tuple[ImageRecord, bytes]]


class ApiJobs:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self._clock = clock
        self.tracks: dict[int, JobTrack] = {}
        # jobs from the window or the CLI, so a client's progress bar also shows those
        self.others: dict[int, JobTrack] = {}
        self._unsubscribe = engine.hub.subscribe(self._on_event)

    def close(self) -> None:
        self._unsubscribe()

    async def run(self, request: GenerationRequest,
                  on_preview: Callable[[bytes], None] | None = None) -> Finished:
        """Queue ``request`` as an API job and wait for its outcome; ``on_preview`` gets
        each preview image a provider sends on the way."""
        try:
            job = await self.engine.submit(request.replace(origin="api"))
        except InvalidRequest as error:
            raise ApiError(400, error.message, param=error.field or None,
                           code="invalid_value") from error
        self.tracks[job.id] = JobTrack(job.id, self._clock(), on_preview=on_preview)
        try:
            done = await self.engine.wait_for(job.id)
        except asyncio.CancelledError:  # the client hung up: its job is not wanted
            await asyncio.shield(self._cancel_quietly(job.id))
            raise
        finally:
            self.tracks.pop(job.id, None)
        if done.state is JobState.SUCCEEDED:
            records = await self.engine.images_of(done)
            images = [(r, await asyncio.to_thread(r.path.read_bytes)) for r in records]
            return Finished(done, images)
        raise self._failure(done)

    async def interrupt(self) -> int:
        """Cancel every API job not finished yet; how many were."""
        ids = list(self.tracks)
        for job_id in ids:
            await self._cancel_quietly(job_id)
        return len(ids)

    async def _cancel_quietly(self, job_id: int) -> None:
        with contextlib.suppress(Exception):  # finished meanwhile: nothing to cancel
            await self.engine.cancel(job_id)

    def _failure(self, job: Job) -> ApiError:
        message = job.error_message or job.error or "the job did not finish"
        if job.state is JobState.CANCELLED:
            return ApiError(503, "The job was cancelled.", code="cancelled")
        if job.error == "InvalidRequest":
            return ApiError(400, message, code="invalid_value")
        if job.error == "ContentRejected":
            return ApiError(400, message, code="content_policy_violation")
        if job.error in ("RateLimited", "QuotaExhausted"):
            waits = [s.gate.remaining() for s in self.engine.slots if s.enabled]
            wait = min((w for w in waits if w > 0), default=DEFAULT_RETRY_AFTER_S)
            return ApiError(429, f"Every provider is rate limited: {message}",
                            code="rate_limit_exceeded", retry_after_s=wait)
        if not message.startswith("No provider"):
            message = f"No provider could serve this request: {message}"
        return ApiError(503, message, code="no_provider")

    def _on_event(self, event: Event) -> None:
        if isinstance(event, JobFinished):
            self.others.pop(event.job_id, None)
            return
        if isinstance(event, JobStarted | JobProgress) and event.job_id not in self.tracks \
                and event.job_id not in self.others:
            self.others[event.job_id] = JobTrack(event.job_id, self._clock())
        if isinstance(event, JobStarted):
            track = self.tracks.get(event.job_id) or self.others.get(event.job_id)
            if track is not None:
                track.started_at = self._clock()
        elif isinstance(event, JobProgress):
            track = self.tracks.get(event.job_id) or self.others.get(event.job_id)
            if track is not None and event.total:
                if track.started_at is None:
                    track.started_at = self._clock()
                track.step, track.total = event.step, event.total
                if event.preview_png is not None:
                    track.preview_png = event.preview_png
                    if track.on_preview is not None:
                        track.on_preview(event.preview_png)
