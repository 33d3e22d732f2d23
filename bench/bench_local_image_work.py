"""Local image-to-image and inpaint (issue 13): through the provider vs diffusers called
directly, on the built-in tiny model, CPU; same seed, inputs and pixels.

Through the provider, with a warm worker: the stored inputs read and hash-checked, sent
down the pipe, decoded, the derived pipeline (``from_pipe`` on the loaded weights) run,
the source composited back (inpaint), the PNG encoded, sent back and checked. Directly:
``StableDiffusionImg2ImgPipeline`` / ``StableDiffusionInpaintPipeline`` loaded in this
process from the same folder, called with the same arguments. Interleaved rounds, the
order flipped every round, so drift on a shared machine hits both sides alike. Also
checks the pixels are the same (inpaint: inside the mask, the only place the pipeline's
own pixels are kept).

A control: the same direct diffusers call run in a spawned process of its own (as the
worker is). Its ratio to the in-process call is what a process boundary alone costs on
this machine, code aside; it is printed beside the target figure, not subtracted.

    .venv/bin/python bench/bench_local_image_work.py
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _harness import median, record
from PIL import Image

from desktop_app.domain.image_work import ImageToImage, Inpaint
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import CancelToken
from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider
from desktop_app.store.input_images import InputImages

SIZE, STEPS, STRENGTH, SEED, ROUNDS = 128, 20, 0.75, 1234, 10
THREADS = 1  # both sides alike: fewer threads fight less on a shared machine
PROMPT = "a lighthouse on a cliff at dusk, oil painting"


def source_png() -> bytes:
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    pixels = np.stack([x % 256, y % 256, (x * 7 + y * 13) % 256], axis=-1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format="PNG")
    return out.getvalue()


def mask_png() -> bytes:
    mask = Image.new("L", (SIZE, SIZE), 0)
    mask.paste(255, (SIZE // 4, SIZE // 4, 3 * SIZE // 4, 3 * SIZE // 4))
    out = io.BytesIO()
    mask.save(out, format="PNG")
    return out.getvalue()


async def timed(provider: LocalDiffusionProvider, request: GenerationRequest
                ) -> tuple[float, bytes]:
    start = time.perf_counter()
    [image] = await provider.generate(request, lambda _e: None, CancelToken())
    return time.perf_counter() - start, image.data


class Direct:
    def __init__(self, folder: Path) -> None:
        import diffusers
        import torch
        from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline

        diffusers.utils.logging.disable_progress_bar()
        kwargs: dict[str, Any] = {"local_files_only": True, "dtype": torch.float32,
                                  "safety_checker": None, "requires_safety_checker": False}
        torch.set_num_threads(THREADS)
        self.torch = torch
        self.img2img = StableDiffusionImg2ImgPipeline.from_pretrained(str(folder), **kwargs)
        self.inpaint = StableDiffusionInpaintPipeline.from_pretrained(str(folder), **kwargs)
        for pipe in (self.img2img, self.inpaint):
            pipe.set_progress_bar_config(disable=True)
        self.source = Image.open(io.BytesIO(source_png())).convert("RGB")
        self.mask = Image.open(io.BytesIO(mask_png())).convert("L")

    def run(self, kind: str) -> tuple[float, Any]:
        start = time.perf_counter()
        args: dict[str, Any] = {
            "prompt": PROMPT, "image": self.source, "num_inference_steps": STEPS,
            "guidance_scale": 7.0, "output_type": "pil",
            "generator": self.torch.Generator("cpu").manual_seed(SEED)}
        if kind == "img2img":
            image = self.img2img(strength=STRENGTH, **args).images[0]
        else:
            image = self.inpaint(mask_image=self.mask, width=SIZE, height=SIZE, strength=1.0,
                                 **args).images[0]
        return time.perf_counter() - start, image


def control_process(folder: str, commands: Any) -> None:
    """The spawned control: the direct pipelines, timed on request."""
    direct = Direct(Path(folder))
    while (kind := commands.recv()) is not None:
        commands.send(direct.run(kind)[0])


class Control:
    """The direct diffusers call in a spawned process of its own."""

    def __init__(self, folder: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=control_process, args=(str(folder), child))
        self.process.start()

    def run(self, kind: str) -> float:
        self.pipe.send(kind)
        return float(self.pipe.recv())

    def close(self) -> None:
        self.pipe.send(None)
        self.process.join(timeout=30)


async def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="imagedesk-bench-"))
    config = LocalDiffusionConfig(data_dir=data_dir, torch_threads=THREADS)
    inputs = InputImages.in_profile(data_dir)
    source = inputs.add(source_png())
    mask = inputs.add(mask_png(), "mask")
    base = GenerationRequest(prompt=PROMPT, steps=STEPS, seed=SEED, guidance=7.0)
    requests = {"img2img": base.replace(work=ImageToImage(source, STRENGTH)),
                "inpaint": base.replace(work=Inpaint(source, mask, mask_blur=0))}

    provider = LocalDiffusionProvider(config)  # first use builds the tiny model: not timed
    for request in requests.values():
        await timed(provider, request)  # and derives each pipeline once, as a warm app has
    direct = Direct(config.tiny_model_dir)
    control = Control(config.tiny_model_dir)
    inside = np.asarray(Image.open(io.BytesIO(mask_png()))) == 255
    lines = []
    for kind, request in requests.items():
        direct.run(kind)  # warm-up, like the provider's first job
        control.run(kind)
        ours_s, direct_s, control_s, same = [], [], [], True
        for round_ in range(ROUNDS):
            if round_ % 2:
                took, image = direct.run(kind)
                direct_s.append(took)
                control_s.append(control.run(kind))
            took, png = await timed(provider, request)
            ours_s.append(took)
            if not round_ % 2:
                control_s.append(control.run(kind))
                took, image = direct.run(kind)
                direct_s.append(took)
            ours = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            theirs = np.asarray(image.convert("RGB"))
            same = same and (np.array_equal(ours, theirs) if kind == "img2img"
                             else np.array_equal(ours[inside], theirs[inside]))
        ratio = median(ours_s) / median(direct_s)
        where = "" if kind == "img2img" else " inside the mask"
        lines.append(
            f"{kind}, provider (warm worker) / diffusers pipeline called directly, {SIZE} px, "
            f"{STEPS} steps" + (f" at strength {STRENGTH}" if kind == "img2img" else "")
            + f", seed {SEED}, median of {ROUNDS} interleaved: **{ratio:.3f}** "
            f"({median(ours_s):.3f} s vs {median(direct_s):.3f} s; {THREADS} torch thread each); "
            f"same pixels{where}: "
            f"{'yes' if same else 'NO'}; target <= 1.03; control, the direct call in a "
            f"spawned process / in this one: {median(control_s) / median(direct_s):.3f}")
    control.close()
    await provider.close()
    load = os.getloadavg()
    lines.append(f"load average at the end (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / "
                 f"{load[2]:.1f} on {os.cpu_count()} cores")
    lines.append("the provider's figure includes reading and hash-checking the inputs, the "
                 "pipe both ways, the composite (inpaint), PNG encode and decode check; "
                 "previews every 5 steps (the default) were on")
    record("bench_local_image_work.py — local img2img and inpaint (builtin:tiny, CPU)", lines)


if __name__ == "__main__":
    asyncio.run(main())
