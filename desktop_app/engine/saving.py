"""Saving a finished job's images: files first (atomic, with metadata other tools
read), then the gallery rows and the job's success in one transaction.

If the app dies between the two, the job is still ``running`` in the store and
is requeued on the next start; the files it had written are listed in the job's
pending-files journal and removed by recovery, so the gallery and the folder
always agree and no job completes twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

from desktop_app import __version__
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.job import Job
from desktop_app.engine.failover import JobOutcome
from desktop_app.store import files
from desktop_app.store.gallery import Gallery, ImageRecord, NewImage
from desktop_app.store.jobs import JobQueue
from desktop_app.store.output_folder import UnsavedImage, keep_unsaved

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SavedFile:
    path: Path
    image: GeneratedImage


class ImageSaver:
    def __init__(self, folder: Path, thumbs_dir: Path, unsaved_dir: Path | None = None) -> None:
        self.folder = folder
        self.thumbs_dir = thumbs_dir
        self.unsaved_dir = unsaved_dir  # where images go when the folder refuses them

    def write_files(self, job: Job, outcome: JobOutcome,
                    journal: Callable[[Path], None]) -> list[SavedFile]:
        """Blocking file I/O: run it in a worker thread, never on the UI thread.

        ``journal(path)`` records each final name before the file appears there,
        so a crash between writing and indexing leaves files recovery removes.
        A folder that refuses them raises ``OutputFolderUnusable`` once the images
        are kept in ``unsaved_dir`` (see ``store.output_folder``)."""
        now = dt.datetime.now()
        folder = self.folder / now.strftime("%Y-%m-%d")
        saved: list[SavedFile] = []
        try:
            for index, image in enumerate(outcome.images):
                written = files.write_image_atomic(
                    folder, f"{now:%Y%m%d-%H%M%S}_job{job.id}_{index}", image.data,
                    image.format, parameters=self.parameters(outcome, image),
                    provenance=self.provenance(job, outcome, image), journal=journal,
                )
                saved.append(SavedFile(written, image))
        except OSError as error:
            raise keep_unsaved(self.folder, error, [UnsavedImage(
                f"{now:%Y%m%d-%H%M%S}_job{job.id}_{index}", image.data, image.format,
                self.parameters(outcome, image), self.provenance(job, outcome, image))
                for index, image in enumerate(outcome.images)],
                [s.path for s in saved], self.unsaved_dir) from error
        return saved

    def remove_stale_temp_files(self) -> int:
        """Temp files a crash left mid-write; run at start, off the UI thread."""
        return files.remove_stale_temp_files(self.folder) if self.folder.is_dir() else 0

    def parameters(self, outcome: JobOutcome, image: GeneratedImage) -> str:
        """Automatic1111's infotext for this image."""
        request = outcome.request
        details = dict(image.details)
        extra = {"Provider": image.provider}
        if "model_hash" in details:
            extra["Model hash"] = details["model_hash"]
        if "quality" in details:
            extra["Quality"] = details["quality"]
        # Only what the provider honoured goes in: it records steps and guidance
        # in the details, and a seed only where seeds reproduce its images.
        return files.a1111_parameters(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            steps=int(details["steps"]) if "steps" in details else None,
            sampler=sampler_name(details),
            cfg_scale=float(details["guidance"]) if "guidance" in details else None,
            seed=image.seed,
            width=image.width, height=image.height, model=image.model, extra=extra,
        )

    @staticmethod
    def provenance(job: Job, outcome: JobOutcome, image: GeneratedImage) -> dict[str, object]:
        """Our own JSON chunk: where the image came from and how it got there."""
        failed_first = [a.describe() for a in outcome.attempts
                        if a.provider != outcome.provider and a.error is not None]
        return {
            "app": "ImageDesk", "app_version": __version__, "job_id": job.id,
            "provider": image.provider, "model": image.model, "seed": image.seed,
            "request": outcome.request.to_dict(),
            "attempts": [a.to_dict() for a in outcome.attempts],
            "fallback_reason": failed_first[-1] if failed_first else None,
            "cost_usd": image.cost_usd, "details": dict(image.details),
        }

    def index_and_finish(self, queue: JobQueue, gallery: Gallery, job: Job,
                         outcome: JobOutcome, saved: list[SavedFile]) -> list[int]:
        """Store thread: gallery rows and the job's success commit together."""
        request = outcome.request
        records = [
            NewImage(
                path=s.path, job_id=job.id, prompt=request.prompt,
                negative_prompt=request.negative_prompt, seed=s.image.seed,
                width=s.image.width, height=s.image.height, steps=request.steps,
                guidance=request.guidance, provider=s.image.provider, model=s.image.model,
                cost_usd=s.image.cost_usd, format=s.image.format,
                provenance=self.provenance(job, outcome, s.image),
            )
            for s in saved
        ]
        return queue.finish_with_images(job.id, gallery, records, provider=outcome.provider,
                                        seed=request.seed)

    def remove_saved(self, saved: list[SavedFile]) -> None:
        for item in saved:
            try:
                item.path.unlink(missing_ok=True)
            except OSError as error:
                log.warning("could not delete %s: %s", item.path, error)

    def remove_files(self, record: ImageRecord) -> None:
        for path in (record.path, record.thumb_path):
            if path is not None:
                try:
                    path.unlink(missing_ok=True)
                except OSError as error:
                    log.warning("could not delete %s: %s", path, error)

    def thumbnail(self, path: Path) -> Path:
        return files.make_thumbnail(path, self.thumbs_dir)


# diffusers scheduler classes by the names A1111 and other readers show.
A1111_SAMPLERS = {
    "DDIMScheduler": "DDIM",
    "EulerDiscreteScheduler": "Euler",
    "EulerAncestralDiscreteScheduler": "Euler a",
    "DPMSolverMultistepScheduler": "DPM++ 2M",
    "PNDMScheduler": "PLMS",
    "LMSDiscreteScheduler": "LMS",
    "HeunDiscreteScheduler": "Heun",
}


def sampler_name(details: dict[str, str]) -> str | None:
    cls = details.get("scheduler_class")
    if cls:
        return A1111_SAMPLERS.get(cls, cls.removesuffix("Scheduler"))
    return details.get("scheduler")


