"""Generation metadata inside image files, written without re-encoding pixels.

- PNG: the A1111 ``parameters`` text as a ``tEXt`` chunk (``iTXt`` when it is not
  Latin-1, as Pillow and A1111 do), and our provenance JSON as a compressed
  ``iTXt`` chunk keyed ``imagedesk``; both inserted before the first ``IDAT``.
- JPEG / WebP: an EXIF block (big-endian, as piexif writes it for A1111) whose
  UserComment holds the parameters with the ``UNICODE`` prefix and UTF-16-BE
  text; the provenance JSON goes in MakerNote (``imagedesk\\0`` + UTF-8) when the
  block still fits JPEG's 64 KiB segment limit.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Mapping
from typing import Any

from desktop_app.store.database import StoreError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PARAMETERS_KEY = "parameters"
PROVENANCE_KEY = "imagedesk"
UNICODE_PREFIX = b"UNICODE\x00"
ASCII_PREFIX = b"ASCII\x00\x00\x00"
MAKERNOTE_PREFIX = b"imagedesk\x00"
TAG_EXIF_IFD = 0x8769
TAG_USER_COMMENT = 0x9286
TAG_MAKER_NOTE = 0x927C
JPEG_SEGMENT_MAX = 65_533  # payload of one APP1 segment (65535 minus the length field)
WEBP_EXIF_MAX = 16 * 1024 * 1024  # a RIFF chunk could hold more; no real infotext comes close
MAX_ENCODE_PIXELS = 8192 * 8192


class MetadataTooLarge(StoreError):
    """The parameters do not fit in this format's metadata (JPEG: one 64 KiB segment)."""


def sniff_format(data: bytes) -> str | None:
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def embed(data: bytes, fmt: str, parameters: str, provenance: Mapping[str, Any]) -> bytes:
    """``data`` with the metadata added (any earlier copy of ours replaced)."""
    actual = sniff_format(data)
    if actual != fmt:
        raise StoreError(f"The image data is {actual or 'not a known image format'}, "
                         f"not {fmt}; it was not saved.")
    provenance_json = json.dumps(dict(provenance), ensure_ascii=False, separators=(",", ":"))
    try:
        if fmt == "png":
            return _png_embed(data, parameters, provenance_json)
        exif = exif_block(parameters, provenance_json,
                          limit=JPEG_SEGMENT_MAX if fmt == "jpeg" else WEBP_EXIF_MAX)
        if fmt == "jpeg":
            return _jpeg_embed(data, exif)
        return _webp_embed(data, exif)
    except (struct.error, ValueError, OSError, SyntaxError, IndexError) as error:
        # Pillow (WebP size) and the segment walkers on damaged provider bytes.
        raise StoreError(f"The {fmt} image data is damaged ({error}); it was not saved.") \
            from error


def transcode(data: bytes, fmt: str, quality: int) -> bytes:
    """``data`` (PNG, JPEG or WebP) encoded as ``fmt``; ``quality`` (1-100) for JPEG
    and WebP. JPEG has no alpha channel: transparent parts go onto white."""
    from PIL import Image, UnidentifiedImageError

    if not 1 <= quality <= 100:
        raise StoreError(f"Image quality must be from 1 to 100, not {quality}.")
    try:
        with Image.open(io.BytesIO(data), formats=("PNG", "JPEG", "WEBP")) as image:
            if image.size[0] * image.size[1] > MAX_ENCODE_PIXELS:
                raise StoreError(f"The image is {image.size[0]}x{image.size[1]} pixels, "
                                 "too large to convert.")
            image.load()
            out = io.BytesIO()
            if fmt == "jpeg":
                rgb = image.convert("RGBA") if image.mode in ("RGBA", "LA", "P", "PA") else image
                if rgb.mode == "RGBA":
                    backdrop = Image.new("RGB", rgb.size, (255, 255, 255))
                    backdrop.paste(rgb, mask=rgb.getchannel("A"))
                    rgb = backdrop
                rgb.convert("RGB").save(out, "JPEG", quality=quality)
            elif fmt == "webp":
                keep_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
                image.convert("RGBA" if keep_alpha else "RGB").save(
                    out, "WEBP", quality=quality, method=4)
            elif fmt == "png":
                image.save(out, "PNG")
            else:
                raise StoreError(f"Cannot save images as {fmt!r}: use png, jpeg or webp.")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as error:
        raise StoreError(f"The image data could not be converted to {fmt} ({error}).") \
            from error
    return out.getvalue()


# -- PNG ---------------------------------------------------------------------------

