"""A model made for inpainting (9-channel UNet) serves every kind of work on an image:
inpaint through its own inpainting pipeline, and image-to-image (which the plain
pipeline cannot run on it) through the same, with the whole picture masked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from desktop_app.domain.image_work import ImageToImage, Inpaint, Upscale
from desktop_app.providers.base import CancelToken
from desktop_app.providers.local_diffusion import LocalDiffusionProvider
from tests.providers.local_diffusion.image_inputs import (
    box_mask_png,
    gradient_png,
    pixels,
    store,
    stored_pixels,
)
from tests.providers.local_diffusion.support import Recorder, request

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def inpainting_model(local_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("models") / "tiny-inpainting"
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("make_inpainting_model.py")),
         str(local_data_dir), str(target)], capture_output=True, text=True, timeout=240,
        env={**os.environ, "PYTHONPATH": str(root), "TRANSFORMERS_VERBOSITY": "error",
             "HF_HUB_OFFLINE": "1"}, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "9"
    return target


async def test_an_inpainting_model_inpaints_and_also_serves_image_to_image(
        tiny_provider: LocalDiffusionProvider, local_data_dir: Path,
        inpainting_model: Path) -> None:
    source = store(local_data_dir, gradient_png(64, 64))
    mask = store(local_data_dir, box_mask_png(64, 64, (16, 16, 48, 48)), "mask")
    model = str(inpainting_model)
    [inpainted] = await tiny_provider.generate(
        request(steps=2, model=model, work=Inpaint(source, mask)), Recorder(), CancelToken())
    original = stored_pixels(local_data_dir, source)
    keep = stored_pixels(local_data_dir, mask, "L") == 0
    assert np.array_equal(pixels(inpainted.data)[keep], original[keep])
    assert inpainted.model == "tiny-inpainting"
    for work, size in ((ImageToImage(source, 0.6), (64, 64)), (Upscale(source, 1.5), (96, 96))):
        [image] = await tiny_provider.generate(request(steps=2, model=model, work=work),
                                               Recorder(), CancelToken())
        assert (image.width, image.height) == size
        assert pixels(image.data).shape == (size[1], size[0], 3)
    # and back to the normal model: its own derived pipelines, not the inpainting model's
    [again] = await tiny_provider.generate(request(steps=2, work=ImageToImage(source, 0.6)),
                                           Recorder(), CancelToken())
    assert again.model != "tiny-inpainting"
