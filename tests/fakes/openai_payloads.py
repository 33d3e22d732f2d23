"""Bodies the fake OpenAI server sends: real images, error objects, a pixel bomb."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from PIL import Image

DEFAULT_USAGE: dict[str, Any] = {
    "input_tokens": 50,
    "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
    "output_tokens": 1056,
    "output_tokens_details": {"image_tokens": 1056, "text_tokens": 0},
    "total_tokens": 1106,
}


def image_bytes(width: int, height: int, fmt: str = "png",
                colour: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    """A real, decodable image of the given size and format."""
    img = Image.new("RGB", (width, height), colour)
    out = io.BytesIO()
    img.save(out, {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt])
    return out.getvalue()


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A small, valid-looking PNG whose header claims ``width`` x ``height``
    pixels: decoding it fully would need gigabytes (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = zlib.compress(b"\x00" * (width + 1) * 4)  # a few rows; the rest "missing"
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows)
            + chunk(b"IEND", b""))


def error_body(message: str, *, code: str | None, type_: str,
               param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


HTML_ERROR_PAGE = (b"<html><head><title>502 Bad Gateway</title></head>"
                   b"<body><center><h1>502 Bad Gateway</h1></center></body></html>")
HTML_LOGIN_PAGE = (b"<!doctype html><html><body><h1>Welcome</h1>"
                   b"<p>Please sign in to continue.</p></body></html>")