def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def png_text_chunk(key: str, text: str, *, compress: bool = False) -> bytes:
    """``tEXt`` when Latin-1 will do (what most readers expect), else UTF-8 ``iTXt``."""
    if not compress:
        try:
            return _png_chunk(b"tEXt", key.encode("latin-1") + b"\x00" + text.encode("latin-1"))
        except UnicodeEncodeError:
            pass
    body = text.encode("utf-8", errors="replace")  # a lone surrogate becomes "?"
    flag = b"\x01\x00" if compress else b"\x00\x00"
    if compress:
        body = zlib.compress(body, 9)
    return _png_chunk(b"iTXt", key.encode("latin-1") + b"\x00" + flag + b"\x00\x00" + body)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, whole chunk bytes) for every chunk; raises on a truncated file."""
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset < len(data):
        if offset + 8 > len(data):
            raise StoreError("The PNG data is truncated; it was not saved.")
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind = data[offset + 4:offset + 8]
        end = offset + 12 + length
        if end > len(data):
            raise StoreError("The PNG data is truncated; it was not saved.")
        chunks.append((kind, data[offset:end]))
        offset = end
        if kind == b"IEND":
            break
    return chunks


def _text_key(chunk: bytes) -> bytes:
    return chunk[8:].split(b"\x00", 1)[0]


def _png_embed(data: bytes, parameters: str, provenance_json: str) -> bytes:
    ours = {PARAMETERS_KEY.encode(), PROVENANCE_KEY.encode()}
    out = [PNG_SIGNATURE]
    inserted = False
    for kind, chunk in _png_chunks(data):
        if kind in (b"tEXt", b"iTXt", b"zTXt") and _text_key(chunk) in ours:
            continue
        if kind == b"IDAT" and not inserted:
            out.append(png_text_chunk(PARAMETERS_KEY, parameters))
            out.append(png_text_chunk(PROVENANCE_KEY, provenance_json, compress=True))
            inserted = True
        out.append(chunk)
    if not inserted:
        raise StoreError("The PNG data has no image data (IDAT); it was not saved.")
    return b"".join(out)


# -- EXIF (JPEG, WebP) ---------------------------------------------------------------

def user_comment(text: str) -> bytes:
    """EXIF UserComment as piexif's ``UserComment.dump(text, encoding="unicode")``."""
    return UNICODE_PREFIX + text.encode("utf-16-be", errors="replace")


def decode_user_comment(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    prefix, body = raw[:8], raw[8:]
    if prefix == UNICODE_PREFIX:
        if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return body.decode("utf-16")
        # The standard leaves the byte order to the TIFF header; A1111 (piexif)
        # always writes big-endian. Pick the order where ASCII's zero bytes fall.
        even_zeros = body[0::2].count(0)
        odd_zeros = body[1::2].count(0)
        codec = "utf-16-le" if odd_zeros > even_zeros else "utf-16-be"
        return body.decode(codec, errors="replace")
    if prefix == ASCII_PREFIX or prefix == b"\x00" * 8:
        return body.decode("utf-8", errors="replace").rstrip("\x00")
    return raw.decode("utf-8", errors="replace").rstrip("\x00")


def exif_block(parameters: str, provenance_json: str, *, limit: int) -> bytes:
    """A big-endian TIFF block: IFD0 -> Exif IFD {UserComment[, MakerNote]}."""
    comment = user_comment(parameters)
    note = MAKERNOTE_PREFIX + provenance_json.encode("utf-8", errors="replace")
    block = _tiff([(TAG_USER_COMMENT, comment), (TAG_MAKER_NOTE, note)])
    if len(block) + 6 > limit:
        block = _tiff([(TAG_USER_COMMENT, comment)])
    if len(block) + 6 > limit:
        raise MetadataTooLarge("The prompt is too long to fit in a JPEG's metadata (64 KB); "
                               "save as PNG instead.")
    return b"Exif\x00\x00" + block


def _tiff(entries: list[tuple[int, bytes]]) -> bytes:
    # header (8) + IFD0 with one entry (2 + 12 + 4) = 26; the Exif IFD follows.
    exif_ifd_at = 8 + 2 + 12 + 4
    data_at = exif_ifd_at + 2 + 12 * len(entries) + 4
    header = b"MM\x00\x2a" + struct.pack(">I", 8)
    ifd0 = struct.pack(">H", 1) + struct.pack(">HHII", TAG_EXIF_IFD, 4, 1, exif_ifd_at)
    ifd0 += struct.pack(">I", 0)
    exif = struct.pack(">H", len(entries))
    blobs = b""
    for tag, value in sorted(entries):
        exif += struct.pack(">HHII", tag, 7, len(value), data_at + len(blobs))
        blobs += value + (b"\x00" if len(value) % 2 else b"")
    exif += struct.pack(">I", 0)
    return header + ifd0 + exif + blobs


def _jpeg_embed(data: bytes, exif: bytes) -> bytes:
    out = [data[:2]]
    offset = 2
    inserted = False
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        if marker in (0xDA, 0xD9):  # start of scan / end: the rest is entropy-coded data
            break
        (length,) = struct.unpack(">H", data[offset + 2:offset + 4])
        segment = data[offset:offset + 2 + length]
        is_app0 = marker == 0xE0
        if not (marker == 0xE1 and segment[4:10] == b"Exif\x00\x00"):
            if not inserted and not is_app0:
                out.append(b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif)
                inserted = True
            out.append(segment)
        offset += 2 + length
    if not inserted:
        out.append(b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif)
    out.append(data[offset:])
    return b"".join(out)


def _webp_embed(data: bytes, exif: bytes) -> bytes:
    from PIL import Image

    payload = exif[6:]  # the WebP EXIF chunk holds the bare TIFF block
    chunks: list[tuple[bytes, bytes]] = []
    offset = 12
    while offset + 8 <= len(data):
        kind = data[offset:offset + 4]
        (size,) = struct.unpack("<I", data[offset + 4:offset + 8])
        chunks.append((kind, data[offset + 8:offset + 8 + size]))
        offset += 8 + size + (size & 1)
    chunks = [(k, v) for k, v in chunks if k != b"EXIF"]
    if chunks and chunks[0][0] == b"VP8X":
        flags = bytearray(chunks[0][1])
        flags[0] |= 0x08
        chunks[0] = (b"VP8X", bytes(flags))
    else:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            alpha = 0x10 if "A" in image.mode else 0
        vp8x = bytes([0x08 | alpha, 0, 0, 0]) + (width - 1).to_bytes(3, "little") \
            + (height - 1).to_bytes(3, "little")
        chunks.insert(0, (b"VP8X", vp8x))
    chunks.append((b"EXIF", payload))
    body = b"WEBP" + b"".join(
        k + struct.pack("<I", len(v)) + v + (b"\x00" if len(v) & 1 else b"") for k, v in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body
