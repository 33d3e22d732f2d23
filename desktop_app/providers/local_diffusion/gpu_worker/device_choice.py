"""Choosing the device and precision (worker side: imports torch lazily)."""

from __future__ import annotations

import dataclasses
from typing import Any

from desktop_app.providers.local_diffusion.failures import INSTALL_HINT, WorkerProblem
from desktop_app.providers.local_diffusion.messages import DeviceInfo, WorkerSettings

CUDA_HINT = (
    "install PyTorch's CUDA build (see https://pytorch.org/get-started/locally/, e.g. "
    "pip install torch --index-url https://download.pytorch.org/whl/cu124)"
)


@dataclasses.dataclass(frozen=True)
class Device:
    torch_device: str
    dtype: Any  # a torch.dtype
    info: DeviceInfo


def import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise WorkerProblem(
            "Misconfigured", f"PyTorch is not installed ({exc}): {INSTALL_HINT}."
        ) from exc
    except Exception as exc:  # a broken install fails in many ways
        raise WorkerProblem(
            "Misconfigured",
            f"PyTorch is installed but fails to load ({type(exc).__name__}: {exc}); "
            f"reinstall it: {INSTALL_HINT}.",
        ) from exc
    return torch


def _mps_available(torch: Any) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _gpu_precision(torch: Any, settings: WorkerSettings) -> tuple[Any, str]:
    return (torch.float16, "float16") if settings.fp16 else (torch.float32, "float32")


def choose_device(settings: WorkerSettings) -> Device:
    """CUDA first, then MPS, then CPU if allowed; half precision (fp16) on a GPU unless
    ``settings.fp16`` is off, float32 on the CPU (fp16 there is ~50x slower)."""
    torch = import_torch()
    wanted = settings.device
    cuda_build = getattr(torch.version, "cuda", None)
    if wanted == "cuda" and not torch.cuda.is_available():
        if cuda_build is None:
            raise WorkerProblem(
                "Misconfigured",
                f"The GPU device is set to CUDA, but this PyTorch ({torch.__version__}) was "
                f"built without CUDA: {CUDA_HINT}.",
            )
        raise WorkerProblem(
            "Misconfigured",
            f"The GPU device is set to CUDA, but no NVIDIA GPU is usable (PyTorch built for "
            f"CUDA {cuda_build}): check the NVIDIA driver with nvidia-smi, or choose another "
            "device in Settings → Local.",
        )
    if wanted == "mps" and not _mps_available(torch):
        raise WorkerProblem(
            "Misconfigured",
            "The GPU device is set to Apple MPS, but MPS is not available on this machine "
            "(it needs an Apple-silicon Mac and a recent PyTorch): choose another device in "
            "Settings → Local.",
        )
    if wanted == "cuda" or (wanted == "auto" and torch.cuda.is_available()):
        index = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        dtype, name = _gpu_precision(torch, settings)
        info = DeviceInfo("cuda", str(props.name), int(props.total_memory), name,
                          str(torch.__version__))
        return Device("cuda", dtype, info)
    if wanted == "mps" or (wanted == "auto" and _mps_available(torch)):
        dtype, name = _gpu_precision(torch, settings)
        info = DeviceInfo("mps", "Apple MPS", None, name, str(torch.__version__))
        return Device("mps", dtype, info)
    if not settings.allow_cpu:
        why = ("this PyTorch was built without CUDA" if cuda_build is None
               else "no usable GPU was found")
        raise WorkerProblem(
            "Misconfigured",
            f"No GPU to generate on ({why}) and CPU generation is turned off: allow CPU "
            f"generation in Settings → Local, or {CUDA_HINT}.",
        )
    info = DeviceInfo("cpu", "CPU", None, "float32", str(torch.__version__))
    return Device("cpu", torch.float32, info)
