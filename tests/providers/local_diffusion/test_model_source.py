"""Checking a local model source before queueing or loading (issues 11.4, 12.12):
what is missing is said at once, a file is never called a folder, and untrusted
checkpoint headers end in a message, never a crash or a hang."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_app.domain.errors import Misconfigured
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import CancelToken, ConnectionOutcome, HealthState
from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider
from desktop_app.providers.local_diffusion.model_source import check_model_source
from tests.providers.local_diffusion.support import SD1_KEYS, write_safetensors


def diffusers_folder(root: Path, *, unet_weights: bool = True) -> Path:
    root.mkdir()
    index = {"_class_name": "StableDiffusionPipeline",
             "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"], "scheduler": ["diffusers", "DDIMScheduler"],
             "safety_checker": [None, None]}
    (root / "model_index.json").write_text(json.dumps(index))
    for part in ("unet", "vae", "scheduler"):
        (root / part).mkdir()
        (root / part / "config.json").write_text("{}")
    if unet_weights:
        write_safetensors(root / "unet" / "diffusion_pytorch_model.safetensors", ["w"])
    write_safetensors(root / "vae" / "diffusion_pytorch_model.safetensors", ["w"])
    return root


def test_builtin_and_a_complete_folder_and_checkpoint_pass(tmp_path: Path) -> None:
    assert check_model_source("builtin:tiny") is None
    assert check_model_source(str(diffusers_folder(tmp_path / "model"))) is None
    checkpoint = write_safetensors(tmp_path / "m.safetensors", SD1_KEYS)
    assert check_model_source(str(checkpoint)) is None


def test_a_missing_folder_or_file_is_named_with_what_to_do(tmp_path: Path) -> None:
    folder = check_model_source(str(tmp_path / "nowhere"))
    assert folder is not None and "folder" in folder and "does not exist" in folder
    assert "Settings → Local" in folder
    file = check_model_source(str(tmp_path / "gone.safetensors"))
    assert file is not None and "model file" in file and "does not exist" in file


def test_a_plain_file_is_called_a_file_not_a_model_folder(tmp_path: Path) -> None:
    notes = tmp_path / "model.ckpt.txt"
    notes.write_text("hello")
    problem = check_model_source(str(notes))
    assert problem is not None and "is a file, not a diffusers folder" in problem
    assert "model folder" not in problem


def test_an_incomplete_folder_or_truncated_checkpoint_is_refused(tmp_path: Path) -> None:
    problem = check_model_source(str(diffusers_folder(tmp_path / "m", unet_weights=False)))
    assert problem is not None and "incomplete" in problem and "unet/ weights" in problem
    ckpt = write_safetensors(tmp_path / "t.safetensors", ["a", "b", "c"])
    ckpt.write_bytes(ckpt.read_bytes()[:-5])
    problem = check_model_source(str(ckpt))
    assert problem is not None and "incomplete" in problem


def test_a_hub_id_not_in_the_cache_is_refused_only_when_downloads_are_off(
        tmp_path: Path) -> None:
    problem = check_model_source("someone/some-model", hf_cache_dir=tmp_path)
    assert problem is not None and "Hugging Face cache" in problem
    assert check_model_source("someone/some-model", hf_cache_dir=tmp_path,
                              allow_download=True) is None
    snapshot = tmp_path / "models--someone--some-model" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text("{}")
    assert check_model_source("someone/some-model", hf_cache_dir=tmp_path) is None


@settings(deadline=500, max_examples=200)
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=2**64 - 1))
def test_any_checkpoint_bytes_end_in_a_verdict(tmp_path_factory: pytest.TempPathFactory,
                                               body: bytes, length: int) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "x.safetensors"
    path.write_bytes(struct.pack("<Q", length) + body)
    verdict = check_model_source(str(path))
    assert verdict is None or isinstance(verdict, str)


async def test_connection_test_fails_for_a_missing_model_without_starting_a_worker(
        tmp_path: Path) -> None:
    provider = LocalDiffusionProvider(LocalDiffusionConfig(
        data_dir=tmp_path, model=str(tmp_path / "missing-model")))
    report = await provider.test_connection()
    assert report.outcome is ConnectionOutcome.MODEL_UNAVAILABLE
    assert "does not exist" in report.message
    assert provider.spawn_count == 0
    await provider.close()


@pytest.mark.parametrize("missing", ["gone/model.safetensors", "gone-folder"])
async def test_a_job_for_a_missing_model_fails_misconfigured_without_starting_a_worker(
        tmp_path: Path, missing: str) -> None:
    provider = LocalDiffusionProvider(LocalDiffusionConfig(
        data_dir=tmp_path, model=str(tmp_path / missing)))
    try:
        with pytest.raises(Misconfigured, match="does not exist") as refused:
            await provider.generate(GenerationRequest("a cat", width=64, height=64, steps=1),
                                    lambda _progress: None, CancelToken())
        assert str(tmp_path / missing) in refused.value.message
        assert "Settings → Local" in refused.value.message
        assert provider.spawn_count == 0
        health = await provider.health()  # the status bar says so from now on
        assert health.state is HealthState.NOT_CONFIGURED
        assert health.message == refused.value.message
    finally:
        await provider.close()


@pytest.mark.slow
async def test_connection_test_can_load_the_model_and_run_one_step(tmp_path: Path) -> None:
    provider = LocalDiffusionProvider(LocalDiffusionConfig(data_dir=tmp_path, torch_threads=1))
    try:
        quick = await provider.test_connection()
        assert quick.passed and provider.spawn_count == 0
        report = await provider.test_connection(run_one_step=True)
    finally:
        await provider.close()
    assert report.passed, report.message
    assert "ran one step at 64 px" in report.message


@pytest.mark.slow
@pytest.mark.parametrize("command", ["queue add", "generate"])
def test_the_cli_refuses_a_missing_model_path_at_once_and_queues_nothing(
        tmp_path: Path, command: str) -> None:
    from tests.test_cli import job_count, run

    missing = tmp_path / "no-such-model"
    result = run(tmp_path / "home", *command.split(), "a cat", "--model", str(missing))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (f"imagedesk: The model folder {missing} does not exist; "
                                     "choose a model that exists in Settings → Local "
                                     "(or --model).")
    assert job_count(tmp_path / "home") == 0
    a_file = tmp_path / "weights.txt"
    a_file.write_text("x")
    result = run(tmp_path / "home", *command.split(), "a cat", "--model", str(a_file))
    assert result.returncode == 2 and "is a file, not a diffusers folder" in result.stderr
