"""Cheap previews from latents (worker side): a linear latent -> RGB map, no VAE.

The factors are the widely used approximations for SD 1.x/2.x and SDXL latents
(as in ComfyUI's latent previewer); for the tiny model they give coloured noise,
which is what that model makes anyway.
"""

from __future__ import annotations

import io
from typing import Any

SD_FACTORS = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.4549),
)
SDXL_FACTORS = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)
SDXL_BIAS = (0.1084, -0.0175, -0.0011)


def latent_preview_png(latents: Any, *, sdxl: bool = False) -> bytes | None:
    """A small PNG (1/8 of the output size) of the first latent of a batch, or None."""
    import torch
    from PIL import Image

    if latents is None or latents.ndim != 4 or latents.shape[1] != 4:
        return None
    with torch.no_grad():
        latent = latents[0].detach().to("cpu", torch.float32)
        factors = torch.tensor(SDXL_FACTORS if sdxl else SD_FACTORS)
        rgb = torch.einsum("chw,cr->hwr", latent, factors)
        if sdxl:
            rgb = rgb + torch.tensor(SDXL_BIAS)
        pixels = ((rgb + 1.0) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
