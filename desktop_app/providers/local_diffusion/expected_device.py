"""A cheap guess, made in the GUI process, at the device the GPU worker will choose.

The router ranks a local provider that runs on the CPU after the cloud, so it
must know the device before the worker has ever started (and after it shut
down when idle). The worker learns the truth by importing torch, which the GUI
process never does; this guess looks only at files, ``PATH`` and torch's
installed metadata, once per process.

The guess leans towards a GPU when in doubt: a wrong "cuda" costs one job on
the CPU (then the worker reports the truth), while a wrong "cpu" could rank
the local provider after the cloud for good, and the worker would never run to
correct it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import os
import platform
import shutil
from collections.abc import Callable, Mapping

# Where an NVIDIA driver shows itself, per system, without running anything.
LINUX_DRIVER_FILES = ("/proc/driver/nvidia/version",
                      "/usr/lib/wsl/lib/libcuda.so.1", "/usr/lib/wsl/lib/libcuda.so")
ROCM_DEVICE = "/dev/kfd"


@dataclasses.dataclass(frozen=True)
class MachineProbes:
    """What the guess is made from.

    ``torch_label`` is the local part of torch's installed version ("cpu" for
    2.13.0+cpu, "cu124", "rocm6.2"), "" when it has none, None when torch is not
    installed (the worker will say so at the first job).
    """

    system: str  # platform.system(): "Linux", "Windows", "Darwin"
    machine: str  # platform.machine(): "x86_64", "AMD64", "arm64"
    nvidia_driver: bool
    amd_rocm_device: bool
    torch_label: str | None


def guess_device(wanted: str, probes: MachineProbes) -> str:
    """The device ("cuda", "mps" or "cpu") the worker is likely to choose for ``wanted``.

    An explicit device is taken as it is: the worker either uses it or reports
    why it cannot (and the provider then says "not configured").
    """
    if wanted in ("cuda", "mps", "cpu"):
        return wanted
    label = probes.torch_label or ""
    cpu_build = label.startswith("cpu")
    if probes.nvidia_driver and not cpu_build and not label.startswith("rocm"):
        return "cuda"
    if probes.amd_rocm_device and label.startswith("rocm"):
        return "cuda"  # ROCm builds of torch serve AMD GPUs through torch.cuda
    if probes.system == "Darwin" and probes.machine == "arm64":
        return "mps"
    return "cpu"


def nvidia_driver_visible(system: str, *,
                          exists: Callable[[str], bool] = os.path.exists,
                          which: Callable[[str], str | None] = shutil.which,
                          environ: Mapping[str, str] = os.environ) -> bool:
    """Whether an NVIDIA driver is installed (checks a few paths; runs nothing)."""
    if system == "Windows":
        root = environ.get("SystemRoot", r"C:\Windows")
        if exists(os.path.join(root, "System32", "nvcuda.dll")):
            return True
    elif system == "Linux" and any(exists(path) for path in LINUX_DRIVER_FILES):
        return True
    return which("nvidia-smi") is not None


def torch_build_label(version_of: Callable[[str], str] = importlib.metadata.version
                      ) -> str | None:
    """The local label of the installed torch ("cpu", "cu124", ""), read from its
    metadata without importing it; None when torch is not installed."""
    try:
        version = version_of("torch")
    except importlib.metadata.PackageNotFoundError:
        return None
    return version.partition("+")[2].lower()


def probe_machine() -> MachineProbes:
    """Look at this machine (a few stat calls and one metadata read)."""
    system = platform.system()
    return MachineProbes(
        system=system,
        machine=platform.machine(),
        nvidia_driver=nvidia_driver_visible(system),
        amd_rocm_device=system == "Linux" and os.path.exists(ROCM_DEVICE),
        torch_label=torch_build_label(),
    )


@functools.cache
def machine_probes() -> MachineProbes:
    """``probe_machine()``, done once per process (drivers do not come and go)."""
    return probe_machine()
