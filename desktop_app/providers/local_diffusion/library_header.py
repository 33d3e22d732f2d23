"""What a model file is, from its ``.safetensors`` header alone (GUI side: no torch,
no safetensors package, never the tensors).

A safetensors file starts with 8 bytes (little-endian length N), then N bytes of
JSON: tensor name -> {dtype, shape, data_offsets}, plus an optional
``__metadata__`` table of strings. ``read_header`` reads at most
``MAX_HEADER_BYTES`` of it and ends in a ``Header`` or a ``HeaderUnreadable``
saying why; ``kind_and_family`` tells a checkpoint, a LoRA or an embedding of
SD 1.x or SDXL apart by the tensor names (and a LoRA trainer's metadata).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import operator
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from desktop_app.domain.errors import ImageDeskError

# A real SDXL checkpoint's header is a few hundred KB; safetensors itself allows
# 100 MB, which would take a GUI-side scan seconds to parse for one file.
MAX_HEADER_BYTES = 16 * 2**20
MAX_METADATA_CHARS = 64 * 1024  # per value; trainers store long tag lists here

INCOMPLETE = "is incomplete (shorter than its header says): download or copy it again"
CHECKPOINT, LORA, EMBEDDING = "checkpoint", "lora", "embedding"
SD1, SD2, SDXL, UNKNOWN = "sd1", "sd2", "sdxl", "unknown"


class HeaderUnreadable(ImageDeskError):
    """The file is not a usable safetensors file; the message says why, in words."""


@dataclasses.dataclass(frozen=True)
class Header:
    names: frozenset[str]  # tensor names
    metadata: Mapping[str, str]
    data_end: int  # where the last tensor ends, from the start of the file


def read_header(path: Path) -> Header:
    """The header of the safetensors file at ``path``; ``HeaderUnreadable`` if the
    file cannot be read or is not one; ``OSError`` is turned into that too."""
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            return parse_header(_read_prefix(handle), size)
    except OSError as error:
        raise HeaderUnreadable(f"cannot be read ({error.strerror or error})") from None


def _read_prefix(handle: BinaryIO) -> bytes:
    head = handle.read(8)
    if len(head) < 8:
        return head
    (length,) = struct.unpack("<Q", head)
    if length > MAX_HEADER_BYTES:
        return head  # parse_header says why, without reading it
    return head + handle.read(length)


def parse_header(raw: bytes, file_size: int, *, fast_path: bool = True) -> Header:
    """The header in ``raw`` (the file's first bytes: the length, then the JSON) of a
    file of ``file_size`` bytes; ``HeaderUnreadable`` for anything else.

    With msgspec installed (the ``local`` extra), a well-formed header is decoded by
    it (``_decode_fast``); anything it does not take as is goes the ``json`` way,
    which says what is wrong. Both end in the same ``Header``."""
    if len(raw) < 8:
        raise HeaderUnreadable("is too short to be a .safetensors file")
    (length,) = struct.unpack("<Q", raw[:8])
    if length < 2:
        raise HeaderUnreadable("is not a .safetensors file (its header is empty)")
    if length > MAX_HEADER_BYTES:
        raise HeaderUnreadable(f"is not a .safetensors file ImageDesk reads (its header "
                               f"claims {length} bytes; at most {MAX_HEADER_BYTES} are read)")
    if 8 + length > file_size or len(raw) < 8 + length:
        raise HeaderUnreadable("is incomplete or not a .safetensors file (shorter than its "
                               "header length)")
    fast = _decode_fast(raw[8:8 + length]) if fast_path else None
    if fast is not None:
        names, metadata, data_end = fast
        if 8 + length + data_end > file_size:
            raise HeaderUnreadable(INCOMPLETE)
        return Header(names=names, metadata=metadata, data_end=8 + length + data_end)
    try:
        table = json.loads(raw[8:8 + length].decode("utf-8"))
    except UnicodeDecodeError:
        raise HeaderUnreadable("is not a .safetensors file (its header is not text)") from None
    except (ValueError, RecursionError):
        raise HeaderUnreadable("is not a .safetensors file (its header is not JSON)") from None
    if not isinstance(table, dict):
        raise HeaderUnreadable("is not a .safetensors file (its header is not a table)")
    metadata = table.pop("__metadata__", {})
    if not isinstance(metadata, dict):
        raise HeaderUnreadable("has a malformed header (__metadata__ is not a table)")
    try:  # a checkpoint names thousands of tensors: one plain pass, then a slow look on error
        data_end = max((_end(spec["data_offsets"]) for spec in table.values()), default=0)
    except (TypeError, KeyError, ValueError):
        bad = next(name for name, spec in table.items() if not _has_offsets(spec))
        raise HeaderUnreadable(f"has a malformed header (tensor {bad[:60]!r} has no valid "
                               "data offsets)") from None
    if 8 + length + data_end > file_size:
        raise HeaderUnreadable(INCOMPLETE)
    return Header(names=frozenset(table), metadata=_text_values(metadata),
                  data_end=8 + length + data_end)


def _text_values(metadata: Mapping[Any, Any]) -> dict[str, str]:
    return {str(k): v[:MAX_METADATA_CHARS] for k, v in metadata.items() if isinstance(v, str)}


@functools.cache
def _fast_decoders() -> tuple[Any, Any] | None:
    """msgspec decoders of a header's tensor table and of its ``__metadata__``, or None
    without msgspec. A table decoded to plain dicts and lists is thousands of objects
    that Python's cyclic collector walks again and again; msgspec builds one small
    struct per tensor, kept out of the collector, and skips what is not asked for:
    a quarter of ``json``'s time on a checkpoint's header (bench_model_library.py)."""
    try:
        import msgspec
    except ImportError:
        return None

    class Tensor(msgspec.Struct, gc=False):
        # None: no offsets (``__metadata__``'s entry; elsewhere the json way says why)
        data_offsets: tuple[int, int] | None = None

    class Metadata(msgspec.Struct):
        table: dict[str, Any] | None = msgspec.field(default=None, name="__metadata__")

    return (msgspec.json.Decoder(dict[str, Tensor]), msgspec.json.Decoder(Metadata))


def _decode_fast(body: bytes) -> tuple[frozenset[str], dict[str, str], int] | None:
    """(tensor names, text metadata, where the data ends) of a well-formed header, or
    None: msgspec missing, or anything unusual about the header (the json way then
    decodes it again and names the fault)."""
    decoders = _fast_decoders()
    if decoders is None:
        return None
    tables, metadata_of = decoders
    try:
        table = tables.decode(body)
        metadata = metadata_of.decode(body).table or {}
    except Exception:  # msgspec.DecodeError, ValidationError, a nesting limit
        return None
    table.pop("__metadata__", None)
    offsets = list(map(_OFFSETS, table.values()))
    if None in offsets:
        return None
    starts, ends = list(map(_START, offsets)), list(map(_END, offsets))
    if starts and (min(starts) < 0 or not all(map(operator.le, starts, ends))):
        return None
    return frozenset(table), _text_values(metadata), max(ends, default=0)


_OFFSETS = operator.attrgetter("data_offsets")
_START, _END = operator.itemgetter(0), operator.itemgetter(1)


def _end(offsets: list[int]) -> int:
    start, end = offsets
    if type(start) is not int or type(end) is not int or not 0 <= start <= end:
        raise ValueError("bad offsets")
    return end


def _has_offsets(spec: object) -> bool:
    try:
        _end(spec["data_offsets"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return False
    return True


# -- what the tensor names say ---------------------------------------------------------

def kind_and_family(header: Header) -> tuple[str | None, str]:
    """(checkpoint | lora | embedding | None when the names do not say, family)."""
    names = header.names
    if _any_prefix(names, ("model.diffusion_model.", "first_stage_model.",
                           "conditioner.embedders.", "cond_stage_model.")):
        return CHECKPOINT, _checkpoint_family(names)
    if any(".lora_down." in n or ".lora_up." in n or ".lora_A." in n or ".lora_B." in n
           or n.endswith((".alpha", ".hada_w1_a", ".lokr_w1")) for n in names):
        return LORA, _lora_family(names, header.metadata)
    if names and names <= {"clip_l", "clip_g"}:
        return EMBEDDING, SDXL
    if names and (names == {"emb_params"} or all(n.startswith("string_to_param")
                                                  for n in names)):
        return EMBEDDING, SD1
    return None, UNKNOWN


def _checkpoint_family(names: frozenset[str]) -> str:
    if _any_prefix(names, ("conditioner.embedders.1",)):
        return SDXL
    if _any_prefix(names, ("cond_stage_model.model.",)):
        return SD2
    if _any_prefix(names, ("cond_stage_model.transformer.",)) or _any_prefix(
            names, ("model.diffusion_model.",)):
        return SD1
    return UNKNOWN


def _lora_family(names: frozenset[str], metadata: Mapping[str, str]) -> str:
    base = metadata.get("ss_base_model_version", "").lower()
    if base.startswith("sdxl"):
        return SDXL
    if base.startswith(("sd_v1", "sd_1")):
        return SD1
    if base.startswith(("sd_v2", "sd_2")):
        return SD2
    # kohya names SDXL's second text encoder te2 and its UNet blocks as SGM does
    # (input_blocks), SD 1.x's with diffusers' names (down_blocks)
    if _any_prefix(names, ("lora_te2_", "lora_te1_", "lora_unet_input_blocks_",
                           "lora_unet_output_blocks_", "lora_unet_middle_block_")):
        return SDXL
    if _any_prefix(names, ("lora_te_", "lora_unet_down_blocks_", "lora_unet_up_blocks_",
                           "lora_unet_mid_block_")):
        return SD1
    # diffusers' own layout (unet., text_encoder.): SDXL has a second text encoder, no
    # attention in its first down block and two or more transformer layers per block
    if _any_prefix(names, ("text_encoder_2.",)) or any(
            n.startswith("unet.") and ".transformer_blocks.1." in n for n in names):
        return SDXL
    if _any_prefix(names, ("unet.down_blocks.0.attentions.", "unet.up_blocks.3.attentions.")):
        return SD1
    return UNKNOWN


def _any_prefix(names: Iterable[str], prefixes: tuple[str, ...]) -> bool:
    return any(name.startswith(prefixes) for name in names)
