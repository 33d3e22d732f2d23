"""Tiny model files with the tensor names of the real ones, and folders laid out like
an Automatic1111 or ComfyUI install, built at test time (no weights downloaded)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

_UNET = "model.diffusion_model.input_blocks.0.0.weight"
_VAE = "first_stage_model.decoder.conv_in.weight"
NAMES: dict[str, tuple[str, ...]] = {
    "sd1_checkpoint": (_UNET, _VAE,
                       "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"),
    "sdxl_checkpoint": (_UNET, _VAE,
                        "conditioner.embedders.0.transformer.text_model.embeddings."
                        "token_embedding.weight",
                        "conditioner.embedders.1.model.token_embedding.weight"),
    "sd1_lora": ("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
                 "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight",
                 "lora_unet_down_blocks_0_attentions_0_proj_in.alpha",
                 "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight"),
    "sdxl_lora": ("lora_unet_input_blocks_4_1_proj_in.lora_down.weight",
                  "lora_unet_input_blocks_4_1_proj_in.lora_up.weight",
                  "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight",
                  "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight"),
    "sd1_embedding": ("emb_params",),
    "sdxl_embedding": ("clip_l", "clip_g"),
}


def write_model(path: Path, what: str, *, seed: int = 0) -> Path:
    """A small .safetensors file whose tensor names are those of ``what`` (a key of
    ``NAMES``); ``seed`` changes the values, so two files differ in content."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({name: rng.standard_normal((2, 4)).astype(np.float16) for name in NAMES[what]},
              str(path))
    return path


def short_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def a1111_tree(base: Path) -> dict[str, Path]:
    """``base/stable-diffusion-webui`` with a checkpoint of each family, LoRAs, an
    embedding next to ``models`` (where A1111 keeps them), a pickle and a preview.
    Returns the model files by their expected name."""
    webui = base / "stable-diffusion-webui"
    models = webui / "models"
    files = {
        "v1-5-pruned": write_model(models / "Stable-diffusion" / "v1-5-pruned.safetensors",
                                   "sd1_checkpoint", seed=1),
        "ponyDiffusionV6XL": write_model(
            models / "Stable-diffusion" / "SDXL" / "ponyDiffusionV6XL.safetensors",
            "sdxl_checkpoint", seed=2),
        "add_detail": write_model(models / "Lora" / "add_detail.safetensors", "sd1_lora", seed=3),
        "xl_more_art": write_model(models / "Lora" / "xl_more_art.safetensors", "sdxl_lora",
                                   seed=4),
        "easynegative": write_model(webui / "embeddings" / "easynegative.safetensors",
                                    "sd1_embedding", seed=5),
    }
    old = models / "Stable-diffusion" / "old-model.ckpt"
    old.write_bytes(b"\x80\x04not really a pickle")
    files["old-model"] = old
    (models / "Stable-diffusion" / "v1-5-pruned.preview.png").write_bytes(b"\x89PNG preview")
    vae = models / "VAE" / "vae-ft-mse.safetensors"  # another kind of model: not listed
    write_model(vae, "sd1_checkpoint", seed=6)
    return files


def comfyui_tree(base: Path) -> dict[str, Path]:
    """``base/ComfyUI/models`` with checkpoints/, loras/ and embeddings/."""
    models = base / "ComfyUI" / "models"
    files = {
        "juggernautXL": write_model(models / "checkpoints" / "juggernautXL.safetensors",
                                    "sdxl_checkpoint", seed=11),
        "detail_tweaker_xl": write_model(models / "loras" / "detail_tweaker_xl.safetensors",
                                         "sdxl_lora", seed=12),
        "negativeXL": write_model(models / "embeddings" / "negativeXL.safetensors",
                                  "sdxl_embedding", seed=13),
    }
    (models / "loras" / "detail_tweaker_xl.png").write_bytes(b"\x89PNG preview")
    write_model(models / "controlnet" / "control_canny.safetensors", "sd1_checkpoint", seed=14)
    return files
