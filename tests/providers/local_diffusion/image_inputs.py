"""Source images and masks for the local provider's image-work tests (no torch here)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from desktop_app.domain.image_work import ImageRef
from desktop_app.store.input_images import InputImages


def gradient_png(width: int, height: int) -> bytes:
    """A picture with structure (no two neighbouring pixels alike), so a pixel kept
    from the source is told from one the model painted."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([(x * 255) // max(1, width - 1), (y * 255) // max(1, height - 1),
                       ((x * 7 + y * 13) % 256)], axis=-1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format="PNG")
    return out.getvalue()


def box_mask_png(width: int, height: int, box: tuple[int, int, int, int]) -> bytes:
    """White (repaint) inside ``box`` (left, top, right, bottom), black elsewhere."""
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, box)
    out = io.BytesIO()
    mask.save(out, format="PNG")
    return out.getvalue()


def store(data_dir: Path, data: bytes, role: str = "source") -> ImageRef:
    return InputImages.in_profile(data_dir).add(data, role)  # type: ignore[arg-type]


def pixels(png: bytes, mode: str = "RGB") -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert(mode)).astype(np.int16)


def stored_pixels(data_dir: Path, ref: ImageRef, mode: str = "RGB") -> np.ndarray:
    return pixels(InputImages.in_profile(data_dir).read(ref), mode)
