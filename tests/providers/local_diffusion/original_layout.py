"""Checkpoints in the original single-file layout, built offline (issue 14.1, 14 proofs).

Users download one ``.safetensors`` file in the layout of the original training code
(CompVis/SGM: ``model.diffusion_model.input_blocks.…``, ``first_stage_model.…``,
``cond_stage_model.…`` or ``conditioner.embedders.{0,1}.…``), not diffusers folders.
diffusers reads that layout but has no writer for it, so this module writes one from a
diffusers pipeline, inverting the renames of ``diffusers.loaders.single_file_utils``
(its ``DIFFUSERS_TO_LDM_MAPPING`` tables plus the block numbering of the LDM UNet
and VAE). Round trip is the proof: the tests load the written file with diffusers'
own reader and get back every tensor of the pipeline it came from.

Run as a script in a child process (tests keep torch out of the pytest process):
``python -m tests.providers.local_diffusion.original_layout tiny-sdxl OUT_DIR``,
``… full-sd15 OUT_DIR`` or ``… full-sdxl OUT_DIR``; it prints one JSON line of findings.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
SD1_TEXT_PREFIX = "cond_stage_model.transformer."
XL_TEXT_PREFIX = "conditioner.embedders.0.transformer."
XL_TEXT_2_PREFIX = "conditioner.embedders.1.model."
BUILD_SEED = 20261203


def _renamed(state: dict[str, Any], prefixes: dict[str, str]) -> dict[str, Any]:
    """Each key with its longest matching diffusers prefix replaced."""
    order = sorted(prefixes, key=len, reverse=True)
    out = {}
    for key, value in state.items():
        for old in order:
            if key.startswith(old):
                out[prefixes[old] + key[len(old):]] = value
                break
        else:
            raise KeyError(f"no original name for {key}")
    return out


RESNET_UNET = {"norm1.": "in_layers.0.", "conv1.": "in_layers.2.", "time_emb_proj.":
               "emb_layers.1.", "norm2.": "out_layers.0.", "conv2.": "out_layers.3.",
               "conv_shortcut.": "skip_connection."}


def unet_to_original(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING as MAPPING

    tables: Any = MAPPING["unet"]
    direct = {**tables["layers"], **tables["addition_embed_type"]}
    blocks = len(config["block_out_channels"])
    per = config["layers_per_block"]
    prefixes: dict[str, str] = {}
    resnets: dict[str, str] = {}
    for i in range(blocks):
        for j in range(per):
            resnets[f"down_blocks.{i}.resnets.{j}."] = f"input_blocks.{i * (per + 1) + j + 1}.0."
            prefixes[f"down_blocks.{i}.attentions.{j}."] = (
                f"input_blocks.{i * (per + 1) + j + 1}.1.")
        if i < blocks - 1:
            prefixes[f"down_blocks.{i}.downsamplers.0.conv."] = (
                f"input_blocks.{(i + 1) * (per + 1)}.0.op.")
    for i in range(blocks):
        for j in range(per + 1):
            resnets[f"up_blocks.{i}.resnets.{j}."] = f"output_blocks.{i * (per + 1) + j}.0."
            prefixes[f"up_blocks.{i}.attentions.{j}."] = f"output_blocks.{i * (per + 1) + j}.1."
        if i < blocks - 1:
            slot = 2 if "CrossAttn" in config["up_block_types"][i] else 1
            prefixes[f"up_blocks.{i}.upsamplers.0."] = (
                f"output_blocks.{i * (per + 1) + per}.{slot}.")
    resnets["mid_block.resnets.0."] = "middle_block.0."
    resnets["mid_block.resnets.1."] = "middle_block.2."
    prefixes["mid_block.attentions.0."] = "middle_block.1."
    out: dict[str, Any] = {}
    rest = {}
    for key, value in state.items():
        if key in direct:
            out[direct[key]] = value
            continue
        block = next((p for p in resnets if key.startswith(p)), None)
        if block is None:
            rest[key] = value
            continue
        inner = key[len(block):]
        part = next(p for p in RESNET_UNET if inner.startswith(p))
        out[resnets[block] + RESNET_UNET[part] + inner[len(part):]] = value
    out.update(_renamed(rest, prefixes))
    return {UNET_PREFIX + k: v for k, v in out.items()}


VAE_ATTENTION = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.",
                 "to_out.0.": "proj_out."}


def vae_to_original(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING as MAPPING

    tables: Any = MAPPING

    direct = tables["vae"]
    blocks = len(config["block_out_channels"])
    prefixes: dict[str, str] = {}
    for i in range(blocks):
        prefixes[f"encoder.down_blocks.{i}.resnets."] = f"encoder.down.{i}.block."
        prefixes[f"encoder.down_blocks.{i}.downsamplers.0."] = f"encoder.down.{i}.downsample."
        prefixes[f"decoder.up_blocks.{i}.resnets."] = f"decoder.up.{blocks - 1 - i}.block."
        prefixes[f"decoder.up_blocks.{i}.upsamplers.0."] = (
            f"decoder.up.{blocks - 1 - i}.upsample.")
    for side in ("encoder", "decoder"):
        prefixes[f"{side}.mid_block.resnets.0."] = f"{side}.mid.block_1."
        prefixes[f"{side}.mid_block.resnets.1."] = f"{side}.mid.block_2."
        prefixes[f"{side}.mid_block.attentions.0."] = f"{side}.mid.attn_1."
    out: dict[str, Any] = {}
    rest = {}
    for key, value in state.items():
        if key in direct:
            out[direct[key]] = value
        else:
            rest[key] = value
    for key, value in _renamed(rest, prefixes).items():
        if ".mid.attn_1." in key:
            head, inner = key.split(".mid.attn_1.")
            part = next(p for p in VAE_ATTENTION if inner.startswith(p))
            key = f"{head}.mid.attn_1.{VAE_ATTENTION[part]}{inner[len(part):]}"
            if part != "group_norm." and key.endswith(".weight"):
                value = value[:, :, None, None]  # linear -> 1x1 convolution
        out[key.replace(".conv_shortcut.", ".nin_shortcut.")] = value
    return {VAE_PREFIX + k: v for k, v in out.items()}


OPENCLIP_LAYER = {"layer_norm1.": "ln_1.", "layer_norm2.": "ln_2.", "mlp.fc1.": "mlp.c_fc.",
                  "mlp.fc2.": "mlp.c_proj.", "self_attn.out_proj.": "attn.out_proj."}


def open_clip_to_original(state: dict[str, Any]) -> dict[str, Any]:
    import torch
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING as MAPPING

    tables: Any = MAPPING

    direct = tables["openclip"]["layers"]
    out: dict[str, Any] = {}
    qkv: dict[str, dict[str, Any]] = {}
    for key, value in state.items():
        if key in direct:
            out[direct[key]] = value.T.contiguous() if key == "text_projection.weight" else value
            continue
        layer = key.removeprefix("text_model.encoder.layers.")
        index, inner = layer.split(".", 1)
        block = f"transformer.resblocks.{index}."
        if inner.startswith(("self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj.")):
            kind = inner.rsplit(".", 1)[1]
            qkv.setdefault(f"{block}attn.in_proj_{kind}", {})[inner[10]] = value
            continue
        part = next(p for p in OPENCLIP_LAYER if inner.startswith(p))
        out[block + OPENCLIP_LAYER[part] + inner[len(part):]] = value
    for key, parts in qkv.items():
        out[key] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return {XL_TEXT_2_PREFIX + k: v for k, v in out.items()}


def pipeline_to_original(pipe: Any) -> dict[str, Any]:
    """All of an SD 1.x or SDXL pipeline's weights under their original names."""
    state = {**unet_to_original(pipe.unet.state_dict(), dict(pipe.unet.config)),
             **vae_to_original(pipe.vae.state_dict(), dict(pipe.vae.config))}
    # transformers 5 names CLIPTextModel's tensors without the "text_model." the files have
    text = {k if k.startswith("text_model.") else f"text_model.{k}": v
            for k, v in pipe.text_encoder.state_dict().items()}
    if getattr(pipe, "text_encoder_2", None) is None:
        state.update({SD1_TEXT_PREFIX + k: v for k, v in text.items()})
    else:
        state.update({XL_TEXT_PREFIX + k: v for k, v in text.items()})
        state.update(open_clip_to_original(pipe.text_encoder_2.state_dict()))
    return {k: v.contiguous() for k, v in state.items()}


