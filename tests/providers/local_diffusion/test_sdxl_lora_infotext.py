"""Issue 14's "Done when": ImageDesk pointed at a folder laid out like an Automatic1111
install lists its checkpoints, LoRAs and embeddings; a job with an SDXL checkpoint and
``<lora:name:0.7>`` in the prompt runs, and writes an infotext that a third-party
reader parses back with the model hash and the LoRA hash.

torch runs in a child process (``tiny_xl_lora.py``): the tiny SDXL checkpoint in the
original single-file layout, loaded by the product's loader, with a kohya-layout SDXL
LoRA found through the model library, run by the GPU worker's job code. The image is
then saved by the engine's saver, as every finished job is.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sd_parsers import ParserManager

from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.job import Job
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.failover import JobOutcome
from desktop_app.engine.saving import ImageSaver
from tests.providers.local_diffusion.image_inputs import pixels
from tests.providers.local_diffusion.tiny_xl_lora import PROMPT

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
# Automatic1111's own infotext pattern (modules/infotext_utils.py, re_param)
A1111_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def addnet_hash(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha256(data[8 + int.from_bytes(data[:8], "little"):]).hexdigest()[:12]


def test_an_sdxl_job_with_a_lora_writes_an_infotext_a_third_party_reader_parses(
        tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_VERBOSITY": "error", "DIFFUSERS_VERBOSITY": "error"}
    done = subprocess.run([sys.executable, "-m", "tests.providers.local_diffusion.tiny_xl_lora",
                           str(tmp_path)], capture_output=True, text=True, timeout=300,
                          env=env, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["family"] == "sdxl"
    assert found["listed"] == [["tiny-xl", "checkpoint", "sdxl", True],
                               ["xl_grain", "lora", "sdxl", True],
                               ["xl_shiny", "embedding", "sdxl", True]]
    with_lora, at_zero, without = (pixels(base64.b64decode(found[k]["png"]))
                                   for k in ("lora_0.7", "lora_0", "none"))
    assert np.array_equal(at_zero, without) and not np.array_equal(with_lora, without)

    models = tmp_path / "stable-diffusion-webui" / "models"
    checkpoint = models / "Stable-diffusion" / "tiny-xl.safetensors"
    lora = models / "Lora" / "xl_grain.safetensors"
    embedding = tmp_path / "stable-diffusion-webui" / "embeddings" / "xl_shiny.safetensors"
    details = found["lora_0.7"]["details"]
    request = GenerationRequest(prompt=PROMPT, width=64, height=64, steps=2, seed=11,
                                guidance=5.0)
    image = GeneratedImage(data=base64.b64decode(found["lora_0.7"]["png"]), format="png",
                           width=64, height=64, provider="local", model="tiny-xl", seed=11,
                           details=details)
    outcome = JobOutcome(images=(image,), attempts=(), provider="local", request=request)
    [saved] = ImageSaver(tmp_path / "gallery", tmp_path / "thumbs").write_files(
        Job(id=1, request=request), outcome, lambda _path: None)

    model_hash = hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:10]
    info = ParserManager().parse(saved.path)  # sd-parsers, from PyPI
    assert info is not None and info.generator.value == "AUTOMATIC1111"
    [sampler] = info.samplers
    assert sampler.model is not None
    assert (sampler.model.name, sampler.model.hash) == ("tiny-xl", model_hash)
    # the prompt keeps the tag, as A1111's does: the LoRA and its weight read back from it
    assert [p.value for p in sampler.prompts] == [PROMPT]
    # sd-parsers 0.6 splits every value at its commas and colons, so it cannot read a
    # quoted "Lora hashes" (A1111 writes it quoted); A1111's own pattern reads it
    text = info.raw_parameters["parameters"]
    fields = {k: v.strip('"') for k, v in A1111_PARAM.findall(text.splitlines()[-1])}
    assert fields["Lora hashes"] == f"xl_grain: {addnet_hash(lora)}"
    assert fields["TI hashes"] == \
        f"xl_shiny: {hashlib.sha256(embedding.read_bytes()).hexdigest()[:12]}"
    assert fields["Model hash"] == model_hash and fields["Model"] == "tiny-xl"
