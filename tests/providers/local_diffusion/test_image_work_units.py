"""The worker's rules for work on an image that need no pipeline (no torch imported)."""

from __future__ import annotations

import sys

import pytest

from desktop_app.domain.image_work import ImageRef, ImageToImage, Upscale
from desktop_app.providers.local_diffusion.failures import WorkerProblem
from desktop_app.providers.local_diffusion.gpu_worker.image_work import (
    snapped,
    steps_to_ask,
    work_details,
)
from desktop_app.providers.local_diffusion.messages import RunJob

SOURCE = ImageRef("ab" * 32, 600, 400)


def job(work: ImageToImage | Upscale, width: int, height: int) -> RunJob:
    return RunJob(job_id=1, model="builtin:tiny", prompt="p", negative_prompt="", width=width,
                  height=height, steps=20, guidance=7.0, seeds=(1,), scheduler="default",
                  preview_every=0, work=work)


def test_sizes_snap_to_the_nearest_multiple_of_8() -> None:
    assert [snapped(s) for s in (64, 66, 68, 70, 1199)] == [64, 64, 72, 72, 1200]


def test_a_strength_that_would_run_no_step_asks_for_enough_steps_for_one() -> None:
    assert steps_to_ask(20, 0.75) == 20  # 15 run
    for steps, strength in ((2, 0.3), (1, 0.5), (4, 0.1), (3, 0.07)):
        asked = steps_to_ask(steps, strength)
        assert int(asked * strength) == 1, (steps, strength)


def test_a_strength_too_low_to_change_anything_is_refused_with_the_lowest_that_works() -> None:
    with pytest.raises(WorkerProblem) as caught:
        steps_to_ask(20, 0.0001)
    assert caught.value.kind == "InvalidRequest" and "0.001 or more" in caught.value.message


def test_an_upscale_tiles_the_vae_only_above_1024_px() -> None:
    small = Upscale(SOURCE, scale=1.5)  # 900x600
    large = Upscale(SOURCE, scale=2.0)  # 1200x800
    assert work_details(job(small, 900, 600))["vae_tiling"] == "off"
    assert work_details(job(large, 1200, 800))["vae_tiling"] == "on"
    assert work_details(job(large, 1200, 800))["upscale"] == "2"


def test_image_work_details_name_the_kind_and_strength() -> None:
    details = work_details(job(ImageToImage(SOURCE, 0.35), 600, 400))
    assert details == {"kind": "img2img", "denoising_strength": "0.35"}
    assert "torch" not in sys.modules
