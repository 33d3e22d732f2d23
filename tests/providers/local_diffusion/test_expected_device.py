"""The local provider reports a device before its worker runs, so a CPU-only
machine routes to the cloud first (routing.cpu_after_cloud) from the very first job."""

from __future__ import annotations

import asyncio
import importlib.metadata
import sys
from pathlib import Path

import pytest

from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.router import plan_route
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import CancelToken, HealthState, ImageProvider, ProviderKind
from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider
from desktop_app.providers.local_diffusion.expected_device import (
    MachineProbes,
    guess_device,
    machine_probes,
    nvidia_driver_visible,
    probe_machine,
    torch_build_label,
)
from desktop_app.resilience.breaker import BreakerConfig, CircuitBreaker
from desktop_app.resilience.clock import FakeClock
from desktop_app.resilience.cooldown import CooldownGate
from tests.fakes.scripted_provider import ScriptedProvider
from tests.providers.local_diffusion.support import Recorder, request

LINUX_GPU = MachineProbes("Linux", "x86_64", nvidia_driver=True, amd_rocm_device=False,
                          torch_label="")
LINUX_NO_GPU = MachineProbes("Linux", "x86_64", nvidia_driver=False, amd_rocm_device=False,
                             torch_label="")
APPLE_SILICON = MachineProbes("Darwin", "arm64", nvidia_driver=False, amd_rocm_device=False,
                              torch_label="")


# -- the guess ------------------------------------------------------------------------


def test_auto_guesses_cuda_where_an_nvidia_driver_is_visible() -> None:
    assert guess_device("auto", LINUX_GPU) == "cuda"
    cu124 = MachineProbes("Windows", "AMD64", nvidia_driver=True, amd_rocm_device=False,
                          torch_label="cu124")
    assert guess_device("auto", cu124) == "cuda"


def test_auto_guesses_cpu_without_a_driver() -> None:
    assert guess_device("auto", LINUX_NO_GPU) == "cpu"


def test_a_cpu_build_of_torch_means_cpu_even_with_a_driver() -> None:
    cpu_build = MachineProbes("Linux", "x86_64", nvidia_driver=True, amd_rocm_device=False,
                              torch_label="cpu")
    assert guess_device("auto", cpu_build) == "cpu"


def test_auto_guesses_mps_on_apple_silicon_only() -> None:
    assert guess_device("auto", APPLE_SILICON) == "mps"
    intel_mac = MachineProbes("Darwin", "x86_64", nvidia_driver=False, amd_rocm_device=False,
                              torch_label="")
    assert guess_device("auto", intel_mac) == "cpu"


def test_a_rocm_build_on_an_amd_gpu_counts_as_cuda() -> None:
    rocm = MachineProbes("Linux", "x86_64", nvidia_driver=False, amd_rocm_device=True,
                         torch_label="rocm6.2")
    assert guess_device("auto", rocm) == "cuda"
    assert guess_device("auto", MachineProbes("Linux", "x86_64", False, False, "rocm6.2")) == "cpu"


@pytest.mark.parametrize("wanted", ["cpu", "cuda", "mps"])
def test_an_explicit_device_is_taken_as_set(wanted: str) -> None:
    for probes in (LINUX_GPU, LINUX_NO_GPU, APPLE_SILICON):
        assert guess_device(wanted, probes) == wanted


def test_driver_probe_checks_the_usual_places_without_running_anything() -> None:
    def none(_: str) -> None:
        return None

    linux = {"/proc/driver/nvidia/version"}
    assert nvidia_driver_visible("Linux", exists=linux.__contains__, which=none)
    wsl = {"/usr/lib/wsl/lib/libcuda.so.1"}
    assert nvidia_driver_visible("Linux", exists=wsl.__contains__, which=none)
    checked: list[str] = []

    def windows(path: str) -> bool:
        checked.append(path)
        return path.endswith("nvcuda.dll")

    assert nvidia_driver_visible("Windows", exists=windows, which=none,
                                 environ={"SystemRoot": "D:/Win"})
    assert checked and checked[0].startswith("D:/Win")
    assert nvidia_driver_visible("Darwin", exists=lambda _: False,
                                 which=lambda name: f"/usr/bin/{name}")
    assert not nvidia_driver_visible("Linux", exists=lambda _: False, which=none)
    assert not nvidia_driver_visible("Windows", exists=lambda _: False, which=none, environ={})


def test_torch_build_label_is_read_from_metadata() -> None:
    def version(label: str) -> object:
        def of(name: str) -> str:
            assert name == "torch"
            return label
        return of

    assert torch_build_label(version("2.13.0+cpu")) == "cpu"  # type: ignore[arg-type]
    assert torch_build_label(version("2.5.1+cu124")) == "cu124"  # type: ignore[arg-type]
    assert torch_build_label(version("2.5.1")) == ""  # type: ignore[arg-type]

    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    assert torch_build_label(missing) is None


