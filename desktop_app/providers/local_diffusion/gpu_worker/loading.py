"""Finding and loading a model offline (worker side: diffusers imported lazily)."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from desktop_app.data_files import resource_path
from desktop_app.providers.local_diffusion.config import (
    BUILTIN_TINY,
    SINGLE_FILE_SUFFIXES,
    Architecture,
    model_label,
)
from desktop_app.providers.local_diffusion.failures import WorkerProblem, classify
from desktop_app.providers.local_diffusion.families import (
    HeaderError,
    family_of,
    read_header,
    unsupported_reason,
)
from desktop_app.providers.local_diffusion.gpu_worker.device_choice import Device
from desktop_app.providers.local_diffusion.hashing import model_hash
from desktop_app.providers.local_diffusion.messages import WorkerSettings

SKELETONS = resource_path("model_skeletons")
SD15_SKELETON = SKELETONS / "sd15"
TOKENIZER_FILES = (
    "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json",
)
SKELETON_FILES = (
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    *TOKENIZER_FILES,
    "unet/config.json",
    "vae/config.json",
)
SDXL_SKELETON_FILES = (
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "text_encoder_2/config.json",
    "unet/config.json",
    "vae/config.json",
)
SDXL_SECOND_PAD = "!"
HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
SETTINGS_HINT = "choose a local file in Settings → Local"

Report = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class MemoryOptions:
    """What ``apply_memory_options`` did to a pipeline, read back from the pipeline."""

    applied: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return ", ".join(self.applied) or "none"


@dataclasses.dataclass
class LoadedModel:
    key: tuple[str, str, str]  # model, device, dtype
    pipe: Any
    label: str
    model_hash: str
    architecture: Architecture
    default_scheduler: Any
    load_s: float
    memory_saving: bool = False
    memory: MemoryOptions | None = None


def not_cached_message(model: str) -> str:
    return (f"model {model} is not in your Hugging Face cache; connect once to download it, "
            f"or {SETTINGS_HINT}")


def _misconfigured(message: str) -> WorkerProblem:
    return WorkerProblem("Misconfigured", message)


def _architecture(pipe: Any, model: str) -> Architecture:
    if model == BUILTIN_TINY:
        return Architecture.TINY
    if "XL" in type(pipe).__name__:
        return Architecture.SDXL
    dim: Any = getattr(getattr(pipe, "unet", None), "config", {}).get("cross_attention_dim")
    if dim == 768:
        return Architecture.SD1
    return Architecture.SD2 if dim == 1024 else Architecture.UNKNOWN


def single_file_architecture(path: Path) -> Architecture:
    """The family of a checkpoint, from its tensor names (the header only, no weights);
    Misconfigured, saying why, for a file this build cannot load."""
    try:
        header = read_header(path)
    except HeaderError as exc:
        raise _misconfigured(
            f"The model file {path} cannot be read as a .safetensors checkpoint ({exc}); "
            f"check the file or {SETTINGS_HINT}."
        ) from exc
    why = unsupported_reason(header)
    if why is not None:
        raise _misconfigured(
            f"The model file {path.name} cannot be used: {why}. Choose an SD 1.x or SDXL "
            "checkpoint, or the model's diffusers folder or Hugging Face id, in Settings → "
            "Local."
        )
    return family_of(header)


def check_skeleton(folder: Path, files: tuple[str, ...] = SKELETON_FILES) -> None:
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
        raise _misconfigured(
            f"The bundled model configuration ({folder}) lacks {', '.join(missing)}, so "
            "single .safetensors files cannot be loaded offline. Reinstall ImageDesk, or use "
            "a diffusers folder or Hugging Face id in Settings → Local."
        )


def sdxl_tokenizers(skeletons: Path = SKELETONS) -> tuple[Any, Any]:
    """SDXL's two CLIP tokenizers, offline. Both use CLIP's BPE vocabulary, the one the
    SD 1.5 skeleton ships, so it is not shipped twice more; the second pads with "!"
    (token 0) as OpenCLIP did in training."""
    from transformers import CLIPTokenizer

    vocab = skeletons / "sd15" / "tokenizer"
    return (CLIPTokenizer.from_pretrained(str(vocab), local_files_only=True),
            CLIPTokenizer.from_pretrained(str(vocab), local_files_only=True,
                                          pad_token=SDXL_SECOND_PAD))


def load_single_file(path: Path, device: Device, *,
                     skeletons: Path = SKELETONS) -> tuple[Any, Architecture]:
    """A pipeline from one original-layout checkpoint, built offline from the bundled
    configuration of its family (``skeletons``: a folder of per-family diffusers
    configs, without weights)."""
    arch = single_file_architecture(path)
    if arch is Architecture.SDXL:
        skeleton = skeletons / "sdxl"
        check_skeleton(skeleton, SDXL_SKELETON_FILES)
        check_skeleton(skeletons / "sd15", TOKENIZER_FILES)
        from diffusers import StableDiffusionXLPipeline

        tokenizer, tokenizer_2 = sdxl_tokenizers(skeletons)
        pipe = StableDiffusionXLPipeline.from_single_file(
            str(path), config=str(skeleton), local_files_only=True, dtype=device.dtype,
            tokenizer=tokenizer, tokenizer_2=tokenizer_2)
        return pipe, arch
    skeleton = skeletons / "sd15"
    check_skeleton(skeleton)
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_single_file(
        str(path), config=str(skeleton), local_files_only=True, dtype=device.dtype,
        safety_checker=None, requires_safety_checker=False,
    )
    return pipe, arch


def _load_folder(folder: Path, device: Device) -> Any:
    from diffusers import AutoPipelineForText2Image

    kwargs: dict[str, Any] = {"local_files_only": True, "dtype": device.dtype}
    index = folder / "model_index.json"
    if not index.is_file():
        raise _misconfigured(
            f"The folder {folder} is not a diffusers model (no model_index.json); "
            f"{SETTINGS_HINT}."
        )
    if '"safety_checker"' in index.read_text(encoding="utf-8", errors="replace"):
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    return AutoPipelineForText2Image.from_pretrained(str(folder), **kwargs)


def _hub_snapshot(model: str, settings: WorkerSettings, report: Report) -> Path:
    from huggingface_hub import snapshot_download

    cache = str(settings.hf_cache_dir) if settings.hf_cache_dir else None
    try:
        return Path(snapshot_download(model, cache_dir=cache, local_files_only=True))
    except Exception as exc:
        if not settings.allow_download:
            raise _misconfigured(not_cached_message(model)) from exc
    report(f"downloading {model} from Hugging Face (this can take a while)")
    from diffusers import DiffusionPipeline  # AutoPipeline* has no download() (0.42)

    try:
        DiffusionPipeline.download(model, cache_dir=cache)
        return Path(snapshot_download(model, cache_dir=cache, local_files_only=True))
    except Exception as exc:
        raise _misconfigured(
            f"model {model} could not be downloaded ({type(exc).__name__}: {exc}); check the "
            f"name and your connection, or {SETTINGS_HINT}"
        ) from exc


def resolve(model: str, settings: WorkerSettings, report: Report) -> Path:
    """The local folder or file that holds ``model``, building or finding it as needed."""
    if model == BUILTIN_TINY:
        folder = settings.data_dir / "models" / "builtin-tiny"
        if not (folder / "model_index.json").is_file():
            report("building the built-in test model (first use)")
            from desktop_app.providers.local_diffusion.gpu_worker.tiny_model import (
                build_tiny_pipeline,
            )

            build_tiny_pipeline(folder)
        return folder
    path = Path(model).expanduser()
    if model.lower().endswith(SINGLE_FILE_SUFFIXES):
        if not path.is_file():
            raise _misconfigured(
                f"The model file {path} does not exist; {SETTINGS_HINT} that exists."
            )
        return path
    if path.is_dir():
        return path
    if path.is_file():  # a file is never called a folder (issue 12.12)
        raise _misconfigured(f"The model {path} is a file, not a diffusers folder; single-file "
                             f"models must be .safetensors checkpoints; {SETTINGS_HINT}.")
    if path.is_absolute() or model.startswith(("~", ".")) or not HF_ID.match(model):
        raise _misconfigured(f"The model folder {path} does not exist; {SETTINGS_HINT}.")
    return _hub_snapshot(model, settings, report)


LOAD_STAGES = ("reading the weights", "placing it on the {device}", "checking its hash")


def loading_text(label: str, stage: int, what: str) -> str:
    """What a face shows while a model loads: its name, and which of the stages runs
    ("Loading model sdxl-base… 1 of 3: reading the weights")."""
    return f"Loading model {label}… {stage} of {len(LOAD_STAGES)}: {what}"


def load_model(model: str, settings: WorkerSettings, device: Device, report: Report) -> LoadedModel:
    started = time.perf_counter()
    label = model_label(model)
    location = resolve(model, settings, report)
    report(loading_text(label, 1, LOAD_STAGES[0]))
    try:
        if location.is_file():
            pipe, architecture = load_single_file(location, device)
        else:
            pipe = _load_folder(location, device)
            architecture = _architecture(pipe, model)
    except WorkerProblem:
        raise
    except Exception as exc:
        if classify(exc)[0] in ("OutOfMemory", "DeviceFault"):
            raise
        raise _misconfigured(
            f"The model {model_label(model)} could not be loaded ({type(exc).__name__}: "
            f"{str(exc)[:300]}); check the files or {SETTINGS_HINT}."
        ) from exc
    pipe.set_progress_bar_config(disable=True)
    alias_flattened_text_encoders(pipe)
    report(loading_text(label, 2, LOAD_STAGES[1].format(device=device.info.device_name)))
    memory = apply_memory_options(pipe, settings, device)
    report(loading_text(label, 3, LOAD_STAGES[2]))
    digest = model_hash(location, settings.data_dir / "models" / "hash-cache.json")
    return LoadedModel(
        key=(model, device.torch_device, device.info.dtype),
        pipe=pipe,
        label=label,
        model_hash=digest,
        architecture=architecture,
        default_scheduler=pipe.scheduler,
        load_s=time.perf_counter() - started,
        memory_saving=settings.attention_slicing and settings.vae_tiling,
        memory=memory,
    )


CPU_OFFLOAD_IGNORED = ("CPU offload is ignored here: it moves idle parts of the model from "
                       "GPU memory to system memory, and this job runs on the {device}")


def apply_memory_options(pipe: Any, settings: WorkerSettings, device: Device) -> MemoryOptions:
    """Turn on the memory options the settings ask for and place the pipeline; the
    answer is read back from the pipeline (the VAE's flags), not echoed from settings."""
    notes = []
    applied = []
    if settings.attention_slicing:
        pipe.enable_attention_slicing()
        applied.append("attention slicing")
    if settings.vae_tiling:
        pipe.vae.enable_tiling()
    if settings.vae_slicing:
        pipe.vae.enable_slicing()
    if getattr(pipe.vae, "use_tiling", settings.vae_tiling):
        applied.append("vae tiling")
    if getattr(pipe.vae, "use_slicing", settings.vae_slicing):
        applied.append("vae slicing")
    if settings.cpu_offload and device.torch_device == "cuda":
        pipe.enable_model_cpu_offload()
        applied.append("cpu offload")
    else:
        if settings.cpu_offload:
            notes.append(CPU_OFFLOAD_IGNORED.format(device=device.info.device_name))
        pipe.to(device.torch_device)
    return MemoryOptions(tuple(applied), tuple(notes))


def enable_memory_saving(loaded: LoadedModel) -> None:
    """After an out-of-memory error: slice attention and tile the VAE from now on."""
    loaded.pipe.enable_attention_slicing()
    loaded.pipe.vae.enable_tiling()
    loaded.memory_saving = True


def scheduler_for(loaded: LoadedModel, name: str) -> Any:
    if name == "default":
        return loaded.default_scheduler
    import diffusers

    config = loaded.default_scheduler.config
    if name == "ddim":
        return diffusers.DDIMScheduler.from_config(config)
    if name == "euler":
        return diffusers.EulerDiscreteScheduler.from_config(config)
    if name == "euler_a":
        return diffusers.EulerAncestralDiscreteScheduler.from_config(config)
    if name == "dpmpp_2m":
        return diffusers.DPMSolverMultistepScheduler.from_config(
            config, algorithm_type="dpmsolver++", solver_order=2)
    if name == "dpmpp_2m_karras":
        return diffusers.DPMSolverMultistepScheduler.from_config(
            config, algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=True)
    if name == "heun":
        return diffusers.HeunDiscreteScheduler.from_config(config)
    if name == "unipc":
        return diffusers.UniPCMultistepScheduler.from_config(config)
    if name == "pndm":
        return diffusers.PNDMScheduler.from_config(config)
    raise WorkerProblem("InvalidRequest", f"Unknown scheduler {name!r}.")


def alias_flattened_text_encoders(pipe: Any) -> None:
    """transformers 5.6 flattened ``CLIPTextModel`` (no ``text_model`` any more) while
    diffusers' ``encode_prompt`` still reads ``text_encoder.text_model.final_layer_norm``
    when clip skip is set (huggingface/diffusers#14124, open). Point ``text_model`` at
    the model itself, outside torch's module registry, so nothing is registered twice."""
    for name in ("text_encoder", "text_encoder_2"):
        encoder = getattr(pipe, name, None)
        if encoder is not None and not hasattr(encoder, "text_model") \
                and hasattr(encoder, "final_layer_norm"):
            object.__setattr__(encoder, "text_model", encoder)
