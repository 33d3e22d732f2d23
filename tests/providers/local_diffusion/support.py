"""Helpers shared by the local provider's tests."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import Phase, Progress


def request(**changes: object) -> GenerationRequest:
    fields: dict[str, object] = {"prompt": "a lighthouse at dusk", "width": 64, "height": 64,
                                 "steps": 4, "seed": 7}
    fields.update(changes)
    return GenerationRequest(**fields)  # type: ignore[arg-type]


class Recorder:
    """Collects progress events, as the engine's callback would."""

    def __init__(self) -> None:
        self.events: list[Progress] = []

    def __call__(self, event: Progress) -> None:
        self.events.append(event)


def write_safetensors(path: Path, keys: list[str] | dict[str, list[int]]) -> Path:
    """A valid .safetensors file of zeros (written by hand, no torch): one float per
    key, or the given shape per key."""
    shapes = keys if isinstance(keys, dict) else {key: [1] for key in keys}
    header: dict[str, object] = {}
    offset = 0
    for key, shape in shapes.items():
        size = 4 * math.prod(shape)
        header[key] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)
    return path


# Tensor names of each family's single-file checkpoints, in the original (A1111/SGM)
# layout, with the shapes that tell SD 1.x from SD 2.x (the cross-attention width).
_UNET = "model.diffusion_model."
_VAE = "first_stage_model.decoder.conv_in.weight"
SD1_KEYS: dict[str, list[int]] = {
    _UNET + "input_blocks.0.0.weight": [1, 4, 1, 1],
    _UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [1, 768],
    "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight": [1],
    _VAE: [1]}
SD2_KEYS: dict[str, list[int]] = {
    _UNET + "input_blocks.0.0.weight": [1, 4, 1, 1],
    _UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [1, 1024],
    "cond_stage_model.model.token_embedding.weight": [1], _VAE: [1]}
SDXL_KEYS: dict[str, list[int]] = {
    _UNET + "input_blocks.0.0.weight": [1, 4, 1, 1],
    _UNET + "label_emb.0.0.weight": [1],
    "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight": [1],
    "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias": [1],
    "conditioner.embedders.1.model.text_projection": [1], _VAE: [1]}
SDXL_REFINER_KEYS: dict[str, list[int]] = {
    _UNET + "input_blocks.0.0.weight": [1, 4, 1, 1],
    "conditioner.embedders.0.model.transformer.resblocks.9.mlp.c_proj.bias": [1],
    "conditioner.embedders.0.model.text_projection": [1], _VAE: [1]}
SD3_KEYS: dict[str, list[int]] = {
    _UNET + "joint_blocks.0.context_block.adaLN_modulation.1.bias": [1],
    "text_encoders.clip_l.transformer.text_model.embeddings.position_embedding.weight": [1],
    _VAE: [1]}
FLUX_KEYS: dict[str, list[int]] = {
    "double_blocks.0.img_attn.norm.key_norm.scale": [1], "img_in.weight": [1],
    "vae.decoder.conv_in.weight": [1]}
LORA_KEYS: dict[str, list[int]] = {
    "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": [1],
    "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": [1]}


def steps_seen(events: list[Progress]) -> list[int]:
    return [e.step for e in events if e.phase is Phase.GENERATING]