def test_this_machine_is_probed_as_cpu_only_without_importing_torch() -> None:
    probes = probe_machine()
    assert probes.torch_label == "cpu"  # this venv holds torch 2.13.0+cpu
    assert guess_device("auto", probes) == "cpu"
    assert machine_probes() is machine_probes()  # probed once per process
    assert "torch" not in sys.modules


# -- health before the worker runs ----------------------------------------------------


async def test_health_reports_a_guessed_cpu_before_the_worker_starts(tmp_path: Path) -> None:
    provider = LocalDiffusionProvider(LocalDiffusionConfig(data_dir=tmp_path))
    health = await provider.health()
    assert health.state is HealthState.READY
    assert health.details["device"] == "cpu"
    assert health.details["device_source"] == "guess"
    assert "a guess" in health.message
    assert provider.worker_pid is None
    assert "torch" not in sys.modules


async def test_health_guesses_cuda_on_a_machine_with_a_driver(tmp_path: Path) -> None:
    provider = LocalDiffusionProvider(LocalDiffusionConfig(data_dir=tmp_path),
                                      probes=lambda: LINUX_GPU)
    health = await provider.health()
    assert health.details["device"] == "cuda" and health.details["device_source"] == "guess"


async def test_no_gpu_and_cpu_turned_off_stays_ready_until_the_worker_checks(
        tmp_path: Path) -> None:
    # A guess never declares the provider unusable: it may miss a GPU. The first
    # job asks the worker, as before, and a refusal then marks it not configured.
    provider = LocalDiffusionProvider(LocalDiffusionConfig(data_dir=tmp_path, allow_cpu=False))
    health = await provider.health()
    assert health.state is HealthState.READY
    assert health.details["device"] == "cpu"
    assert "CPU generation is off" in health.message
    assert provider.worker_pid is None


# -- routing ---------------------------------------------------------------------------


def _slot(provider: ImageProvider, priority: int) -> ProviderSlot:
    clock = FakeClock()
    return ProviderSlot(provider=provider, breaker=CircuitBreaker(provider.name, BreakerConfig(),
                                                                  clock),
                        gate=CooldownGate(clock), priority=priority)


async def test_cpu_only_local_ranks_after_the_cloud_before_its_first_job(
        tmp_path: Path) -> None:
    local = LocalDiffusionProvider(LocalDiffusionConfig(data_dir=tmp_path))
    cloud = ScriptedProvider("openai", ProviderKind.CLOUD)
    slots = [_slot(local, 0), _slot(cloud, 10)]  # the settings' default priorities
    job = GenerationRequest(prompt="a lighthouse", width=64, height=64)

    route = await plan_route(job, slots, cpu_after_cloud=True)
    assert [c.slot.name for c in route.candidates] == ["openai", "local"]

    route = await plan_route(job, slots, cpu_after_cloud=False)
    assert [c.slot.name for c in route.candidates] == ["local", "openai"]
    assert local.worker_pid is None
    assert "torch" not in sys.modules


async def test_a_guessed_gpu_keeps_local_first(tmp_path: Path) -> None:
    local = LocalDiffusionProvider(LocalDiffusionConfig(data_dir=tmp_path),
                                   probes=lambda: LINUX_GPU)
    slots = [_slot(local, 0), _slot(ScriptedProvider("openai", ProviderKind.CLOUD), 10)]
    route = await plan_route(GenerationRequest(prompt="x", width=64, height=64), slots,
                             cpu_after_cloud=True)
    assert [c.slot.name for c in route.candidates] == ["local", "openai"]


# -- after the worker has run ----------------------------------------------------------


@pytest.mark.slow
async def test_the_device_the_worker_reported_outlives_its_idle_shutdown(
        local_data_dir: Path) -> None:
    # Probes that claim a GPU: only the worker's report can say "cpu" here.
    provider = LocalDiffusionProvider(
        LocalDiffusionConfig(data_dir=local_data_dir, idle_shutdown_s=0.2, torch_threads=2),
        probes=lambda: LINUX_GPU)
    try:
        assert (await provider.health()).details["device"] == "cuda"
        await provider.generate(request(), Recorder(), CancelToken())
        for _ in range(100):
            if provider.worker_pid is None:
                break
            await asyncio.sleep(0.1)
        assert provider.worker_pid is None
        health = await provider.health()
        assert health.details["worker"] == "not started"
        assert health.details["device"] == "cpu"
        assert health.details["device_source"] == "worker"
        assert health.details["dtype"] == "float32"
        assert "last ran on CPU" in health.message
    finally:
        await provider.close()
    assert "torch" not in sys.modules
