"""Run as a child process: the built-in tiny model turned into an *inpainting* model
(a UNet of 9 input channels: latents, mask, masked image), saved as a diffusers folder.

    python make_inpainting_model.py <data dir with the built tiny model> <target folder>
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(data_dir: Path, target: Path) -> None:
    import torch
    from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel

    from desktop_app.providers.local_diffusion.gpu_worker.tiny_model import build_tiny_pipeline

    base = data_dir / "models" / "builtin-tiny"
    if not (base / "model_index.json").is_file():
        build_tiny_pipeline(base)
    pipe = StableDiffusionInpaintPipeline.from_pretrained(
        str(base), local_files_only=True, dtype=torch.float32, safety_checker=None,
        requires_safety_checker=False)
    torch.manual_seed(9)
    config = {**pipe.unet.config, "in_channels": 9}
    pipe.unet = UNet2DConditionModel.from_config(config)
    pipe.register_modules(unet=pipe.unet)
    pipe.save_pretrained(str(target), safe_serialization=True)
    print(pipe.unet.config.in_channels)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
