"""Our image-to-image and inpaint give diffusers' own pixels, and run on the loaded
model's weights (no second copy). diffusers runs in a child process: torch stays out
of the test process."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from desktop_app.domain.image_work import ImageToImage, Inpaint
from desktop_app.providers.base import CancelToken
from desktop_app.providers.local_diffusion import LocalDiffusionProvider
from desktop_app.store.input_images import InputImages
from tests.providers.local_diffusion.image_inputs import box_mask_png, gradient_png, pixels, store
from tests.providers.local_diffusion.support import Recorder, request

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

SEED, STEPS, STRENGTH, GUIDANCE = 321, 4, 0.5, 7.0
CHILD = Path(__file__).with_name("direct_diffusers.py")


def run_child(data_dir: Path, source: bytes, mask: bytes) -> dict[str, dict[str, object]]:
    job = {"data_dir": str(data_dir), "prompt": request().prompt, "seed": SEED,
           "steps": STEPS, "strength": STRENGTH, "guidance": GUIDANCE,
           "source": base64.b64encode(source).decode(), "mask": base64.b64encode(mask).decode()}
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root), "TRANSFORMERS_VERBOSITY": "error",
           "HF_HUB_OFFLINE": "1", "DIFFUSERS_VERBOSITY": "error"}
    out = subprocess.run([sys.executable, str(CHILD), json.dumps(job)], capture_output=True,
                         text=True, timeout=240, env=env, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, dict[str, object]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def test_image_to_image_and_inpaint_give_diffusers_own_pixels_on_shared_weights(
        tiny_provider: LocalDiffusionProvider, local_data_dir: Path) -> None:
    source = store(local_data_dir, gradient_png(64, 64))
    mask = store(local_data_dir, box_mask_png(64, 64, (16, 8, 48, 40)), "mask")
    fields = {"seed": SEED, "steps": STEPS, "guidance": GUIDANCE}
    [ours] = await tiny_provider.generate(
        request(work=ImageToImage(source, STRENGTH), **fields), Recorder(), CancelToken())
    [ours_inpaint] = await tiny_provider.generate(
        request(work=Inpaint(source, mask, mask_blur=0), **fields), Recorder(), CancelToken())

    inputs = InputImages.in_profile(local_data_dir)
    child = run_child(local_data_dir, inputs.read(source), inputs.read(mask))
    direct = child["direct"]
    assert isinstance(direct["img2img"], str) and isinstance(direct["inpaint"], str)
    assert np.array_equal(pixels(ours.data), pixels(base64.b64decode(direct["img2img"])))
    painted = pixels(base64.b64decode(direct["inpaint"]))
    inside = pixels(inputs.read(mask), "L") == 255
    assert np.array_equal(pixels(ours_inpaint.data)[inside], painted[inside])

    weights = child["weights"]
    assert weights["classes"] == ["StableDiffusionImg2ImgPipeline",
                                  "StableDiffusionInpaintPipeline"]
    assert weights["shared"] == {"unet": True, "vae": True, "text_encoder": True,
                                 "tokenizer": True}
    assert weights["same_storage"] is True and weights["cached"] is True
