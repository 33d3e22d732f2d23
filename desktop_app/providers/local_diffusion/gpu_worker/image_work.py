"""Work on an existing image in the worker: image-to-image, inpaint, outpaint, upscale.

Every kind runs on the loaded model's own weights: the image-to-image and
inpainting pipelines are made with diffusers' ``from_pipe``, which builds a new
pipeline object around the *same* modules (no second copy in memory), once per
loaded model. A model made for inpainting (its UNet takes 9 input channels: the
latents, the mask and the masked image) does every kind through its inpainting
pipeline, as it cannot run the plain image-to-image one.

Pipelines need sides that are multiples of 8: sizes are snapped for the pipeline
and the result is resized back, so a job always gets exactly the size it asked
for. Inpaint and outpaint composite the source back over the result through the
mask, feathered inward by ``mask_blur``: a pixel the mask leaves at 0 is the
source's, byte for byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
from collections.abc import Callable, Iterator
from typing import Any

from desktop_app.domain.image_work import ImageRef, ImageToImage, Inpaint, Outpaint, Upscale
from desktop_app.providers.local_diffusion.failures import WorkerProblem
from desktop_app.providers.local_diffusion.messages import RunJob

SIDE_MULTIPLE = 8
LARGE_SIDE = 1024  # above this, the VAE works in tiles (for the job, then as it was)
MAX_STEPS_ASKED = 1000  # the schedulers' training timesteps: no finer split exists

StepCallback = Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]


def snapped(side: int) -> int:
    """The nearest multiple of 8 (halves up, at least 8) to ``side``: what the pipeline
    is given."""
    return max(SIDE_MULTIPLE, (side + SIDE_MULTIPLE // 2) // SIDE_MULTIPLE * SIDE_MULTIPLE)


def needs_vae_tiling(width: int, height: int) -> bool:
    return max(width, height) > LARGE_SIDE


def steps_to_ask(steps: int, strength: float) -> int:
    """The ``num_inference_steps`` to give a pipeline that runs ``int(n * strength)``
    of them: the job's steps, raised where that would run none (2 steps at 0.3)."""
    asked = steps
    if int(asked * strength) < 1:
        asked = math.ceil(1 / strength)
        if int(asked * strength) < 1:
            asked += 1
    if asked > MAX_STEPS_ASKED:
        raise WorkerProblem("InvalidRequest",
                            f"A strength of {strength:g} is too low to change anything; use "
                            f"{1 / MAX_STEPS_ASKED:g} or more.")
    return asked


def work_details(job: RunJob) -> dict[str, str]:
    """What the saved image's details record about the work (A1111 names these
    "Denoising strength", "Mask blur", "Hires upscale")."""
    work = job.work
    if work is None:
        return {}
    details = {"kind": work.KIND.value, "denoising_strength": f"{work.strength:g}"}
    if isinstance(work, Inpaint | Outpaint):
        details["mask_blur"] = str(work.mask_blur)
    if isinstance(work, Outpaint):
        p = work.padding
        details["outpaint_padding"] = f"{p.left},{p.top},{p.right},{p.bottom}"
    if isinstance(work, Upscale):
        details["upscale"] = f"{work.scale:g}"
        details["vae_tiling"] = "on" if needs_vae_tiling(snapped(job.width),
                                                         snapped(job.height)) else "off"
    return details


