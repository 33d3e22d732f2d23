"""Which model family a single ``.safetensors`` checkpoint holds, from its tensor names.

Torch-free and bounded: only the file's JSON header is read (at most
``MAX_HEADER_BYTES``), never the weights, so the GUI side can refuse an
unsupported file before a worker starts, and the worker picks the right
offline configuration. The key names are those of the original (A1111 / SGM /
ComfyUI) layout that people download; diffusers' own detection
(``single_file_utils.infer_diffusers_model_type``) looks at the same prefixes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path

from desktop_app.providers.local_diffusion.config import Architecture

MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit on the JSON header

UNET = "model.diffusion_model."
SD1_TEXT = "cond_stage_model.transformer."
SD2_TEXT = "cond_stage_model.model."
XL_CLIP_L = "conditioner.embedders.0.transformer."
XL_CLIP_G = "conditioner.embedders.1.model."
XL_REFINER_CLIP_G = "conditioner.embedders.0.model."
CROSS_ATTENTION_KEY = UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
FIRST_CONV = UNET + "input_blocks.0.0.weight"

SUPPORTED_SINGLE_FILE = frozenset({Architecture.SD1, Architecture.SDXL})

NOT_YET: dict[Architecture, str] = {
    Architecture.SD2: "Stable Diffusion 2.x single files are not supported yet (they need "
                      "their own configuration and v-prediction settings)",
    Architecture.SDXL_REFINER: "SDXL refiner checkpoints are not supported yet (a refiner "
                               "only finishes images a base model started)",
    Architecture.SD3: "Stable Diffusion 3 checkpoints are not supported yet (a different "
                      "pipeline with three text encoders)",
    Architecture.FLUX: "Flux checkpoints are not supported yet (a different pipeline and "
                       "text encoders that single files usually lack)",
}


def family_of_file(path: Path) -> Architecture:
    """The family of a checkpoint file, or UNKNOWN when it cannot be read."""
    try:
        return family_of(read_header(path))
    except HeaderError:
        return Architecture.UNKNOWN


class HeaderError(ValueError):
    """The file is not a readable .safetensors checkpoint; the message says why."""


def read_header(path: Path) -> dict[str, object]:
    """The JSON header of a .safetensors file (tensor name -> dtype, shape, offsets)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(8)
            if len(raw) < 8:
                raise HeaderError("it is too short")
            (length,) = struct.unpack("<Q", raw)
            if not 2 <= length <= MAX_HEADER_BYTES:
                raise HeaderError("its header length is implausible")
            text = handle.read(length)
    except OSError as exc:
        raise HeaderError(f"it cannot be read: {exc.strerror or exc}") from exc
    if len(text) < length:
        raise HeaderError("it ends inside its header")
    try:
        header = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HeaderError("its header is not JSON") from exc
    if not isinstance(header, dict):
        raise HeaderError("its header is not a table of tensors")
    return header


def _shape(header: Mapping[str, object], key: str) -> list[int]:
    spec = header.get(key)
    shape = spec.get("shape") if isinstance(spec, dict) else None
    return [s for s in shape if isinstance(s, int)] if isinstance(shape, list) else []


def family_of(header: Mapping[str, object]) -> Architecture:
    """The family the tensor names (and one or two shapes) point to."""
    keys = [k for k in header if k != "__metadata__"]
    if any("double_blocks." in k and "img_attn" in k for k in keys):
        return Architecture.FLUX
    if any("joint_blocks." in k for k in keys):
        return Architecture.SD3
    if any(k.startswith(XL_CLIP_G) for k in keys):
        return Architecture.SDXL
    if any(k.startswith(XL_REFINER_CLIP_G) for k in keys):
        return Architecture.SDXL_REFINER
    if any(k.startswith(SD2_TEXT) for k in keys):
        return Architecture.SD2
    width = _shape(header, CROSS_ATTENTION_KEY)[-1:]
    if width == [1024]:
        return Architecture.SD2
    if any(k.startswith(SD1_TEXT) for k in keys) or width == [768]:
        return Architecture.SD1
    return Architecture.UNKNOWN


def what_it_is(header: Mapping[str, object]) -> str | None:
    """A name for files that are not whole checkpoints (LoRA, VAE, bare UNet), else None."""
    keys = [k for k in header if k != "__metadata__"]
    if any(k.startswith(("lora_unet_", "lora_te", "lora_")) or ".lora_" in k or "lora_A" in k
           or "lora_down" in k for k in keys):
        return "a LoRA (it changes a checkpoint; it is not one)"
    if any(k.startswith(("encoder.down.", "decoder.up.")) for k in keys) and \
            not any(k.startswith(UNET) for k in keys):
        return "a VAE on its own, not a whole checkpoint"
    if any(k.startswith(UNET) for k in keys) and \
            not any(k.startswith(("first_stage_model.", "vae.")) for k in keys):
        return "a diffusion model without its VAE (not a whole checkpoint)"
    return None


def is_inpainting(header: Mapping[str, object]) -> bool:
    """Inpainting checkpoints take 9 input channels (latents, mask, masked image)."""
    shape = _shape(header, FIRST_CONV)
    return len(shape) > 1 and shape[1] == 9


def unsupported_reason(header: Mapping[str, object]) -> str | None:
    """None when this build loads the checkpoint as a text-to-image model, else why not
    (one clause, naming what the file is)."""
    other = what_it_is(header)
    if other is not None:
        return f"it is {other}"
    family = family_of(header)
    if family in NOT_YET:
        return NOT_YET[family]
    if family is Architecture.UNKNOWN:
        return ("its tensor names match no family ImageDesk knows (SD 1.x and SDXL load "
                "from single files)")
    if is_inpainting(header):
        return "inpainting checkpoints are not supported yet as single files"
    return None