# -- a tiny SDXL pipeline, built like the built-in SD 1.x tiny model ----------------------


def build_tiny_sdxl(seed: int = BUILD_SEED) -> Any:
    """A randomly initialised SDXL-shaped pipeline (two CLIP text encoders, a UNet with
    SDXL's "text_time" conditioning and its block layout, a latent-×8 VAE)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from desktop_app.providers.local_diffusion.gpu_worker.loading import SDXL_SECOND_PAD
    from desktop_app.providers.local_diffusion.gpu_worker.tiny_model import _tokenizer

    tokenizer: Any = _tokenizer()
    tokenizer_2: Any = _tokenizer()
    tokenizer_2.pad_token = SDXL_SECOND_PAD
    vocab = len(tokenizer)

    def text_config(width: int, layers: int) -> Any:
        return CLIPTextConfig(bos_token_id=vocab - 2, eos_token_id=vocab - 1,
                              pad_token_id=vocab - 1, hidden_size=width,
                              intermediate_size=37, num_attention_heads=4,
                              num_hidden_layers=layers, vocab_size=vocab,
                              max_position_embeddings=77, projection_dim=width,
                              hidden_act="gelu")

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64, 64), layers_per_block=2, sample_size=32,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32 + 48, attention_head_dim=(2, 4, 4), norm_num_groups=32,
        use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 48,
        transformer_layers_per_block=(1, 1, 2))
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(block_out_channels=(16, 32, 32, 32), latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=1,
                        norm_num_groups=16, sample_size=256, scaling_factor=0.13025)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(text_config(32, 3))
    torch.manual_seed(seed + 3)
    # wider than the first, as in SDXL (768 and 1280): diffusers tells them apart by width
    text_encoder_2 = CLIPTextModelWithProjection(text_config(48, 10))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                       beta_schedule="scaled_linear", steps_offset=1,
                                       timestep_spacing="leading")
    return StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder,
                                     text_encoder_2=text_encoder_2, tokenizer=tokenizer,
                                     tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler)


def save_skeletons(pipe: Any, root: Path, family: str) -> Path:
    """The configs of ``pipe`` (no weights) as a skeleton folder ``root/family``, and its
    tokenizer as ``root/sd15/tokenizer`` (where the loader finds CLIP's vocabulary)."""
    folder = root / "pipeline"
    pipe.save_pretrained(folder, safe_serialization=True)
    for config in folder.rglob("*.json"):
        target = root / family / config.relative_to(folder)
        if not target.parent.name.startswith("tokenizer"):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(config.read_bytes())
    # as the shipped SD 1.5 skeleton holds it: vocab.json and merges.txt (none here)
    tokenizer = root / "sd15" / "tokenizer"
    pipe.tokenizer.save_pretrained(tokenizer)
    (tokenizer / "tokenizer.json").unlink(missing_ok=True)
    (tokenizer / "vocab.json").write_text(json.dumps(pipe.tokenizer.get_vocab()))
    (tokenizer / "merges.txt").write_text("#version: 0.2\n")
    (tokenizer / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
         "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}))
    return folder


def _pixels(pipe: Any, seed: int) -> Any:
    import numpy as np
    import torch

    image = pipe(prompt="a lighthouse at dusk", negative_prompt="fog", width=64, height=64,
                 num_inference_steps=2, guidance_scale=5.0,
                 generator=torch.Generator("cpu").manual_seed(seed)).images[0]
    return np.asarray(image)


def _worker_pixels(pipe: Any, seed: int) -> tuple[Any, list[list[object]]]:
    """The image the GPU worker's own generation code makes with ``pipe`` (as it would
    after loading the file), and the steps it reported (step, total, has a preview)."""
    import types

    import numpy as np

    from desktop_app.providers.local_diffusion.config import Architecture
    from desktop_app.providers.local_diffusion.gpu_worker.loading import LoadedModel
    from desktop_app.providers.local_diffusion.gpu_worker.main import Worker
    from desktop_app.providers.local_diffusion.messages import RunJob, Step

    sent: list[object] = []
    events: Any = types.SimpleNamespace(send=sent.append)
    no_settings: Any = None  # _generate reads none of them
    worker = Worker(no_settings, events, types.SimpleNamespace(value=0))
    loaded = LoadedModel(key=("m", "cpu", "float32"), pipe=pipe, label="tiny SDXL",
                         model_hash="0" * 10, architecture=Architecture.SDXL,
                         default_scheduler=pipe.scheduler, load_s=0.0)
    job = RunJob(job_id=1, model="m", prompt="a lighthouse at dusk", negative_prompt="fog",
                 width=64, height=64, steps=2, guidance=5.0, seeds=(seed,),
                 scheduler="default", preview_every=1)
    image = worker._generate(loaded, job, 0, seed)
    steps: list[list[object]] = [[m.step, m.total, m.preview_png is not None]
                                 for m in sent if isinstance(m, Step)]
    return np.asarray(image), steps


def tiny_sdxl(out: Path) -> dict[str, object]:
    import torch
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import save_file

    from desktop_app.providers.local_diffusion.config import Architecture
    from desktop_app.providers.local_diffusion.gpu_worker.device_choice import Device
    from desktop_app.providers.local_diffusion.gpu_worker.loading import load_single_file
    from desktop_app.providers.local_diffusion.messages import DeviceInfo

    built = build_tiny_sdxl()
    folder = save_skeletons(built, out / "skeletons", "sdxl")
    checkpoint = out / "tiny-sdxl.safetensors"
    save_file(pipeline_to_original(built), str(checkpoint))
    cpu = Device("cpu", torch.float32, DeviceInfo("cpu", "CPU", None, "float32", "test"))
    ours, family = load_single_file(checkpoint, cpu, skeletons=out / "skeletons")
    direct = StableDiffusionXLPipeline.from_pretrained(folder, local_files_only=True)
    for pipe in (ours, direct):
        pipe.set_progress_bar_config(disable=True)
    mismatched = [
        f"{part}.{key}" for part in ("unet", "vae", "text_encoder", "text_encoder_2")
        for key, value in getattr(built, part).state_dict().items()
        if (mine := getattr(ours, part).state_dict()[key]).is_meta
        or not torch.equal(value, mine)]
    same = _pixels(ours, 11)
    through_worker, steps = _worker_pixels(ours, 11)
    return {"family": family is Architecture.SDXL and "sdxl",
            "pipeline": type(ours).__name__,
            "prefixes": sorted({".".join(k.split(".")[:2]) for k in pipeline_to_original(built)}),
            "mismatched": mismatched[:5],
            "same_pixels": bool((same == _pixels(direct, 11)).all()),
            "other_seed_differs": bool((same != _pixels(ours, 12)).any()),
            "tokenizer_2_pad": ours.tokenizer_2.pad_token,
            "worker_same_pixels": bool((through_worker == same).all()),
            "worker_steps": steps}


def _fingerprint(tensor: Any) -> tuple[object, ...]:
    """Shape, exact sum and the first and last values of an fp16 tensor: a tensor that
    landed in the wrong place, or changed on the way, does not keep all of them."""
    import torch

    flat = tensor.detach().reshape(-1)
    return (tuple(tensor.shape), float(flat.to(torch.float64).sum()),
            flat[:64].tolist(), flat[-64:].tolist())


class RandomPart:
    """A model's config and a random fp16 state dict of its full shapes, made without
    initialising the model (it is built on the meta device): seconds, not minutes."""

    def __init__(self, model: Any, config: Any) -> None:
        import torch

        self.config = config
        self._state = {k: (torch.randn(v.shape, dtype=torch.float16) * 0.02)
                       for k, v in model.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        return self._state


def full_size(out: Path, family: str) -> dict[str, object]:
    """A full-size SD 1.5 or SDXL base checkpoint with random fp16 weights, written in
    the original layout (as downloaded), loaded through the product's single-file path
    with its shipped skeleton, and one step run at 64 px (on CUDA when there is one)."""
    import torch
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from desktop_app.providers.local_diffusion.gpu_worker.device_choice import Device
    from desktop_app.providers.local_diffusion.gpu_worker.loading import (
        SKELETONS,
        load_single_file,
    )
    from desktop_app.providers.local_diffusion.messages import DeviceInfo

    class Parts:
        text_encoder_2: Any = None

    started = time.perf_counter()
    torch.manual_seed(BUILD_SEED)
    skeleton = SKELETONS / ("sd15" if family == "sd15" else "sdxl")
    parts: Any = Parts()
    with init_empty_weights():
        unet_config = UNet2DConditionModel.load_config(skeleton / "unet")
        vae_config = AutoencoderKL.load_config(skeleton / "vae")
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(skeleton / "text_encoder"))
        unet = UNet2DConditionModel.from_config(unet_config)
        vae = AutoencoderKL.from_config(vae_config)
        text_2 = (CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(
            skeleton / "text_encoder_2")) if family == "sdxl" else None)
    parts.unet, parts.vae = RandomPart(unet, unet_config), RandomPart(vae, vae_config)
    parts.text_encoder = RandomPart(text, text.config)
    if text_2 is not None:
        parts.text_encoder_2 = RandomPart(text_2, text_2.config)
    state = pipeline_to_original(parts)
    params = sum(v.numel() for v in state.values())
    checkpoint = out / f"{family}-full-random.safetensors"
    save_file(state, str(checkpoint))
    # Only a fingerprint of each UNet tensor is kept for the check: the random weights
    # themselves (7 GB for SDXL) would share the memory with the loaded model's fp32 copy.
    written_unet = {key: _fingerprint(value) for key, value in parts.unet.state_dict().items()}
    del state, parts
    written = time.perf_counter()
    if torch.cuda.is_available():
        device = Device("cuda", torch.float16, DeviceInfo("cuda", torch.cuda.get_device_name(0),
                                                          None, "float16", "test"))
    else:
        device = Device("cpu", torch.float32, DeviceInfo("cpu", "CPU", None, "float32", "test"))
    pipe, found = load_single_file(checkpoint, device)
    pipe.set_progress_bar_config(disable=True)
    loaded_unet = pipe.unet.state_dict()
    mismatched = [key for key, print_ in written_unet.items()
                  if key not in loaded_unet
                  or _fingerprint(loaded_unet[key].to(torch.float16)) != print_]
    pipe.to(device.torch_device)
    loaded = time.perf_counter()
    image = pipe(prompt="a lighthouse", width=64, height=64, num_inference_steps=1,
                 generator=torch.Generator("cpu").manual_seed(1)).images[0]
    return {"family": found.value, "params": params, "size": list(image.size),
            "device": device.torch_device, "pipeline": type(pipe).__name__,
            "file_bytes": checkpoint.stat().st_size, "unet_mismatched": mismatched[:5],
            "write_s": round(written - started, 1), "load_s": round(loaded - written, 1),
            "step_s": round(time.perf_counter() - loaded, 1)}


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    what, out = sys.argv[1], Path(sys.argv[2])
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    if what == "save-tiny-sdxl":  # for bench/: the folder, its skeletons and the file
        built = build_tiny_sdxl()
        save_skeletons(built, out / "skeletons", "sdxl")
        from safetensors.torch import save_file

        save_file(pipeline_to_original(built), str(out / "tiny-sdxl.safetensors"))
        print(json.dumps({"folder": str(out / "skeletons" / "pipeline")}))
        return
    found = tiny_sdxl(out) if what == "tiny-sdxl" else full_size(out, what.removeprefix("full-"))
    print(json.dumps(found))


if __name__ == "__main__":
    main()
