"""Issue 14's "Done when", the part that needs torch (run as a child process):

    python -m tests.providers.local_diffusion.tiny_xl_lora OUT

writes a folder laid out like an Automatic1111 install (``OUT/stable-diffusion-webui``)
holding a tiny SDXL checkpoint in the original single-file layout, an SDXL LoRA in
kohya's layout (UNet, both text encoders, kohya's SDXL metadata) and an SDXL
embedding (clip_l / clip_g); loads the checkpoint through the product's single-file
loader; finds the LoRA and the embedding through the model library as the local
provider does, for the prompt ``... <lora:xl_grain:0.7>``; and runs the GPU worker's
job code. Prints one JSON line: the PNGs made (with the LoRA at 0.7, at 0, none),
the details the provider would attach, and what the library listed.
"""

from __future__ import annotations

import base64
import json
import sys
import types
from pathlib import Path
from typing import Any

from tests.providers.local_diffusion.original_layout import (
    build_tiny_sdxl,
    pipeline_to_original,
    save_skeletons,
)
from tests.providers.local_diffusion.tiny_networks import kohya_text_encoder, unet_lora

PROMPT = "a lighthouse at dusk, xl_shiny <lora:xl_grain:0.7>"


def main() -> None:
    import torch
    from diffusers.utils import convert_state_dict_to_kohya
    from safetensors.torch import save_file

    from desktop_app.domain.request import GenerationRequest
    from desktop_app.providers.local_diffusion.config import Architecture
    from desktop_app.providers.local_diffusion.gpu_worker.device_choice import Device
    from desktop_app.providers.local_diffusion.gpu_worker.loading import (
        LoadedModel,
        load_single_file,
    )
    from desktop_app.providers.local_diffusion.gpu_worker.main import Worker
    from desktop_app.providers.local_diffusion.hashing import model_hash
    from desktop_app.providers.local_diffusion.library import roots as library_roots
    from desktop_app.providers.local_diffusion.library import scan
    from desktop_app.providers.local_diffusion.messages import (
        DeviceInfo,
        ImageDone,
        JobDone,
        JobFailed,
        RunJob,
    )
    from desktop_app.providers.local_diffusion.network_files import job_networks, network_index

    torch.set_num_threads(2)
    out = Path(sys.argv[1])
    webui = out / "stable-diffusion-webui"
    models = webui / "models"
    for folder in (models / "Stable-diffusion", models / "Lora", webui / "embeddings"):
        folder.mkdir(parents=True, exist_ok=True)
    built: Any = build_tiny_sdxl()
    save_skeletons(built, out / "skeletons", "sdxl")
    checkpoint = models / "Stable-diffusion" / "tiny-xl.safetensors"
    save_file(pipeline_to_original(built), str(checkpoint))
    lora = convert_state_dict_to_kohya({f"unet.{k}": v for k, v in
                                        unet_lora(built.unet, 5).items()})
    for prefix, encoder, seed in (("lora_te1_", built.text_encoder, 6),
                                  ("lora_te2_", built.text_encoder_2, 7)):
        lora.update({prefix + k.removeprefix("lora_te_"): v
                     for k, v in kohya_text_encoder(encoder, seed).items()})
    save_file({k: v.contiguous() for k, v in lora.items()},
              str(models / "Lora" / "xl_grain.safetensors"),
              metadata={"ss_base_model_version": "sdxl_base_v1-0",
                        "ss_output_name": "xl_grain"})
    torch.manual_seed(8)
    save_file({"clip_l": torch.randn(1, 32) * 0.5, "clip_g": torch.randn(1, 48) * 0.5},
              str(webui / "embeddings" / "xl_shiny.safetensors"))

    profile_models = out / "profile" / "models"
    listed = scan(library_roots(out / "no-hf-cache", profile_models, [models])).entries
    index = network_index(profile_models, [models], out / "no-hf-cache")

    cpu = Device("cpu", torch.float32, DeviceInfo("cpu", "CPU", None, "float32", "test"))
    pipe, family = load_single_file(checkpoint, cpu, skeletons=out / "skeletons")
    pipe.set_progress_bar_config(disable=True)
    sent: list[object] = []
    settings: Any = types.SimpleNamespace(torch_threads=2)  # run() reads none of the rest
    events: Any = types.SimpleNamespace(send=sent.append)
    worker = Worker(settings, events, types.SimpleNamespace(value=0))
    worker.device = cpu
    key = (str(checkpoint), cpu.torch_device, cpu.info.dtype)
    short = model_hash(checkpoint, profile_models / "hash-cache.json")  # as load_model does
    worker.loaded = LoadedModel(key=key, pipe=pipe, label="tiny-xl", model_hash=short,
                                architecture=Architecture.SDXL,
                                default_scheduler=pipe.scheduler, load_s=0.0)
    found: dict[str, Any] = {"family": family.value, "listed": [
        [e.name, e.kind, e.family, e.loadable] for e in listed]}
    for label, prompt in (("lora_0.7", PROMPT), ("lora_0", PROMPT.replace("0.7", "0")),
                          ("none", PROMPT.replace(" <lora:xl_grain:0.7>", ""))):
        request = GenerationRequest(prompt=prompt, width=64, height=64, steps=2, seed=11,
                                    guidance=5.0)
        networks = job_networks(request, index, profile_models)
        sent.clear()
        worker.run(RunJob(job_id=1, model=str(checkpoint), prompt=networks.prompt,
                          negative_prompt=networks.negative_prompt, width=64, height=64,
                          steps=2, guidance=5.0, seeds=(11,), scheduler="default",
                          preview_every=0, loras=networks.loras,
                          embeddings=networks.embeddings))
        failed = [m for m in sent if isinstance(m, JobFailed)]
        assert not failed, failed
        [done] = [m for m in sent if isinstance(m, JobDone)]
        [image] = [m for m in sent if isinstance(m, ImageDone)]
        found[label] = {"png": base64.b64encode(image.png).decode(),
                        "details": {**done.details, **networks.details()}}
    print(json.dumps(found))


if __name__ == "__main__":
    main()
