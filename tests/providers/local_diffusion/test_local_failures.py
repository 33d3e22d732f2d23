"""Worker crashes, idle shutdown and misconfiguration, as the engine and user see them."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from desktop_app.domain.errors import Misconfigured, Transient
from desktop_app.providers.base import CancelToken, HealthState, Phase, Progress
from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider
from tests.providers.local_diffusion.support import (
    SD1_KEYS,
    SD3_KEYS,
    SDXL_KEYS,
    Recorder,
    request,
    write_safetensors,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


async def test_killed_worker_gives_transient_and_the_next_job_gets_a_fresh_worker(
        tiny_provider: LocalDiffusionProvider) -> None:
    await tiny_provider.generate(request(), Recorder(), CancelToken())
    pid = tiny_provider.worker_pid
    assert pid is not None

    def on_progress(event: Progress) -> None:
        if event.phase is Phase.GENERATING and event.step == 2:
            os.kill(pid, signal.SIGKILL)

    with pytest.raises(Transient) as caught:
        await tiny_provider.generate(request(width=256, height=256, steps=150), on_progress,
                                     CancelToken())
    assert caught.value.message == (
        "the local GPU worker stopped unexpectedly (exit code -9); "
        "it will restart for the next job")
    images = await tiny_provider.generate(request(), Recorder(), CancelToken())
    assert len(images) == 1
    assert tiny_provider.worker_pid not in (None, pid)


async def test_missing_model_file_is_misconfigured_with_the_fix(
        tiny_provider: LocalDiffusionProvider, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "dreamshaper_8.safetensors"
    with pytest.raises(Misconfigured) as caught:
        await tiny_provider.generate(request(model=str(missing)), Recorder(), CancelToken())
    assert str(missing) in caught.value.message
    assert "Settings → Local" in caught.value.message


async def test_missing_model_folder_is_misconfigured(
        tiny_provider: LocalDiffusionProvider, tmp_path: Path) -> None:
    with pytest.raises(Misconfigured, match="does not exist"):
        await tiny_provider.generate(request(model=str(tmp_path / "no-such-folder")),
                                     Recorder(), CancelToken())


async def test_uncached_hub_model_offline_is_misconfigured_with_the_exact_fix(
        tiny_provider: LocalDiffusionProvider) -> None:
    with pytest.raises(Misconfigured) as caught:
        await tiny_provider.generate(request(model="imagedesk-tests/not-a-real-model"),
                                     Recorder(), CancelToken())
    assert caught.value.message == (
        "model imagedesk-tests/not-a-real-model is not in your Hugging Face cache; connect "
        "once to download it, or choose a local file in Settings → Local")


async def test_a_checkpoint_of_an_unsupported_family_is_misconfigured_naming_it(
        tiny_provider: LocalDiffusionProvider, tmp_path: Path) -> None:
    sd3 = write_safetensors(tmp_path / "sd3_medium.safetensors", SD3_KEYS)
    with pytest.raises(Misconfigured, match="Stable Diffusion 3 checkpoints are not "
                                            "supported yet"):
        await tiny_provider.generate(request(model=str(sd3)), Recorder(), CancelToken())


async def test_an_sdxl_checkpoint_missing_its_weights_is_misconfigured_not_a_crash(
        tiny_provider: LocalDiffusionProvider, tmp_path: Path) -> None:
    xl = write_safetensors(tmp_path / "sdxl.safetensors", SDXL_KEYS)  # names, no weights
    with pytest.raises(Misconfigured, match="sdxl.safetensors could not be loaded"):
        await tiny_provider.generate(request(model=str(xl)), Recorder(), CancelToken())


async def test_truncated_sd1_checkpoint_is_misconfigured_not_a_crash(
        tiny_provider: LocalDiffusionProvider, tmp_path: Path) -> None:
    partial = write_safetensors(tmp_path / "partial.safetensors", SD1_KEYS)
    with pytest.raises(Misconfigured, match="could not be loaded"):
        await tiny_provider.generate(request(model=str(partial)), Recorder(), CancelToken())
    images = await tiny_provider.generate(request(), Recorder(), CancelToken())
    assert len(images) == 1  # the worker and the tiny model are still fine


async def test_cuda_on_a_cpu_build_is_misconfigured_and_health_says_so(
        local_data_dir: Path) -> None:
    provider = LocalDiffusionProvider(LocalDiffusionConfig(data_dir=local_data_dir,
                                                           device="cuda"))
    try:
        with pytest.raises(Misconfigured) as caught:
            await provider.generate(request(), Recorder(), CancelToken())
        assert "CUDA" in caught.value.message and "install" in caught.value.message
        health = await provider.health()
        assert health.state is HealthState.NOT_CONFIGURED
        assert health.message == caught.value.message
    finally:
        await provider.close()


async def test_idle_worker_shuts_down_and_restarts_on_the_next_job(
        local_data_dir: Path) -> None:
    provider = LocalDiffusionProvider(LocalDiffusionConfig(data_dir=local_data_dir,
                                                           idle_shutdown_s=0.2))
    try:
        await provider.generate(request(), Recorder(), CancelToken())
        first = provider.worker_pid
        assert first is not None
        for _ in range(100):
            if provider.worker_pid is None and not _process_exists(first):
                break
            await asyncio.sleep(0.1)
        assert provider.worker_pid is None
        assert not _process_exists(first)  # exited and reaped
        images = await provider.generate(request(), Recorder(), CancelToken())
        assert len(images) == 1 and provider.spawn_count == 2
    finally:
        await provider.close()
    assert provider.worker_pid is None


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
