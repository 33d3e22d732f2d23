"""Finding a prompt's LoRAs and embeddings in the model library, with the hashes A1111
writes for them (GUI side, no torch; files written by hand)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import struct
from pathlib import Path

import pytest

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider
from desktop_app.providers.local_diffusion.network_files import job_networks, network_index
from tests.providers.local_diffusion.support import LORA_KEYS, SDXL_KEYS, write_safetensors

XL_LORA_KEYS = {"lora_unet_input_blocks_4_1_proj_in.lora_down.weight": [1],
                "lora_unet_input_blocks_4_1_proj_in.lora_up.weight": [1]}


def with_metadata(path: Path, keys: dict[str, list[int]], metadata: dict[str, str]) -> Path:
    header: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for key, shape in keys.items():
        header[key] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4]}
        offset += 4
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(range(offset)))
    return path


def a1111_tree(root: Path) -> dict[str, Path]:
    models = root / "stable-diffusion-webui" / "models"
    for folder in (models / "Lora", models / "Stable-diffusion", models.parent / "embeddings"):
        folder.mkdir(parents=True)
    return {
        "add_detail": write_safetensors(models / "Lora" / "add_detail.safetensors", LORA_KEYS),
        "xl_more_art": with_metadata(models / "Lora" / "xl_more_art.safetensors", XL_LORA_KEYS,
                                     {"sshs_model_hash": "ABCDEF0123456789" * 4}),
        "easynegative": write_safetensors(models.parent / "embeddings" /
                                          "easynegative.safetensors", {"emb_params": [2, 4]}),
        "xl_emb": write_safetensors(models.parent / "embeddings" / "xl_emb.safetensors",
                                    {"clip_l": [1, 4], "clip_g": [1, 4]}),
        "pony": write_safetensors(models / "Stable-diffusion" / "pony.safetensors", SDXL_KEYS),
    }


def addnet(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha256(data[8 + int.from_bytes(data[:8], "little"):]).hexdigest()[:12]


def test_loras_and_embeddings_resolve_with_a1111_hashes(tmp_path: Path) -> None:
    files = a1111_tree(tmp_path)
    index = network_index(tmp_path / "profile", [files["pony"].parents[1]], tmp_path / "hf")
    request = GenerationRequest(prompt="a cat <lora:add_detail:0.5:0.25>, EasyNegative",
                                negative_prompt="xl_emb")
    found = job_networks(request, index, tmp_path / "profile", "sd1")
    [lora] = found.loras
    assert (lora.name, lora.path, lora.weight, lora.unet) == (
        "add_detail", files["add_detail"], 0.5, 0.25)
    assert lora.short_hash == addnet(files["add_detail"])
    assert lora.short_hash != hashlib.sha256(files["add_detail"].read_bytes()).hexdigest()[:12]
    # the SDXL embedding is skipped on an SD 1.x model, as A1111 skips it
    [embedding] = found.embeddings
    assert embedding.path == files["easynegative"]
    assert embedding.short_hash == \
        hashlib.sha256(files["easynegative"].read_bytes()).hexdigest()[:12]
    assert found.prompt == "a cat , easynegative"  # the tag out, the word as its token
    assert found.details() == {"loras": "add_detail:0.5",
                               "lora_hashes": f"add_detail: {lora.short_hash}",
                               "ti_hashes": f"easynegative: {embedding.short_hash}"}


def test_a_trainers_stored_hash_is_written_as_a1111_does(tmp_path: Path) -> None:
    files = a1111_tree(tmp_path)
    index = network_index(tmp_path / "profile", [files["pony"].parents[1]], tmp_path / "hf")
    found = job_networks(GenerationRequest(prompt="a cat <lora:xl_more_art>, xl_emb"), index,
                         tmp_path / "profile", "sdxl")
    assert found.details() == {
        "loras": "xl_more_art:1", "lora_hashes": "xl_more_art: abcdef012345",
        "ti_hashes": f"xl_emb: {hashlib.sha256(files['xl_emb'].read_bytes()).hexdigest()[:12]}"}


def test_a_lora_of_the_other_family_is_refused_before_queueing(tmp_path: Path) -> None:
    files = a1111_tree(tmp_path)
    provider = LocalDiffusionProvider(LocalDiffusionConfig(
        data_dir=tmp_path / "profile", model=str(files["pony"]),
        model_folders=(files["pony"].parents[1],)))
    with pytest.raises(InvalidRequest) as caught:
        asyncio.run(provider.check_before_queue(
            GenerationRequest(prompt="a cat <lora:add_detail:0.5>")))
    assert caught.value.message == (
        "The LoRA 'add_detail' is made for SD 1.x models and this job's model is SDXL: use "
        "an SDXL LoRA or another model.")
    asyncio.run(provider.check_before_queue(GenerationRequest(prompt="<lora:xl_more_art>")))


def test_a_lora_not_installed_names_itself_and_every_folder_looked_in(tmp_path: Path) -> None:
    files = a1111_tree(tmp_path)
    index = network_index(tmp_path / "profile", [files["pony"].parents[1]], tmp_path / "hf")
    with pytest.raises(InvalidRequest) as caught:
        job_networks(GenerationRequest(prompt="<lora:detail_tweaker>"), index,
                     tmp_path / "profile")
    message = caught.value.message
    assert message.startswith("The LoRA 'detail_tweaker' is not installed: ImageDesk looked "
                              "for detail_tweaker.safetensors in ")
    for folder in (tmp_path / "profile", files["pony"].parents[1],
                   files["easynegative"].parent):
        assert str(folder) in message
