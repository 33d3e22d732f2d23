"""Settings of the local provider and the facts about model sources the GUI side
may know without importing torch."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path

BUILTIN_TINY = "builtin:tiny"
BUILTIN_TINY_LABEL = "Built-in test model (random weights)"
SINGLE_FILE_SUFFIXES = (".safetensors",)

SCHEDULERS: tuple[str, ...] = ("default", "ddim", "euler", "euler_a", "dpmpp_2m", "pndm")
DEVICES: tuple[str, ...] = ("auto", "cuda", "mps", "cpu")


class Architecture(enum.Enum):
    """The pipeline families we size and load differently."""

    TINY = "tiny"
    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"
    UNKNOWN = "unknown"

    @property
    def side_bounds(self) -> tuple[int, int]:
        """Smallest and largest side (px) worth asking of this family."""
        if self is Architecture.SDXL:
            return 512, 2048
        return 64, 1024


@dataclasses.dataclass(frozen=True)
class LocalDiffusionConfig:
    """Everything the local provider needs to know; one immutable value per provider.

    ``model`` is ``builtin:tiny``, a Hugging Face id (found in the HF cache; fetched
    only when ``allow_download``), a local diffusers folder, or a ``.safetensors``
    checkpoint (SD 1.x, loaded with the bundled config skeleton).
    ``preview_every`` is the number of steps between preview images (0: none).
    """

    data_dir: Path
    model: str = BUILTIN_TINY
    device: str = "auto"
    allow_cpu: bool = True
    attention_slicing: bool = False
    vae_tiling: bool = False
    cpu_offload: bool = False
    scheduler: str = "default"
    idle_shutdown_s: float = 600.0
    allow_download: bool = False
    preview_every: int = 5
    hf_cache_dir: Path | None = None
    torch_threads: int | None = None
    cancel_grace_s: float = 15.0  # then the worker is killed to honour a cancel

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"Unknown device {self.device!r}: use one of {', '.join(DEVICES)}.")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(
                f"Unknown scheduler {self.scheduler!r}: use one of {', '.join(SCHEDULERS)}."
            )
        if not self.model.strip():
            raise ValueError("The local model must be a name, folder or file.")
        if self.preview_every < 0:
            raise ValueError("preview_every must be 0 (off) or a number of steps.")

    @property
    def tiny_model_dir(self) -> Path:
        return self.data_dir / "models" / "builtin-tiny"


def model_label(model: str) -> str:
    """How a model source is shown to the user."""
    if model == BUILTIN_TINY:
        return BUILTIN_TINY_LABEL
    if model.lower().endswith(SINGLE_FILE_SUFFIXES) or ("/" in model and Path(model).exists()):
        return Path(model).name
    return model


def guess_architecture(model: str) -> Architecture:
    """A guess from the name alone, before the worker has looked at the weights."""
    if model == BUILTIN_TINY:
        return Architecture.TINY
    lowered = model.lower()
    if "xl" in lowered:
        return Architecture.SDXL
    if "stable-diffusion-2" in lowered:
        return Architecture.SD2
    return Architecture.UNKNOWN
