"""SDXL single-file checkpoints load offline through the product's loader (issue 14.1).

A tiny, randomly initialised SDXL pipeline is built at test time, written as one
``.safetensors`` file in the original (SGM/A1111) layout, and loaded by
``loading.load_single_file`` with a skeleton of its configs: every tensor comes back,
and the same seed gives the same pixels as the diffusers pipeline it was built from.
torch runs in a child process (``original_layout``), as the worker does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def run_script(*args: str, timeout: float = 300) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_VERBOSITY": "error", "DIFFUSERS_VERBOSITY": "error"}
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(found, dict)
    return found


@pytest.mark.slow
def test_tiny_sdxl_single_file_loads_to_the_same_pixels_as_diffusers(tmp_path: Path) -> None:
    found = run_script("-m", "tests.providers.local_diffusion.original_layout", "tiny-sdxl",
                       str(tmp_path))
    assert found["family"] == "sdxl"
    assert found["pipeline"] == "StableDiffusionXLPipeline"
    # the file is in the layout users download, not diffusers'
    assert found["prefixes"] == ["conditioner.embedders", "first_stage_model.decoder",
                                 "first_stage_model.encoder", "first_stage_model.post_quant_conv",
                                 "first_stage_model.quant_conv", "model.diffusion_model"]
    assert found["mismatched"] == []  # every tensor of all four models came back
    assert found["same_pixels"] is True
    assert found["other_seed_differs"] is True
    assert found["tokenizer_2_pad"] == "!"
    # the GPU worker's own generation code: same pixels, each step reported, SDXL previews
    assert found["worker_same_pixels"] is True
    assert found["worker_steps"] == [[1, 2, True], [2, 2, False]]


SKELETON_SIZES = """
import json, sys
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
from desktop_app.providers.local_diffusion.gpu_worker.loading import SKELETONS, sdxl_tokenizers
xl = SKELETONS / "sdxl"
with init_empty_weights():
    parts = {
        "unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(xl / "unet")),
        "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(xl / "vae")),
        "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(xl / "text_encoder")),
        "text_encoder_2": CLIPTextModelWithProjection(
            CLIPTextConfig.from_pretrained(xl / "text_encoder_2")),
    }
sizes = {name: sum(p.numel() for p in part.parameters()) for name, part in parts.items()}
one, two = sdxl_tokenizers()
ids = [t("a cat", padding="max_length", max_length=8).input_ids for t in (one, two)]
print(json.dumps({"sizes": sizes, "ids": ids}))
"""


@pytest.mark.slow
def test_bundled_sdxl_skeleton_describes_sdxl_base_and_its_two_tokenizers() -> None:
    found = run_script("-c", SKELETON_SIZES)
    # parameter counts of stabilityai/stable-diffusion-xl-base-1.0's four models
    assert found["sizes"] == {"unet": 2_567_463_684, "vae": 83_653_863,
                              "text_encoder": 123_060_480, "text_encoder_2": 694_659_840}
    # CLIP's ids; the second tokenizer pads with "!" (id 0) as OpenCLIP did
    assert found["ids"] == [[49406, 320, 2368, 49407, 49407, 49407, 49407, 49407],
                            [49406, 320, 2368, 49407, 0, 0, 0, 0]]
