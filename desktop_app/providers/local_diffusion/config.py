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
    SDXL_REFINER = "sdxl_refiner"
    SD3 = "sd3"
    FLUX = "flux"
    UNKNOWN = "unknown"

    @property
    def side_bounds(self) -> tuple[int, int]:
        """Smallest and largest side (px) worth asking of this family."""
        if self is Architecture.SDXL:
            return 512, 2048
        return 64, 1024

    @property
    def defaults(self) -> FamilyDefaults:
        """What a new job for this family starts with (editor and fitting read it)."""
        return FAMILY_DEFAULTS.get(self, FAMILY_DEFAULTS[Architecture.UNKNOWN])


@dataclasses.dataclass(frozen=True)
class FamilyDefaults:
    """A family's trained resolution and the settings its users start from."""

    size: tuple[int, int]
    guidance: float
    negative_prompt: str
    suggested_sizes: tuple[tuple[int, int], ...]
    max_aspect: float | None = None


SD1_SIZES = ((512, 512), (512, 768), (768, 512), (640, 448), (448, 640))
# the resolutions SDXL was trained at (its aspect-ratio buckets near one megapixel)
SDXL_SIZES = ((1024, 1024), (1152, 896), (896, 1152), (1216, 832), (832, 1216),
              (1344, 768), (768, 1344), (1536, 640), (640, 1536))
SDXL_NEGATIVE = "lowres, blurry, bad anatomy, watermark, text, jpeg artifacts"
FAMILY_DEFAULTS: dict[Architecture, FamilyDefaults] = {
    Architecture.TINY: FamilyDefaults((64, 64), 7.5, "", ((64, 64), (128, 128))),
    Architecture.SD1: FamilyDefaults((512, 512), 7.5, "", SD1_SIZES),
    Architecture.SD2: FamilyDefaults((768, 768), 7.5, "", ((768, 768),)),
    Architecture.SDXL: FamilyDefaults((1024, 1024), 5.0, SDXL_NEGATIVE, SDXL_SIZES,
                                      max_aspect=4.0),
    Architecture.UNKNOWN: FamilyDefaults((512, 512), 7.5, "", SD1_SIZES),
}


@dataclasses.dataclass(frozen=True)
class LocalDiffusionConfig:
    """Everything the local provider needs to know; one immutable value per provider.

    ``model`` is ``builtin:tiny``, a Hugging Face id (found in the HF cache; fetched
    only when ``allow_download``), a local diffusers folder, or a ``.safetensors``
    checkpoint (SD 1.x or SDXL, loaded with the bundled config skeletons).
    ``preview_every`` is the number of steps between preview images (0: none).
    ``fp16`` halves the weights on CUDA and MPS (the CPU always runs float32);
    ``vae_tiling`` / ``vae_slicing`` decode large images or batches in pieces;
    ``cpu_offload`` keeps idle parts in system memory (CUDA with accelerate only).
    """

    data_dir: Path
    model: str = BUILTIN_TINY
    device: str = "auto"
    allow_cpu: bool = True
    attention_slicing: bool = False
    vae_tiling: bool = False
    vae_slicing: bool = False
    cpu_offload: bool = False
    fp16: bool = True
    scheduler: str = "default"
    idle_shutdown_s: float = 600.0
    allow_download: bool = False
    preview_every: int = 5
    hf_cache_dir: Path | None = None
    torch_threads: int | None = None
    cancel_grace_s: float = 15.0  # then the worker is killed to honour a cancel
    # the folders the user added to the model library (LoRAs and embeddings are found
    # there and in ``data_dir/models``)
    model_folders: tuple[Path, ...] = ()

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
