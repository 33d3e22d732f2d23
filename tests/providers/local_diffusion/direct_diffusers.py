"""Run as a child process by ``test_local_matches_diffusers.py`` (torch stays out of the
test process): diffusers' own image-to-image and inpainting pipelines called directly
on the tiny model, and the worker's derived pipelines checked for shared weights.

    python direct_diffusers.py '<json job>'   ->   one JSON line on stdout
"""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path
from typing import Any


def direct(job: dict[str, Any]) -> dict[str, str]:
    import torch
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline
    from PIL import Image

    folder = str(Path(job["data_dir"]) / "models" / "builtin-tiny")
    common = {"local_files_only": True, "dtype": torch.float32, "safety_checker": None,
              "requires_safety_checker": False}
    source = Image.open(io.BytesIO(base64.b64decode(job["source"]))).convert("RGB")
    args = {"prompt": job["prompt"], "image": source, "strength": job["strength"],
            "num_inference_steps": job["steps"], "guidance_scale": job["guidance"],
            "output_type": "pil"}
    out: dict[str, str] = {}
    img2img = StableDiffusionImg2ImgPipeline.from_pretrained(folder, **common)
    img2img.set_progress_bar_config(disable=True)
    made = img2img(generator=torch.Generator("cpu").manual_seed(job["seed"]), **args).images[0]
    out["img2img"] = _b64(made)
    inpaint = StableDiffusionInpaintPipeline.from_pretrained(folder, **common)
    inpaint.set_progress_bar_config(disable=True)
    mask = Image.open(io.BytesIO(base64.b64decode(job["mask"]))).convert("L")
    made = inpaint(mask_image=mask, width=source.width, height=source.height,
                   generator=torch.Generator("cpu").manual_seed(job["seed"]),
                   **{**args, "strength": 1.0}).images[0]
    out["inpaint"] = _b64(made)
    return out


def shared_weights(job: dict[str, Any]) -> dict[str, object]:
    from desktop_app.providers.local_diffusion.config import BUILTIN_TINY
    from desktop_app.providers.local_diffusion.gpu_worker.device_choice import choose_device
    from desktop_app.providers.local_diffusion.gpu_worker.image_work import ImageJobs
    from desktop_app.providers.local_diffusion.gpu_worker.loading import load_model
    from desktop_app.providers.local_diffusion.messages import WorkerSettings

    settings = WorkerSettings(
        data_dir=Path(job["data_dir"]), device="cpu", allow_cpu=True, attention_slicing=False,
        vae_tiling=False, cpu_offload=False, allow_download=False, hf_cache_dir=None,
        torch_threads=2)
    loaded = load_model(BUILTIN_TINY, settings, choose_device(settings), lambda _text: None)
    jobs = ImageJobs()
    img2img, inpaint = jobs.img2img_pipe(loaded), jobs.inpaint_pipe(loaded)
    pipe = loaded.pipe
    modules = ("unet", "vae", "text_encoder", "tokenizer")
    storage = [p.data_ptr() for p in pipe.unet.parameters()]
    return {
        "classes": [type(img2img).__name__, type(inpaint).__name__],
        "shared": {name: getattr(img2img, name) is getattr(pipe, name)
                   and getattr(inpaint, name) is getattr(pipe, name) for name in modules},
        "same_storage": storage == [p.data_ptr() for p in img2img.unet.parameters()]
                        == [p.data_ptr() for p in inpaint.unet.parameters()],
        "cached": jobs.img2img_pipe(loaded) is img2img and jobs.inpaint_pipe(loaded) is inpaint,
    }


def _b64(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def main() -> None:
    import torch

    torch.set_num_threads(2)  # as the provider under test runs its worker
    job = json.loads(sys.argv[1])
    print(json.dumps({"direct": direct(job), "weights": shared_weights(job)}))


if __name__ == "__main__":
    main()
