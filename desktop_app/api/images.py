"""Images a client sends: base64 text or form parts, bounded in size before a pixel
is decoded, and masks turned into ImageDesk's convention (white = repaint,
``domain/image_work.py``) from OpenAI's (transparent = edit) or A1111's."""

from __future__ import annotations

import base64
import binascii
import io
import re

from PIL import Image, ImageOps, UnidentifiedImageError

from desktop_app.api.errors import ApiError
from desktop_app.store.image_metadata import bomb_guard

MAX_IMAGE_SIDE = 4096  # the largest image the API takes (the output cap is the same)
_DATA_URL = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)


def decode_base64(text: object, param: str) -> bytes:
    """A base64 image (A1111 also accepts a ``data:image/png;base64,`` prefix)."""
    if not isinstance(text, str) or not text:
        raise ApiError(400, f"{param} must be a base64-encoded image.", param=param)
    text = _DATA_URL.sub("", text.strip(), count=1)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{param} is not valid base64.", param=param) from None


def _open(data: bytes, param: str) -> Image.Image:
    try:
        with bomb_guard():
            image = Image.open(io.BytesIO(data), formats=("PNG", "JPEG", "WEBP"))
            width, height = image.size
            if max(width, height) > MAX_IMAGE_SIDE:
                raise ApiError(400, f"{param} is {width}x{height}; the API takes at most "
                                    f"{MAX_IMAGE_SIDE} pixels a side.", param=param)
            image.load()
    except ApiError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning,
            OSError, ValueError, SyntaxError, EOFError):
        raise ApiError(400, f"{param} is not a PNG, JPEG or WebP image that can be read.",
                       param=param) from None
    return image


def checked_image(data: bytes, param: str) -> bytes:
    """``data`` once it is known to be an image of a size the API takes."""
    _open(data, param)
    return data


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def mask_from_openai(data: bytes, param: str = "mask") -> bytes:
    """OpenAI's mask (fully transparent pixels are edited) as ours: white = repaint."""
    image = _open(data, param)
    if "A" not in image.getbands() and "transparency" not in image.info:
        raise ApiError(400, "The mask needs an alpha channel: transparent pixels mark the "
                            "area to edit.", param=param)
    alpha = image.convert("RGBA").getchannel("A")
    return _png(alpha.point(lambda v: 255 if v == 0 else 0))


def mask_from_a1111(data: bytes, *, invert: bool, param: str = "mask") -> bytes:
    """A1111's mask (white = inpaint, or black with ``inpainting_mask_invert``) as ours.
    A mask with transparency uses its alpha, as A1111's does for a drawn mask."""
    image = _open(data, param)
    if "A" in image.getbands() and image.getchannel("A").getextrema() != (255, 255):
        grey = image.getchannel("A")
    else:
        grey = image.convert("L")
    grey = grey.point(lambda v: 255 if v >= 128 else 0)
    return _png(ImageOps.invert(grey) if invert else grey)


def resized_as_a1111(data: bytes, size: tuple[int, int], mode: int, param: str,
                     *, mask: bool = False) -> bytes:
    """An img2img input brought to the job's ``width`` x ``height`` as A1111's resize
    modes do: 0 "just resize" (stretch), 1 "crop and resize" (fill, centre crop).
    Other modes ("resize and fill", "latent upscale") are refused by name."""
    if not all(64 <= side <= MAX_IMAGE_SIDE for side in size):
        raise ApiError(422, f"width and height must be 64 to {MAX_IMAGE_SIDE} pixels (got "
                            f"{size[0]}x{size[1]}).", param="width")
    image = _open(data, param)
    if image.size == size:
        return data
    if mode not in (0, 1):
        raise ApiError(422, f"resize_mode {mode} is not supported; use 0 (just resize) or 1 "
                            "(crop and resize).", param="resize_mode")
    image = image.convert("L" if mask else "RGB")
    resample = Image.Resampling.NEAREST if mask else Image.Resampling.LANCZOS
    if mode == 1:
        width, height = size
        scale = max(width / image.width, height / image.height)
        scaled = image.resize((max(width, round(image.width * scale)),
                               max(height, round(image.height * scale))), resample)
        left, top = (scaled.width - width) // 2, (scaled.height - height) // 2
        return _png(scaled.crop((left, top, left + width, top + height)))
    return _png(image.resize(size, resample))
