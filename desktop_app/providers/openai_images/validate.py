"""Checks every image payload before it is accepted: a bad payload is a
``Transient`` error with a clear message, never a broken file in the gallery.

The SDK accepts any string as ``b64_json`` (docs/ARCHITECTURE.md), so the checks are
ours: strict base64, a byte cap before decoding, the pixel count from the
header before any pixel is decoded (decompression-bomb guard), a full decode,
a format we can store (PNG, JPEG or WebP) and dimensions plausible for the request.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import warnings

from PIL import Image

from desktop_app.domain.errors import Transient

from .errors import PROVIDER

_PIL_FORMATS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}
ASPECT_TOLERANCE = 0.02


@dataclasses.dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int


@dataclasses.dataclass(frozen=True)
class DecodedImage:
    data: bytes
    format: str
    width: int
    height: int


def _bad(message: str) -> Transient:
    return Transient(f"OpenAI returned an unusable image: {message}", provider=PROVIDER)


def decode_b64(payload: object, limits: ImageLimits) -> bytes:
    """Strict base64 -> bytes, refusing anything that is not a string or too big."""
    if not isinstance(payload, str) or not payload:
        raise _bad("no image data in the response")
    # base64 grows data by 4/3; refuse before allocating the decoded bytes
    if len(payload) > limits.max_bytes * 4 // 3 + 4:
        raise _bad(f"more than {limits.max_bytes:,} bytes")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("the data is not valid base64") from None
    if len(data) > limits.max_bytes:
        raise _bad(f"{len(data):,} bytes, more than the {limits.max_bytes:,} allowed")
    return data


def validate_image(data: bytes, *, width: int, height: int,
                   limits: ImageLimits) -> DecodedImage:
    """Decode ``data`` fully and check it is a usable image of about the size
    asked for. Another format than asked is usable (many compatible servers
    ignore ``output_format``): it is handed on as what it is, and the saver
    converts it, rather than throwing away an image that was paid for."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
                fmt = _PIL_FORMATS.get(img.format or "")
                if w * h > limits.max_pixels:
                    raise _bad(f"{w}x{h} is more than {limits.max_pixels:,} pixels")
                img.load()
    except Transient:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bad("its header claims far too many pixels (decompression bomb guard)") from None
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise _bad(f"it does not decode as an image ({type(exc).__name__})") from None
    if fmt is None:
        raise _bad("not a PNG, JPEG or WebP image")
    if not plausible_size(w, h, width, height):
        raise _bad(f"asked for {width}x{height}, got {w}x{h}")
    return DecodedImage(data=data, format=fmt, width=w, height=h)


def plausible_size(w: int, h: int, want_w: int, want_h: int) -> bool:
    """Exactly the size asked for, or the same shape within a factor of two
    (compatible endpoints sometimes render at their own resolution)."""
    if (w, h) == (want_w, want_h):
        return True
    if w < 16 or h < 16:
        return False
    same_shape = abs(w / h - want_w / want_h) <= ASPECT_TOLERANCE * (want_w / want_h)
    return same_shape and 0.5 <= w / want_w <= 2.0
