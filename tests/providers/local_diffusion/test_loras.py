"""LoRAs and embeddings written in the prompt, applied by the GPU worker on the tiny
model (issue 14, item 4). The LoRA and embedding files are made at test time in a
folder laid out like Automatic1111's (``tiny_networks.py``, a child process, which also
has diffusers make the reference pixels directly)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.image_work import ImageToImage
from desktop_app.providers.base import CancelToken
from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider
from tests.providers.local_diffusion.image_inputs import gradient_png, pixels, store
from tests.providers.local_diffusion.support import Recorder, request, write_safetensors
from tests.providers.local_diffusion.tiny_networks import EMBEDDING_PROMPT

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def networks(local_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, dict[str, bytes]]:
    """(the A1111 ``models`` folder holding the LoRAs, diffusers' own pixels as PNGs)."""
    out = tmp_path_factory.mktemp("networks")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRANSFORMERS_VERBOSITY": "error",
           "HF_HUB_OFFLINE": "1", "DIFFUSERS_VERBOSITY": "error"}
    done = subprocess.run([sys.executable, "-m", "tests.providers.local_diffusion.tiny_networks",
                           str(out), str(local_data_dir)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return out / "A1111" / "models", {k: base64.b64decode(v) for k, v in found.items()}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def provider(local_data_dir: Path, networks: tuple[Path, dict[str, bytes]]
                   ) -> AsyncIterator[LocalDiffusionProvider]:
    provider = LocalDiffusionProvider(LocalDiffusionConfig(
        data_dir=local_data_dir, torch_threads=2, preview_every=0,
        model_folders=(networks[0],)))
    yield provider
    await provider.close()


async def image(provider: LocalDiffusionProvider, prompt: str, **fields: object
                ) -> tuple[np.ndarray, Mapping[str, str]]:
    [made] = await provider.generate(request(prompt=prompt, **fields), Recorder(),
                                     CancelToken())
    return pixels(made.data), made.details


def addnet_hash(path: Path) -> str:
    """kohya's hash as A1111's Lora extension writes it: SHA-256 after the header."""
    data = path.read_bytes()
    return hashlib.sha256(data[8 + int.from_bytes(data[:8], "little"):]).hexdigest()[:12]


async def test_weight_zero_is_the_base_model_and_weight_one_is_not(
        provider: LocalDiffusionProvider, networks: tuple[Path, dict[str, bytes]]) -> None:
    base, details = await image(provider, "a lighthouse at dusk")
    assert np.array_equal(base, pixels(networks[1]["base"]))  # diffusers' own pixels
    assert "lora_hashes" not in details
    zero, _ = await image(provider, "a lighthouse at dusk <lora:grain:0>")
    one, details = await image(provider, "a lighthouse at dusk <lora:grain:1>")
    assert np.array_equal(zero, base)
    assert not np.array_equal(one, base)
    grain = networks[0] / "Lora" / "grain.safetensors"
    assert details["lora_hashes"] == f"grain: {addnet_hash(grain)}"
    # the next job without a LoRA gets exactly the base model again
    again, _ = await image(provider, "a lighthouse at dusk")
    assert np.array_equal(again, base)


async def test_a_lora_gives_the_pixels_diffusers_gives_with_it(
        provider: LocalDiffusionProvider, networks: tuple[Path, dict[str, bytes]]) -> None:
    moody, details = await image(provider, "a lighthouse at dusk <lora:moody:0.7>")
    assert np.array_equal(moody, pixels(networks[1]["moody_0.7"]))
    moody_file = networks[0] / "Lora" / "styles" / "moody.safetensors"
    assert details["lora_hashes"] == f"moody: {addnet_hash(moody_file)}"


async def test_two_loras_at_once_and_the_text_encoder_part_counts(
        provider: LocalDiffusionProvider) -> None:
    grain, _ = await image(provider, "a lighthouse at dusk <lora:grain:0.8>")
    moody, _ = await image(provider, "a lighthouse at dusk <lora:moody:0.7>")
    both, details = await image(provider, "a lighthouse at dusk <lora:grain:0.8> "
                                          "<lora:moody:0.7>")
    assert not np.array_equal(both, grain) and not np.array_equal(both, moody)
    assert [p.split(":")[0] for p in details["lora_hashes"].split(", ")] == ["grain", "moody"]
    # A1111's text-encoder and UNet weights apart: each part alone changes the image
    text_only, details = await image(provider, "a lighthouse at dusk <lora:grain:0.8:0>")
    unet_only, _ = await image(provider, "a lighthouse at dusk <lora:grain:0:0.8>")
    plain, _ = await image(provider, "a lighthouse at dusk")
    assert len({arr.tobytes() for arr in (text_only, unet_only, plain, grain)}) == 4
    assert details["lora_hashes"].startswith("grain: ")


async def test_an_embedding_named_in_the_prompt_is_applied_and_recorded(
        provider: LocalDiffusionProvider, networks: tuple[Path, dict[str, bytes]]) -> None:
    used, details = await image(provider, EMBEDDING_PROMPT.replace("shinystyle", "ShinyStyle"))
    assert np.array_equal(used, pixels(networks[1]["embedding"]))
    assert not np.array_equal(used, pixels(networks[1]["embedding_plain"]))
    file = networks[0].parent / "embeddings" / "shinystyle.safetensors"
    assert details["ti_hashes"] == \
        f"shinystyle: {hashlib.sha256(file.read_bytes()).hexdigest()[:12]}"
    # unloaded after the job: the base model's pixels again
    base, _ = await image(provider, "a lighthouse at dusk")
    assert np.array_equal(base, pixels(networks[1]["base"]))


async def test_a_lora_applies_to_image_to_image_too(
        provider: LocalDiffusionProvider, local_data_dir: Path) -> None:
    source = store(local_data_dir, gradient_png(64, 64))
    work = ImageToImage(source, 0.6)
    plain, _ = await image(provider, "a lighthouse at dusk", work=work)
    with_lora, details = await image(provider, "a lighthouse at dusk <lora:moody:1>", work=work)
    assert not np.array_equal(plain, with_lora)
    assert details["lora_hashes"].startswith("moody: ")
    again, _ = await image(provider, "a lighthouse at dusk", work=work)
    assert np.array_equal(again, plain)


async def test_a_lora_not_installed_is_refused_by_name_with_the_folders_searched(
        provider: LocalDiffusionProvider, networks: tuple[Path, dict[str, bytes]]) -> None:
    job = request(prompt="a lighthouse <lora:no_such_lora:0.8>")
    with pytest.raises(InvalidRequest) as before_queue:
        await provider.check_before_queue(job)
    with pytest.raises(InvalidRequest) as running:
        await provider.generate(job, Recorder(), CancelToken())
    for caught in (before_queue, running):
        assert "'no_such_lora' is not installed" in caught.value.message
        assert str(networks[0]) in caught.value.message
    await provider.check_before_queue(request(prompt="a lighthouse <lora:grain:0.8>"))


async def test_a_lora_that_does_not_fit_the_model_fails_the_job_clearly_and_nothing_sticks(
        provider: LocalDiffusionProvider, networks: tuple[Path, dict[str, bytes]]) -> None:
    layer = "lora_te_text_model_encoder_layers_99_self_attn_q_proj"  # the tiny CLIP has 5
    write_safetensors(networks[0] / "Lora" / "wrong_model.safetensors",
                      {f"{layer}.lora_down.weight": [4, 32], f"{layer}.lora_up.weight": [32, 4]})
    with pytest.raises(InvalidRequest) as caught:
        await image(provider, "a lighthouse at dusk <lora:grain:1> <lora:wrong_model:1>")
    assert caught.value.message.startswith("The LoRA wrong_model (wrong_model.safetensors) "
                                           "does not fit this model")
    base, _ = await image(provider, "a lighthouse at dusk")
    assert np.array_equal(base, pixels(networks[1]["base"]))
