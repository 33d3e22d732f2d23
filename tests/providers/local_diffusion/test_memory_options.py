"""Memory options the worker really applies (issue 14.1): VAE tiling and slicing are
read back from the pipeline the worker built, and CPU offload, which needs CUDA, is
said to be ignored on the CPU rather than silently dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop_app.providers.base import CancelToken
from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider
from desktop_app.providers.local_diffusion.gpu_worker.device_choice import Device
from desktop_app.providers.local_diffusion.gpu_worker.loading import apply_memory_options
from desktop_app.providers.local_diffusion.messages import DeviceInfo, WorkerSettings
from tests.providers.local_diffusion.support import Recorder, request

CPU = Device("cpu", None, DeviceInfo("cpu", "CPU", None, "float32", "2"))
CUDA = Device("cuda", None, DeviceInfo("cuda", "RTX 4060", 8 * 2**30, "float16", "2"))


class Vae:
    def __init__(self) -> None:
        self.use_tiling = self.use_slicing = False

    def enable_tiling(self) -> None:
        self.use_tiling = True

    def enable_slicing(self) -> None:
        self.use_slicing = True


class Pipe:
    """The parts of a diffusers pipeline the memory step touches."""

    def __init__(self) -> None:
        self.vae = Vae()
        self.placed: list[str] = []

    def enable_attention_slicing(self) -> None:
        self.placed.append("attention slicing")

    def enable_model_cpu_offload(self) -> None:
        self.placed.append("offload")

    def to(self, device: str) -> None:
        self.placed.append(device)


def settings(tmp_path: Path, **options: bool) -> WorkerSettings:
    fields = {"attention_slicing": False, "vae_tiling": False, "cpu_offload": False,
              "vae_slicing": False, **options}
    return WorkerSettings(data_dir=tmp_path, device="auto", allow_cpu=True,
                          allow_download=False, hf_cache_dir=None, torch_threads=None,
                          **fields)


def test_cpu_offload_on_the_cpu_is_ignored_and_said_so(tmp_path: Path) -> None:
    pipe = Pipe()
    done = apply_memory_options(pipe, settings(tmp_path, cpu_offload=True), CPU)
    assert pipe.placed == ["cpu"] and "cpu offload" not in done.applied
    assert done.notes == ("CPU offload is ignored here: it moves idle parts of the model "
                          "from GPU memory to system memory, and this job runs on the CPU",)


def test_cpu_offload_on_cuda_replaces_moving_the_model_to_the_gpu(tmp_path: Path) -> None:
    pipe = Pipe()
    done = apply_memory_options(pipe, settings(tmp_path, cpu_offload=True), CUDA)
    assert pipe.placed == ["offload"] and done.applied == ("cpu offload",)
    assert done.notes == ()


def test_the_vae_options_are_read_back_from_the_vae(tmp_path: Path) -> None:
    pipe = Pipe()
    done = apply_memory_options(pipe, settings(tmp_path, vae_tiling=True, vae_slicing=True),
                                CPU)
    assert (pipe.vae.use_tiling, pipe.vae.use_slicing) == (True, True)
    assert done.text == "vae tiling, vae slicing"
    assert apply_memory_options(Pipe(), settings(tmp_path), CPU).text == "none"


@pytest.mark.slow
async def test_the_worker_applies_vae_tiling_and_slicing_and_warns_about_offload(
        local_data_dir: Path) -> None:
    provider = LocalDiffusionProvider(LocalDiffusionConfig(
        data_dir=local_data_dir, torch_threads=1, vae_tiling=True, vae_slicing=True,
        cpu_offload=True))
    progress = Recorder()
    try:
        (image,) = await provider.generate(request(steps=2), progress, CancelToken())
    finally:
        await provider.close()
    # read back from the real pipeline's VAE in the worker
    assert image.details["memory_options"] == "vae tiling, vae slicing"
    notices = [e.message for e in progress.events if e.message and "ignored" in e.message]
    assert notices == ["CPU offload is ignored here: it moves idle parts of the model from "
                       "GPU memory to system memory, and this job runs on the CPU"]