class ImageJobs:
    """The derived pipelines of the loaded model, and the decoded inputs of the job
    that runs. ``forget()`` drops both: call it before loading another model, so the
    old weights are not kept alive by a derived pipeline."""

    def __init__(self) -> None:
        self._made_from: Any = None  # the LoadedModel the pipelines below share weights with
        self._img2img: Any = None
        self._inpaint: Any = None
        self._decoded: tuple[int, dict[str, Any]] | None = None  # job id, sha -> PIL image

    def forget(self) -> None:
        self._made_from = self._img2img = self._inpaint = None
        self._decoded = None

    # -- pipelines ---------------------------------------------------------------

    def _same_model(self, loaded: Any) -> None:
        if self._made_from is not loaded:
            self.forget()
            self._made_from = loaded

    def img2img_pipe(self, loaded: Any) -> Any:
        """The image-to-image pipeline sharing ``loaded.pipe``'s modules (cached)."""
        self._same_model(loaded)
        if self._img2img is None:
            from diffusers import AutoPipelineForImage2Image

            self._img2img = _quiet(AutoPipelineForImage2Image.from_pipe(loaded.pipe))
        self._img2img.scheduler = loaded.pipe.scheduler  # the job's choice (main.run)
        return self._img2img

    def inpaint_pipe(self, loaded: Any) -> Any:
        """The inpainting pipeline sharing ``loaded.pipe``'s modules (cached)."""
        self._same_model(loaded)
        if self._inpaint is None:
            from diffusers import AutoPipelineForInpainting

            self._inpaint = _quiet(AutoPipelineForInpainting.from_pipe(loaded.pipe))
        self._inpaint.scheduler = loaded.pipe.scheduler
        return self._inpaint

    # -- one image ---------------------------------------------------------------

    def generate(self, loaded: Any, job: RunJob, generator: Any, on_step: StepCallback) -> Any:
        """One result image (PIL, exactly ``job.width`` x ``job.height``)."""
        work = job.work
        run = _Run(self, loaded, job, generator, on_step)
        if isinstance(work, Inpaint):
            return run.inpaint(self._image(job, work.source, "RGB"),
                               self._image(job, work.mask, "L"), work.strength, work.mask_blur)
        if isinstance(work, Outpaint):
            canvas, mask = outpaint_canvas(self._image(job, work.source, "RGB"), work)
            return run.inpaint(canvas, mask, work.strength, work.mask_blur)
        if isinstance(work, Upscale):
            return run.img2img(self._image(job, work.source, "RGB"), work.strength,
                               tiled=needs_vae_tiling(snapped(job.width), snapped(job.height)))
        if isinstance(work, ImageToImage):
            return run.img2img(self._image(job, work.source, "RGB"), work.strength)
        raise WorkerProblem("InvalidRequest", "This job carries no work on an image.")

    def _image(self, job: RunJob, ref: ImageRef, mode: str) -> Any:
        if self._decoded is None or self._decoded[0] != job.job_id:
            self._decoded = (job.job_id, {})
        images = self._decoded[1]
        if ref.sha256 not in images:
            images[ref.sha256] = decode_input(job, ref)
        image = images[ref.sha256]
        return image if image.mode == mode else image.convert(mode)


class _Run:
    """One call of a pipeline for one seed: sizes snapped in, the result sized back out."""

    def __init__(self, jobs: ImageJobs, loaded: Any, job: RunJob, generator: Any,
                 on_step: StepCallback) -> None:
        self.jobs, self.loaded, self.job = jobs, loaded, job
        self.generator, self.on_step = generator, on_step
        self.size = (job.width, job.height)
        self.snapped = (snapped(job.width), snapped(job.height))

    def _common(self, strength: float) -> dict[str, Any]:
        job = self.job
        return {"prompt": job.prompt, "negative_prompt": job.negative_prompt or None,
                "strength": strength, "num_inference_steps": steps_to_ask(job.steps, strength),
                "guidance_scale": job.guidance, "generator": self.generator,
                "clip_skip": job.clip_skip - 1 if job.clip_skip > 1 else None,
                "callback_on_step_end": self.on_step, "output_type": "pil"}

    def _to_pipeline(self, image: Any) -> Any:
        from PIL import Image

        return image if image.size == self.snapped else image.resize(self.snapped,
                                                                     Image.Resampling.LANCZOS)

    def _from_pipeline(self, image: Any) -> Any:
        from PIL import Image

        return image if image.size == self.size else image.resize(self.size,
                                                                  Image.Resampling.LANCZOS)

    def img2img(self, source: Any, strength: float, *, tiled: bool = False) -> Any:
        if is_inpainting_model(self.loaded):  # it cannot run the plain pipeline
            from PIL import Image

            return self._inpaint_call(source, Image.new("L", source.size, 255), strength, tiled)
        pipe = self.jobs.img2img_pipe(self.loaded)
        with vae_tiling(pipe, tiled):
            result = pipe(image=self._to_pipeline(source), **self._common(strength)).images[0]
        return self._from_pipeline(result)

    def inpaint(self, source: Any, mask: Any, strength: float, blur: int) -> Any:
        """Repaint where ``mask`` is white; the source is composited back elsewhere."""
        from PIL import Image

        painted = self._inpaint_call(source, grown_mask(mask, blur), strength, False)
        return Image.composite(painted, source, feathered_mask(mask, blur))

    def _inpaint_call(self, source: Any, mask: Any, strength: float, tiled: bool) -> Any:
        pipe = self.jobs.inpaint_pipe(self.loaded)
        width, height = self.snapped
        with vae_tiling(pipe, tiled):
            result = pipe(image=self._to_pipeline(source), mask_image=self._to_pipeline(mask),
                          width=width, height=height, **self._common(strength)).images[0]
        return self._from_pipeline(result)


