"""The local provider's pure parts: error mapping, config, skeletons, hashes (no worker)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app.data_files import resource_path
from desktop_app.domain.errors import (
    Cancelled,
    DeviceFault,
    OutOfMemory,
    Transient,
)
from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider
from desktop_app.providers.local_diffusion.config import Architecture, model_label
from desktop_app.providers.local_diffusion.failures import (
    JobCancelled,
    WorkerProblem,
    classify,
    to_error,
    worker_died,
)
from desktop_app.providers.local_diffusion.gpu_worker.loading import (
    SD15_SKELETON,
    SDXL_SKELETON_FILES,
    SKELETONS,
    check_skeleton,
    single_file_architecture,
)
from desktop_app.providers.local_diffusion.hashing import model_hash
from tests.providers.local_diffusion.support import (
    FLUX_KEYS,
    SD1_KEYS,
    SDXL_KEYS,
    write_safetensors,
)


class OutOfMemoryError(RuntimeError):
    """Named like torch's, which is what the worker sees on CUDA."""


def test_cuda_out_of_memory_becomes_out_of_memory_with_advice() -> None:
    kind, message = classify(OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert isinstance(to_error(kind, message), OutOfMemory)
    assert "attention slicing" in message


def test_device_side_assert_becomes_device_fault() -> None:
    exc = RuntimeError("CUDA error: device-side assert triggered\nCompile with TORCH_USE_CUDA_DSA")
    kind, message = classify(exc)
    assert isinstance(to_error(kind, message), DeviceFault)
    assert "restarted" in message


def test_illegal_memory_access_found_in_the_cause_chain() -> None:
    try:
        try:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        except RuntimeError as inner:
            raise ValueError("decode failed") from inner
    except ValueError as outer:
        assert classify(outer)[0] == "DeviceFault"


def test_cpu_build_asked_for_cuda_says_what_to_install() -> None:
    kind, message = classify(AssertionError("Torch not compiled with CUDA enabled"))
    assert kind == "Misconfigured"
    assert "pip install" in message


def test_missing_library_says_what_to_install() -> None:
    kind, message = classify(ModuleNotFoundError("No module named 'diffusers'"))
    assert kind == "Misconfigured"
    assert "imagedesk[local]" in message


def test_cancel_and_unknown_failures_map_to_cancelled_and_transient() -> None:
    assert isinstance(to_error(*classify(JobCancelled())), Cancelled)
    assert isinstance(to_error(*classify(KeyError("x"))), Transient)
    assert classify(WorkerProblem("Misconfigured", "fix it")) == ("Misconfigured", "fix it")


def test_worker_death_is_transient_and_names_the_exit_code() -> None:
    error = worker_died(-9)
    assert isinstance(error, Transient)
    assert error.message == ("the local GPU worker stopped unexpectedly (exit code -9); "
                             "it will restart for the next job")


def test_config_rejects_unknown_scheduler_and_device(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dpmpp_2m"):
        LocalDiffusionConfig(data_dir=tmp_path, scheduler="lms")
    with pytest.raises(ValueError, match="cuda"):
        LocalDiffusionConfig(data_dir=tmp_path, device="tpu")


def test_builtin_model_is_labelled_as_a_test_model() -> None:
    assert model_label("builtin:tiny") == "Built-in test model (random weights)"
    assert model_label("/models/dreamshaper_8.safetensors") == "dreamshaper_8.safetensors"


async def test_health_before_the_first_job_does_not_start_the_worker(tmp_path: Path) -> None:
    provider = LocalDiffusionProvider(LocalDiffusionConfig(data_dir=tmp_path))
    health = await provider.health()
    assert health.ready
    assert health.details["worker"] == "not started"
    assert provider.worker_pid is None
    assert "torch" not in sys.modules


def test_size_bounds_follow_the_architecture(tmp_path: Path) -> None:
    tiny = LocalDiffusionProvider(LocalDiffusionConfig(data_dir=tmp_path)).capabilities()
    xl = LocalDiffusionProvider(LocalDiffusionConfig(
        data_dir=tmp_path, model="stabilityai/sdxl-turbo")).capabilities()
    assert tiny.sizes.accepts(64, 64) and not tiny.sizes.accepts(2048, 2048)
    assert xl.sizes.accepts(2048, 1024) and not xl.sizes.accepts(256, 256)
    assert not tiny.sizes.accepts(100, 64)
    assert Architecture.SDXL.side_bounds == (512, 2048)


def test_bundled_sd15_skeleton_is_complete() -> None:
    check_skeleton(SD15_SKELETON)


def test_incomplete_skeleton_is_misconfigured_naming_the_missing_files(tmp_path: Path) -> None:
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "config.json").write_text("{}")
    with pytest.raises(WorkerProblem) as caught:
        check_skeleton(tmp_path)
    assert caught.value.kind == "Misconfigured"
    assert "tokenizer/vocab.json" in caught.value.message
    assert "bundled model configuration" in caught.value.message
    assert "unet/config.json" not in caught.value.message


def test_single_file_architecture_is_read_from_tensor_names(tmp_path: Path) -> None:
    sd1 = write_safetensors(tmp_path / "a.safetensors", SD1_KEYS)
    xl = write_safetensors(tmp_path / "b.safetensors", SDXL_KEYS)
    assert single_file_architecture(sd1) is Architecture.SD1
    assert single_file_architecture(xl) is Architecture.SDXL


def test_the_worker_refuses_a_flux_file_as_not_supported_yet(tmp_path: Path) -> None:
    flux = write_safetensors(tmp_path / "flux1-dev.safetensors", FLUX_KEYS)
    with pytest.raises(WorkerProblem) as caught:
        single_file_architecture(flux)
    assert caught.value.kind == "Misconfigured"
    assert "Flux checkpoints are not supported yet" in caught.value.message


def test_bundled_sdxl_skeleton_is_complete_and_small() -> None:
    check_skeleton(SKELETONS / "sdxl", SDXL_SKELETON_FILES)
    files = [p for p in (SKELETONS / "sdxl").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 20_000  # configs only: no weights


def test_unreadable_checkpoint_is_misconfigured(tmp_path: Path) -> None:
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(WorkerProblem) as caught:
        single_file_architecture(bad)
    assert caught.value.kind == "Misconfigured"
    assert "cannot be read as a .safetensors checkpoint" in caught.value.message


def test_file_hash_is_automatic1111s_short_sha256(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"weights" * 1000)
    expected = hashlib.sha256(weights.read_bytes()).hexdigest()[:10]
    assert model_hash(weights, tmp_path / "cache.json") == expected
    assert model_hash(weights, tmp_path / "cache.json") == expected  # from the cache


def test_folder_hash_changes_when_a_weight_file_changes(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "w.bin").write_bytes(b"a" * 100)
    first = model_hash(folder, tmp_path / "cache.json")
    (folder / "unet" / "w.bin").write_bytes(b"b" * 101)
    assert model_hash(folder, tmp_path / "cache.json") != first


def test_hugging_face_blob_names_are_used_without_reading_the_file(tmp_path: Path) -> None:
    blob_name = "ab" * 32
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    (blobs / blob_name).write_bytes(b"x")
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    (snapshot / "w.safetensors").symlink_to(blobs / blob_name)
    (snapshot / "config.json").write_text("{}")  # a plain file: read and cached
    cache = tmp_path / "cache.json"
    model_hash(snapshot, cache)
    # the blob was not read and cached: its name is its hash
    assert str((blobs / blob_name).resolve()) not in cache.read_text()
    assert str((snapshot / "config.json").resolve()) in cache.read_text()


@pytest.mark.slow
def test_bundled_sd15_tokenizer_matches_clip_token_ids() -> None:
    """The SD 1.5 skeleton's tokenizer gives CLIP ViT-L/14's ids (checked in a subprocess:
    transformers must stay out of the test process)."""
    skeleton = resource_path("model_skeletons", "sd15", "tokenizer")
    code = ("import sys; from transformers import CLIPTokenizer; "
            f"t = CLIPTokenizer.from_pretrained({str(skeleton)!r}); "
            "print(len(t), t('a photo of a cat').input_ids)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == "49408 [49406, 320, 1125, 539, 320, 2368, 49407]"
