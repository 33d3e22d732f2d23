"""Tiny LoRAs and embeddings for the built-in tiny model, made at test time (offline,
random, seeded), in the layouts users download; and the pixels diffusers itself
makes with them. Run as a child process (torch stays out of the test process):

    python -m tests.providers.local_diffusion.tiny_networks OUT DATA_DIR
        -> OUT/A1111/models/Lora/grain.safetensors   kohya/A1111 layout: UNet and text
                                                      encoder (lora_unet_*, lora_te_*,
                                                      lora_down/lora_up/alpha)
           OUT/A1111/models/Lora/styles/moody.safetensors   diffusers layout, UNet only
           OUT/A1111/embeddings/shinystyle.safetensors      A1111 embedding (emb_params)
        and one JSON line: base64 PNGs diffusers made directly (see ``JOBS``)
"""

from __future__ import annotations

import base64
import copy
import io
import json
import sys
from pathlib import Path
from typing import Any

PROMPT = "a lighthouse at dusk"
EMBEDDING_PROMPT = "a lighthouse at dusk, shinystyle"
SEED, STEPS, SIZE, GUIDANCE = 7, 4, 64, 7.0
RANK = 4


def unet_lora(unet: Any, seed: int) -> dict[str, Any]:
    """A random LoRA of the UNet's attention projections, as peft names it."""
    import torch
    from peft import LoraConfig, get_peft_model_state_dict

    torch.manual_seed(seed)
    copied = copy.deepcopy(unet)
    copied.add_adapter(LoraConfig(r=RANK, lora_alpha=RANK, init_lora_weights=False,
                                  target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    return {k: v.contiguous() for k, v in get_peft_model_state_dict(copied).items()}


def kohya_text_encoder(text_encoder: Any, seed: int) -> dict[str, Any]:
    """``lora_te_*`` tensors for the q and v projections of every layer, with an alpha
    of half the rank (so the scale alpha/rank matters)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    out: dict[str, Any] = {}
    for name, module in text_encoder.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith(("q_proj", "v_proj")):
            key = "lora_te_" + name.replace(".", "_")
            out[f"{key}.lora_down.weight"] = torch.randn(
                RANK, module.in_features, generator=generator) * 0.5
            out[f"{key}.lora_up.weight"] = torch.randn(
                module.out_features, RANK, generator=generator) * 0.5
            out[f"{key}.alpha"] = torch.tensor(RANK / 2)
    return out


def _png(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def main() -> None:
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_kohya
    from safetensors.torch import save_file

    from desktop_app.providers.local_diffusion.gpu_worker.tiny_model import build_tiny_pipeline

    torch.set_num_threads(2)  # as the provider under test runs its worker
    out, data_dir = Path(sys.argv[1]), Path(sys.argv[2])
    tiny = data_dir / "models" / "builtin-tiny"
    if not tiny.exists():
        build_tiny_pipeline(tiny)
    pipe: Any = StableDiffusionPipeline.from_pretrained(
        tiny, local_files_only=True, dtype=torch.float32, safety_checker=None,
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    loras = out / "A1111" / "models" / "Lora"
    (loras / "styles").mkdir(parents=True, exist_ok=True)
    (out / "A1111" / "embeddings").mkdir(parents=True, exist_ok=True)
    (out / "A1111" / "models" / "Stable-diffusion").mkdir(parents=True, exist_ok=True)
    grain = convert_state_dict_to_kohya({f"unet.{k}": v for k, v in
                                         unet_lora(pipe.unet, 1).items()})
    grain.update(kohya_text_encoder(pipe.text_encoder, 2))
    save_file({k: v.contiguous() for k, v in grain.items()}, str(loras / "grain.safetensors"),
              metadata={"ss_output_name": "grain"})
    moody = {f"unet.{k}": v for k, v in unet_lora(pipe.unet, 3).items()}
    save_file(moody, str(loras / "styles" / "moody.safetensors"))
    torch.manual_seed(4)
    width = pipe.text_encoder.config.hidden_size
    save_file({"emb_params": torch.randn(2, width) * 0.5},
              str(out / "A1111" / "embeddings" / "shinystyle.safetensors"))

    def make(prompt: str = PROMPT) -> str:
        image = pipe(prompt=prompt, width=SIZE, height=SIZE, num_inference_steps=STEPS,
                     guidance_scale=GUIDANCE, generator=torch.Generator("cpu").manual_seed(SEED),
                     output_type="pil").images[0]
        return _png(image)

    found = {"base": make(), "embedding_plain": make(EMBEDDING_PROMPT)}
    pipe.load_textual_inversion(str(out / "A1111" / "embeddings" / "shinystyle.safetensors"),
                                token="shinystyle")
    found["embedding"] = make(EMBEDDING_PROMPT)
    pipe.unload_textual_inversion()
    pipe.load_lora_weights(str(loras / "styles" / "moody.safetensors"), adapter_name="moody")
    pipe.set_adapters(["moody"], [0.7])
    found["moody_0.7"] = make()
    print(json.dumps(found))


if __name__ == "__main__":
    main()
