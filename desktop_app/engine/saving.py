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
from desktop_app.domain.request import GenerationRequest, Upscale
from desktop_app.domain.samplers import A1111_NAME
from desktop_app.engine.failover import JobOutcome
from desktop_app.store import files
from desktop_app.store.a1111 import work_fields
from desktop_app.store.database import StoreError
from desktop_app.store.gallery import Gallery, ImageRecord, NewImage
from desktop_app.store.jobs import JobQueue
from desktop_app.store.metadata import MetadataTooLarge, sniff_format, transcode
from desktop_app.store.output_folder import UnsavedImage, keep_unsaved

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SavedFile:
    path: Path
    image: GeneratedImage
    format: str  # as written: the request's format, unless that was impossible
    converted_from: str | None = None  # the provider's format, when it was re-encoded


class ImageSaver:
    """Writes a job's images in the request's format (``output.format`` for jobs
    that do not name one), re-encoding with ``quality`` (1-100, JPEG and WebP)
    when a provider returned another format: a paid image is never thrown away
    for its format. When the folder refuses them, images go to ``unsaved_dir``."""

    def __init__(self, folder: Path, thumbs_dir: Path, unsaved_dir: Path | None = None,
                 quality: int = 90) -> None:
        self.folder = folder
        self.thumbs_dir = thumbs_dir
        self.unsaved_dir = unsaved_dir  # where images go when the folder refuses them
        self.quality = quality

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
        wanted = outcome.request.output_format.value
        try:
            for index, image in enumerate(outcome.images):
                saved.append(self._write_one(job, outcome, image, folder,
                                             f"{now:%Y%m%d-%H%M%S}_job{job.id}_{index}",
                                             wanted, journal))
        except OSError as error:  # kept as the provider sent them, with their metadata
            raise keep_unsaved(self.folder, error, [UnsavedImage(
                f"{now:%Y%m%d-%H%M%S}_job{job.id}_{index}", image.data, image.format,
                self.parameters(job, outcome, image),
                self.provenance(job, outcome, image, image.format, None))
                for index, image in enumerate(outcome.images)],
                [s.path for s in saved], self.unsaved_dir) from error
        return saved

    def _write_one(self, job: Job, outcome: JobOutcome, image: GeneratedImage, folder: Path,
                   stem: str, wanted: str, journal: Callable[[Path], None]) -> SavedFile:
        data, fmt, converted_from = self.encode(image.data, wanted)
        try:
            written = files.write_image_atomic(
                folder, stem, data, fmt, parameters=self.parameters(job, outcome, image),
                provenance=self.provenance(job, outcome, image, fmt, converted_from),
                journal=journal)
        except MetadataTooLarge as error:  # JPEG's 64 KiB EXIF: keep the image as PNG
            log.warning("job %s image %s: %s Saved as PNG.", job.id, stem, error)
            data, fmt, converted_from = self.encode(image.data, "png")
            written = files.write_image_atomic(
                folder, stem, data, fmt, parameters=self.parameters(job, outcome, image),
                provenance=self.provenance(job, outcome, image, fmt, converted_from),
                journal=journal)
        return SavedFile(written, image, fmt, converted_from)

    def encode(self, data: bytes, wanted: str) -> tuple[bytes, str, str | None]:
        """(bytes, format, the provider's format if re-encoded). The bytes are
        sniffed, not trusted to their label; when they cannot be converted but are
        a known format, they are kept as they are rather than lost."""
        actual = sniff_format(data)
        if actual == wanted:
            return data, wanted, None
        try:
            return transcode(data, wanted, self.quality), wanted, actual
        except StoreError as error:
            if actual is None:
                raise
            log.warning("could not convert a %s image to %s (%s); saved as %s",
                        actual, wanted, error, actual)
            return data, actual, None

    def remove_stale_temp_files(self) -> int:
        """Temp files a crash left mid-write; run at start, off the UI thread."""
        return files.remove_stale_temp_files(self.folder) if self.folder.is_dir() else 0

    def parameters(self, job: Job, outcome: JobOutcome, image: GeneratedImage) -> str:
        """Automatic1111's infotext for this image."""
        request = outcome.request
        details = dict(image.details)
        extra = {**work_fields(request.work), "Provider": image.provider,
                 **_templates(job, outcome)}
        if "model_hash" in details:
            extra["Model hash"] = details["model_hash"]
        if "quality" in details:
            extra["Quality"] = details["quality"]
        if details.get("clip_skip", "1") != "1":  # A1111 writes it only when it skips
            extra["Clip skip"] = details["clip_skip"]
        # the LoRAs and embeddings applied, as A1111's Lora extension and TI write them
        # (Civitai links a picture to the files by these hashes)
        if details.get("lora_hashes"):
            extra["Lora hashes"] = details["lora_hashes"]
        if details.get("ti_hashes"):
            extra["TI hashes"] = details["ti_hashes"]
        # A1111's hires fix names the size before the upscale, with "Hires upscale"
        width, height = ((request.work.source.width, request.work.source.height)
                         if isinstance(request.work, Upscale) else (image.width, image.height))
        # Only what the provider honoured goes in: it records steps and guidance
        # in the details, and a seed only where seeds reproduce its images.
        # a provider that did not apply the prompt's LoRAs (the cloud, adapted) ran it
        # without the tags: the infotext says what made the image
        prompt = (request.prompt if not request.loras or details.get("loras")
                  else request.prompt_for_encoder)
        return files.a1111_parameters(
            prompt=prompt,
            negative_prompt=request.negative_prompt,
            steps=int(details["steps"]) if "steps" in details else None,
            sampler=sampler_name(details),
            cfg_scale=float(details["guidance"]) if "guidance" in details else None,
            seed=image.seed, width=width, height=height, model=image.model, extra=extra,
        )

    @staticmethod
    def provenance(job: Job, outcome: JobOutcome, image: GeneratedImage, fmt: str,
                   converted_from: str | None = None) -> dict[str, object]:
        """Our own JSON chunk: where the image came from and how it got there."""
        failed_first = [a.describe() for a in outcome.attempts
                        if a.provider != outcome.provider and a.error is not None]
        converted = {"converted_from": converted_from} if converted_from else {}
        return {
            "app": "ImageDesk", "app_version": __version__, "job_id": job.id,
            "provider": image.provider, "model": image.model, "seed": image.seed,
            "request": outcome.request.to_dict(),
            "attempts": [a.to_dict() for a in outcome.attempts],
            "fallback_reason": failed_first[-1] if failed_first else None,
            "cost_usd": image.cost_usd, "details": dict(image.details),
            "format": fmt, "kind": outcome.request.kind.value,
            "private": outcome.request.policy.private, "left_machine": outcome.left_machine,
            **({"styles": list(outcome.request.styles)} if outcome.request.styles else {}),
            "source_images": [ref.sha256 for ref in outcome.request.input_images],
            **{key.lower().replace(" ", "_"): value
               for key, value in _templates(job, outcome).items()},
            **converted,
        }

    def index_and_finish(self, queue: JobQueue, gallery: Gallery, job: Job,
                         outcome: JobOutcome, saved: list[SavedFile]) -> list[int]:
        """Store thread: gallery rows and the job's success commit together."""
        request = outcome.request
        source_id = _source_image_id(gallery, request)
        records = [
            NewImage(
                path=s.path, job_id=job.id, prompt=request.prompt,
                negative_prompt=request.negative_prompt, seed=s.image.seed,
                width=s.image.width, height=s.image.height, steps=request.steps,
                guidance=request.guidance, provider=s.image.provider, model=s.image.model,
                cost_usd=s.image.cost_usd, format=s.format,
                provenance=self.provenance(job, outcome, s.image, s.format, s.converted_from),
                kind=request.kind.value, source_image_id=source_id,
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


def _source_image_id(gallery: Gallery, request: GenerationRequest) -> int | None:
    """The gallery image the job's source came from, if it is still in the gallery
    (it may have been deleted while the job waited)."""
    work = request.work
    if work is None or work.source.gallery_id is None:
        return None
    return work.source.gallery_id if gallery.get(work.source.gallery_id) else None


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


def _templates(job: Job, outcome: JobOutcome) -> dict[str, str]:
    """The prompts as written, where wildcards or options changed them for the run
    (the names the Dynamic Prompts extension gives them in Automatic1111's infotext)."""
    found = {}
    if job.request.prompt != outcome.request.prompt:
        found["Template"] = job.request.prompt
    if job.request.negative_prompt != outcome.request.negative_prompt:
        found["Negative Template"] = job.request.negative_prompt
    return found


def sampler_name(details: dict[str, str]) -> str | None:
    chosen = A1111_NAME.get(details.get("scheduler", ""))
    if chosen is not None:  # the name asked for (Karras or not is not in the class)
        return chosen
    cls = details.get("scheduler_class")
    if cls:
        return A1111_SAMPLERS.get(cls, cls.removesuffix("Scheduler"))
    return details.get("scheduler")


