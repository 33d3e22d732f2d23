"""A single checkpoint's family is told from its tensor names, reading only the header
(issue 14.1): SD 1.x and SDXL load; the others are refused at once, saying what the
file is and that its family is not supported yet."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_app.providers.local_diffusion.config import Architecture
from desktop_app.providers.local_diffusion.families import (
    HeaderError,
    family_of,
    read_header,
    unsupported_reason,
)
from desktop_app.providers.local_diffusion.model_source import check_model_source
from tests.providers.local_diffusion.support import (
    FLUX_KEYS,
    LORA_KEYS,
    SD1_KEYS,
    SD2_KEYS,
    SD3_KEYS,
    SDXL_KEYS,
    SDXL_REFINER_KEYS,
    write_safetensors,
)

FAMILIES = [(SD1_KEYS, Architecture.SD1), (SD2_KEYS, Architecture.SD2),
            (SDXL_KEYS, Architecture.SDXL), (SDXL_REFINER_KEYS, Architecture.SDXL_REFINER),
            (SD3_KEYS, Architecture.SD3), (FLUX_KEYS, Architecture.FLUX)]


@pytest.mark.parametrize(("keys", "family"), FAMILIES, ids=[f.value for _, f in FAMILIES])
def test_each_family_is_told_from_its_tensor_names(
        tmp_path: Path, keys: dict[str, list[int]], family: Architecture) -> None:
    header = read_header(write_safetensors(tmp_path / "m.safetensors", keys))
    assert family_of(header) is family


def test_sd1_and_sd2_unets_are_told_apart_by_their_cross_attention_width(
        tmp_path: Path) -> None:
    to_k = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
    assert family_of({to_k: {"shape": [320, 768]}}) is Architecture.SD1
    assert family_of({to_k: {"shape": [320, 1024]}}) is Architecture.SD2


@pytest.mark.parametrize(("keys", "words"), [
    (SD2_KEYS, "Stable Diffusion 2.x single files are not supported yet"),
    (SDXL_REFINER_KEYS, "SDXL refiner checkpoints are not supported yet"),
    (SD3_KEYS, "Stable Diffusion 3 checkpoints are not supported yet"),
    (FLUX_KEYS, "Flux checkpoints are not supported yet"),
    (LORA_KEYS, "it is a LoRA"),
], ids=["sd2", "refiner", "sd3", "flux", "lora"])
def test_unsupported_files_are_refused_before_any_worker_naming_the_family(
        tmp_path: Path, keys: dict[str, list[int]], words: str) -> None:
    path = write_safetensors(tmp_path / "model.safetensors", keys)
    problem = check_model_source(str(path))
    assert problem is not None and words in problem
    assert problem.startswith("The model file model.safetensors cannot be used")
    assert "Settings → Local" in problem


@pytest.mark.parametrize("keys", [SD1_KEYS, SDXL_KEYS], ids=["sd1", "sdxl"])
def test_sd1_and_sdxl_checkpoints_pass_the_check(tmp_path: Path,
                                                 keys: dict[str, list[int]]) -> None:
    path = write_safetensors(tmp_path / "model.safetensors", keys)
    assert unsupported_reason(read_header(path)) is None
    assert check_model_source(str(path)) is None


def test_an_inpainting_checkpoint_is_not_taken_for_a_text_to_image_one(tmp_path: Path) -> None:
    keys = {**SD1_KEYS, "model.diffusion_model.input_blocks.0.0.weight": [1, 9, 1, 1]}
    problem = check_model_source(str(write_safetensors(tmp_path / "i.safetensors", keys)))
    assert problem is not None and "inpainting checkpoints are not supported yet" in problem


def test_a_unet_without_its_vae_is_called_what_it_is(tmp_path: Path) -> None:
    keys = {k: v for k, v in SDXL_KEYS.items() if not k.startswith("first_stage_model.")}
    problem = check_model_source(str(write_safetensors(tmp_path / "u.safetensors", keys)))
    assert problem is not None and "without its VAE" in problem


def test_only_the_header_is_read(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", SDXL_KEYS)
    with path.open("ab") as handle:  # weights nobody reads: a corrupt tail changes nothing
        handle.write(b"\xff" * 4096)
    assert family_of(read_header(path)) is Architecture.SDXL


@pytest.mark.parametrize(("raw", "why"), [
    (b"abc", "too short"),
    (struct.pack("<Q", 2**40) + b"{}", "implausible"),
    (struct.pack("<Q", 100) + b"{}", "ends inside its header"),
    (struct.pack("<Q", 4) + b"[1] ", "not a table"),
    (struct.pack("<Q", 4) + b"{{{{", "not JSON"),
])
def test_a_broken_header_is_a_header_error_saying_why(tmp_path: Path, raw: bytes,
                                                       why: str) -> None:
    path = tmp_path / "x.safetensors"
    path.write_bytes(raw)
    with pytest.raises(HeaderError, match=why):
        read_header(path)


@settings(deadline=500, max_examples=200)
@given(st.dictionaries(st.text(max_size=80), st.one_of(
    st.none(), st.integers(), st.text(max_size=5),
    st.fixed_dictionaries({"shape": st.lists(st.one_of(st.integers(), st.text(max_size=3)),
                                             max_size=4)}))))
def test_any_header_table_ends_in_a_family_and_a_verdict(header: dict[str, object]) -> None:
    assert isinstance(family_of(header), Architecture)
    verdict = unsupported_reason(header)
    assert verdict is None or isinstance(verdict, str)


@settings(deadline=500, max_examples=100)
@given(st.dictionaries(st.sampled_from(sorted({*SD1_KEYS, *SDXL_KEYS, *FLUX_KEYS})),
                       st.just({"dtype": "F32", "shape": [1], "data_offsets": "x"})))
def test_malformed_offsets_are_refused_not_crashed_on(tmp_path_factory: pytest.TempPathFactory,
                                                      header: dict[str, object]) -> None:
    raw = json.dumps(header).encode()
    path = tmp_path_factory.mktemp("h") / "x.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    verdict = check_model_source(str(path))
    assert verdict is None or isinstance(verdict, str)
    if header:
        assert verdict is not None


@pytest.mark.slow
def test_the_cli_refuses_a_flux_file_at_once_naming_it_and_queues_nothing(
        tmp_path: Path) -> None:
    from tests.test_cli import job_count, run

    flux = write_safetensors(tmp_path / "flux1-dev.safetensors", FLUX_KEYS)
    result = run(tmp_path / "home", "queue", "add", "a cat", "--model", str(flux))
    assert result.returncode == 2, result.stderr
    assert "Flux checkpoints are not supported yet" in result.stderr
    assert job_count(tmp_path / "home") == 0
