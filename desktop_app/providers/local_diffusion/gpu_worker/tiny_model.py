"""The built-in tiny model: a Stable-Diffusion-shaped pipeline with random weights.

Worker side only (imports torch/diffusers/transformers inside the function).
Built offline and deterministically at first use, then saved to the data dir
and reused. The geometry is SD-like (latent scale factor 8, cross-attention
UNet, CLIP text encoder) so it exercises every line of the real pipeline, but
it is tiny: ~10 MB, 64 px / 4 steps in a fraction of a second on a CPU. It
draws noise-like pictures and is labelled as a test model wherever it appears.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

BUILD_SEED = 20261130
VOCAB_BYTES = 512


def _byte_symbols() -> list[str]:
    """GPT-2/CLIP's reversible byte -> printable character table, in byte order."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    table: dict[int, str] = {}
    extra = 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def _tokenizer() -> object:
    from transformers import CLIPTokenizer

    # transformers 5's CLIPTokenizer accepts an in-memory vocabulary: a
    # byte-level one (no merges) is enough to tokenise any prompt offline.
    symbols = _byte_symbols()
    vocab: dict[str, int] = {}
    for sym in symbols:
        vocab[sym] = len(vocab)
    for sym in symbols:
        vocab[sym + "</w>"] = len(vocab)
    vocab = {k: v for k, v in vocab.items() if v < VOCAB_BYTES}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def build_tiny_pipeline(target: Path) -> None:
    """Build the tiny pipeline and save it as a diffusers folder at ``target``.

    Written to a temporary folder beside ``target`` and renamed into place, so
    a crash mid-build never leaves a half-written model behind.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = _tokenizer()
    vocab_size = len(tokenizer)  # type: ignore[arg-type]

    torch.manual_seed(BUILD_SEED)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    torch.manual_seed(BUILD_SEED + 1)
    vae = AutoencoderKL(
        block_out_channels=(16, 32, 32, 32),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=16,
        sample_size=256,
    )
    torch.manual_seed(BUILD_SEED + 2)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=vocab_size - 2,
            eos_token_id=vocab_size - 1,
            pad_token_id=vocab_size - 1,
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=5,
            vocab_size=vocab_size,
            max_position_embeddings=77,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe: Any = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        pipe.save_pretrained(tmp, safe_serialization=True)
        if target.exists():  # another worker finished first
            shutil.rmtree(tmp, ignore_errors=True)
            return
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
