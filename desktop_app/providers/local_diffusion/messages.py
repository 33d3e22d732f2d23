"""The messages between the GUI-side proxy and the worker process (all picklable).

Commands go down a pipe to the worker; events come back up another. Every
event about a job carries its ``job_id`` so late messages from a cancelled
job are recognised and dropped.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from desktop_app.domain.image_work import ImageWork

MAX_INPUT_PNG_BYTES = 256 * 1024 * 1024  # a 4096 px RGB source is at most ~50 MB as PNG


@dataclasses.dataclass(frozen=True)
class WorkerSettings:
    """Fixed for the life of one worker process."""

    data_dir: Path
    device: str
    allow_cpu: bool
    attention_slicing: bool
    vae_tiling: bool
    cpu_offload: bool
    allow_download: bool
    hf_cache_dir: Path | None
    torch_threads: int | None
    vae_slicing: bool = False
    fp16: bool = True


@dataclasses.dataclass(frozen=True)
class NetworkFile:
    """A LoRA or an embedding a job uses: its name as the prompt writes it, its file
    in the model library, its weight (LoRAs) and its A1111 short hash."""

    name: str
    path: Path
    weight: float = 1.0  # the text encoder's (a LoRA's)
    short_hash: str = ""
    unet_weight: float | None = None  # None: ``weight``

    @property
    def unet(self) -> float:
        return self.weight if self.unet_weight is None else self.unet_weight


@dataclasses.dataclass(frozen=True)
class RunJob:
    job_id: int
    model: str
    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    guidance: float
    seeds: tuple[int, ...]  # one image per seed, generated one after another
    scheduler: str
    preview_every: int
    # work on an existing image (None: text-to-image) and the stored PNGs it names,
    # read and checked against their hash by the proxy (``image_inputs``)
    work: ImageWork | None = None
    inputs: tuple[InputPng, ...] = ()
    clip_skip: int = 1  # A1111's count: 1 is no skip
    # ``prompt`` is the text the encoder reads (LoRA tags removed); these are applied
    # for this job only (gpu_worker/networks.py)
    loras: tuple[NetworkFile, ...] = ()
    embeddings: tuple[NetworkFile, ...] = ()


@dataclasses.dataclass(frozen=True)
class InputPng:
    """One input image's PNG as stored (``store/input_images.py``), named by its hash."""

    sha256: str
    png: bytes

    def __post_init__(self) -> None:
        if len(self.png) > MAX_INPUT_PNG_BYTES:
            raise ValueError(f"an input PNG of {len(self.png):,} bytes is over the "
                             f"{MAX_INPUT_PNG_BYTES:,}-byte limit")


@dataclasses.dataclass(frozen=True)
class WarmUp:
    """Load ``model`` (reporting Loading/ModelReady under ``job_id``), then JobDone."""

    job_id: int
    model: str


@dataclasses.dataclass(frozen=True)
class Shutdown:
    pass


Command = RunJob | WarmUp | Shutdown


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    """Sent once torch is imported and the device chosen."""

    device: str  # "cuda", "mps", "cpu"
    device_name: str
    memory_bytes: int | None
    dtype: str
    torch_version: str


@dataclasses.dataclass(frozen=True)
class Loading:
    job_id: int
    message: str


@dataclasses.dataclass(frozen=True)
class ModelReady:
    job_id: int
    model: str
    label: str
    model_hash: str
    architecture: str  # an Architecture value
    load_s: float
    resident: int = 1  # pipelines in the worker's memory once this one is loaded


@dataclasses.dataclass(frozen=True)
class Step:
    job_id: int
    step: int  # 1-based, across all images of the job
    total: int
    preview_png: bytes | None = None


@dataclasses.dataclass(frozen=True)
class Notice:
    job_id: int
    message: str


@dataclasses.dataclass(frozen=True)
class ImageDone:
    job_id: int
    index: int
    png: bytes
    width: int
    height: int
    seed: int


@dataclasses.dataclass(frozen=True)
class JobDone:
    job_id: int
    details: dict[str, str]
    elapsed_s: float


@dataclasses.dataclass(frozen=True)
class JobFailed:
    job_id: int
    kind: str  # a taxonomy class name, e.g. "Misconfigured"
    message: str


@dataclasses.dataclass(frozen=True)
class WorkerDied:
    """Posted by the GUI side's reader when the worker's pipe closes."""

    exitcode: int | None


Event = DeviceInfo | Loading | ModelReady | Step | Notice | ImageDone | JobDone | JobFailed
