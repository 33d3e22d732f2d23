"""Checking a local model source before anything is queued or loaded (GUI side: no
torch, no network, bounded reads). Issues 11.4 and 12.12: a missing path is refused
at once with a message that says what to fix, and a file is never called a folder.

``check_model_source`` answers None (usable as far as files can tell) or one
sentence naming the problem. It reads at most a checkpoint's header and the
folder's ``model_index.json``; the worker still has the last word when it loads.
"""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

from desktop_app.providers.local_diffusion.config import BUILTIN_TINY, SINGLE_FILE_SUFFIXES
from desktop_app.providers.local_diffusion.families import (
    HeaderError,
    read_header,
    unsupported_reason,
)

HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
SETTINGS_HINT = "choose a model that exists in Settings → Local (or --model)"
MAX_INDEX_BYTES = 2**20
WEIGHTS_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt")
# components that carry weights; the others (scheduler, tokenizer) only configs
WEIGHTED = ("unet", "vae", "text_encoder", "text_encoder_2", "transformer", "prior")


def is_path_like(model: str) -> bool:
    """Whether ``model`` names a file or folder rather than a Hugging Face id."""
    return (model.startswith(("~", ".", "/", "\\")) or os.path.isabs(model)
            or not HF_ID.match(model) or Path(model).expanduser().exists())


def missing_model(model: str) -> str | None:
    """What ``check_model_source`` says when ``model`` names a file or folder that
    is not there — the cases the worker refuses before loading anything — from one
    stat, no reads. Checked before a job starts the worker, so a missing model costs
    no worker start (seconds of importing torch, minutes on a loaded machine)."""
    model = model.strip()
    if model == BUILTIN_TINY:
        return None
    path = Path(model).expanduser()
    if model.lower().endswith(SINGLE_FILE_SUFFIXES):
        return None if path.is_file() else (
            f"The model file {path} does not exist; {SETTINGS_HINT}.")
    if is_path_like(model) and not path.exists():
        return f"The model folder {path} does not exist; {SETTINGS_HINT}."
    return None


def check_model_source(model: str, *, hf_cache_dir: Path | None = None,
                       allow_download: bool = False) -> str | None:
    """None when ``model`` resolves to complete files (or may be fetched), else what
    is wrong and what to do, in one sentence."""
    model = model.strip()
    if model == BUILTIN_TINY:
        return None
    if model.lower().endswith(SINGLE_FILE_SUFFIXES):
        return _check_checkpoint(Path(model).expanduser())
    if is_path_like(model):
        return _check_folder(Path(model).expanduser())
    if allow_download or _in_hf_cache(model, hf_cache_dir):
        return None
    return (f"The model {model} is not in your Hugging Face cache and downloads are off; "
            f"turn on downloads in Settings → Local, or {SETTINGS_HINT}.")


def _check_checkpoint(path: Path) -> str | None:
    if not path.exists():
        return f"The model file {path} does not exist; {SETTINGS_HINT}."
    if not path.is_file():
        return f"The model {path} is not a regular file; {SETTINGS_HINT}."
    try:
        header = read_header(path)
        size = path.stat().st_size
        length = _header_length(path)
        ends = [_data_end(spec) for name, spec in header.items() if name != "__metadata__"]
    except (OSError, HeaderError) as exc:
        return (f"The model file {path} is not a readable .safetensors checkpoint ({exc}); "
                f"{SETTINGS_HINT}.")
    if not ends:
        return f"The model file {path} holds no tensors; {SETTINGS_HINT}."
    if 8 + length + max(ends) > size:
        return (f"The model file {path} is incomplete (shorter than its header says): "
                "download it again.")
    why = unsupported_reason(header)
    if why is not None:
        return (f"The model file {path.name} cannot be used: {why}. Choose an SD 1.x or SDXL "
                "checkpoint, or the model's diffusers folder, in Settings → Local.")
    return None


def _header_length(path: Path) -> int:
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
    return int(length)


def _data_end(spec: object) -> int:
    offsets = spec.get("data_offsets") if isinstance(spec, dict) else None
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(isinstance(o, int) and o >= 0 for o in offsets)):
        raise HeaderError("a tensor's data offsets are malformed")
    return int(offsets[1])


def _check_folder(folder: Path) -> str | None:
    if not folder.exists():
        return f"The model folder {folder} does not exist; {SETTINGS_HINT}."
    if folder.is_file():
        return (f"The model {folder} is a file, not a diffusers folder; single-file "
                f"models must be .safetensors checkpoints; {SETTINGS_HINT}.")
    index_file = folder / "model_index.json"
    try:
        with index_file.open("rb") as handle:
            index = json.loads(handle.read(MAX_INDEX_BYTES))
    except FileNotFoundError:
        return (f"The folder {folder} is not a diffusers model (no model_index.json); "
                f"{SETTINGS_HINT}.")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return f"The model_index.json in {folder} cannot be read ({exc}); {SETTINGS_HINT}."
    if not isinstance(index, dict):
        return f"The model_index.json in {folder} is not a table; {SETTINGS_HINT}."
    missing = []
    for name, spec in index.items():
        if name.startswith("_") or not (isinstance(spec, list) and spec and spec[0]):
            continue
        part = folder / name
        if not part.is_dir():
            missing.append(f"{name}/")
        elif name in WEIGHTED and not any(p.suffix in WEIGHTS_SUFFIXES
                                          for p in part.iterdir() if p.is_file()):
            missing.append(f"{name}/ weights")
    if missing:
        return (f"The model folder {folder} is incomplete (missing {', '.join(missing)}); "
                "download or copy it again.")
    return None


def hf_cache_root(hf_cache_dir: Path | None = None) -> Path:
    """Where huggingface_hub keeps models (its own environment variables first)."""
    if hf_cache_dir is not None:
        return hf_cache_dir
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface")
    return Path(home) / "hub"


def _in_hf_cache(model: str, hf_cache_dir: Path | None) -> bool:
    snapshots = hf_cache_root(hf_cache_dir) / f"models--{model.replace('/', '--')}" / "snapshots"
    try:
        return any((s / "model_index.json").is_file() for s in snapshots.iterdir())
    except OSError:
        return False