def is_inpainting_model(loaded: Any) -> bool:
    unet = getattr(loaded.pipe, "unet", None)
    return getattr(getattr(unet, "config", None), "in_channels", 4) == 9


@contextlib.contextmanager
def vae_tiling(pipe: Any, on: bool) -> Iterator[None]:
    """Tile the VAE for this call only, unless it tiles anyway (a setting, or after an
    out-of-memory retry): tiling changes the pixels, so a later job of another kind
    must not inherit it."""
    vae = pipe.vae
    if not on or getattr(vae, "use_tiling", False):
        yield
        return
    vae.enable_tiling()
    try:
        yield
    finally:
        vae.disable_tiling()


def grown_mask(mask: Any, blur: int) -> Any:
    """The mask the pipeline repaints: the user's, grown by the blur, so the model
    paints a margin past the edge that the composite then blends over."""
    from PIL import ImageChops, ImageFilter

    if blur <= 0:
        return mask
    return ImageChops.lighter(mask, mask.filter(ImageFilter.GaussianBlur(blur)))


def feathered_mask(mask: Any, blur: int) -> Any:
    """How much of the result each pixel takes: the mask blurred, but never more than
    the mask itself, so the soft edge falls inside it and a 0 stays a 0."""
    from PIL import ImageChops, ImageFilter

    if blur <= 0:
        return mask
    return ImageChops.darker(mask, mask.filter(ImageFilter.GaussianBlur(blur)))


def outpaint_canvas(source: Any, work: Outpaint) -> tuple[Any, Any]:
    """The padded canvas (the new area filled by extending the source's edges, a
    start the model repaints from) and its mask (white = the new area)."""
    import numpy as np
    from PIL import Image

    p = work.padding
    pixels = np.asarray(source.convert("RGB"))
    padded = np.pad(pixels, ((p.top, p.bottom), (p.left, p.right), (0, 0)), mode="edge")
    canvas = Image.fromarray(padded, "RGB")
    mask = Image.new("L", canvas.size, 255)
    mask.paste(0, (p.left, p.top, p.left + source.width, p.top + source.height))
    return canvas, mask


def decode_input(job: RunJob, ref: ImageRef) -> Any:
    """The stored PNG ``ref`` names, from the job message: checked against its hash
    and size, decoded once. Any fault is an ``InvalidRequest`` naming the image."""
    from PIL import Image

    name = f"The input image {ref.sha256[:12]}…"
    data = next((item.png for item in job.inputs if item.sha256 == ref.sha256), None)
    if data is None:
        raise WorkerProblem("InvalidRequest", f"{name} was not sent with the job.")
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise WorkerProblem("InvalidRequest", f"{name} is damaged (its content no longer "
                                              "matches its name); queue the job again.")
    try:
        with Image.open(io.BytesIO(data), formats=("PNG",)) as image:
            if image.size != ref.size:
                raise WorkerProblem(
                    "InvalidRequest", f"{name} is {image.width}x{image.height}, not the "
                                      f"{ref.width}x{ref.height} the job names.")
            image.load()
            return image.copy()
    except WorkerProblem:
        raise
    except Exception as exc:
        raise WorkerProblem("InvalidRequest",
                            f"{name} does not decode as a PNG ({exc}); queue the job again "
                            "with the source image.") from exc


def _quiet(pipe: Any) -> Any:
    pipe.set_progress_bar_config(disable=True)
    return pipe
