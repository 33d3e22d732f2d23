"""Reading generation metadata back from image files, ours and other tools'.

Files are untrusted input, so every read is bounded: PNG text chunks are read by
our own chunk walker (never more than ``MAX_TEXT_BYTES`` of a chunk, compressed
or not, so a zTXt/iTXt "zip bomb" stops at the limit), the file size and pixel
count are capped, each file has a time budget, and every value that reaches the
gallery is range-checked. Anything wrong ends in ``MetadataError`` with a reason
the user can read, never a hang or a stray exception.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import struct
import time
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from desktop_app.store.a1111 import (
    DENOISING_STRENGTH,
    HIRES_UPSCALE,
    MASK_BLUR,
    MAX_PARAMETERS_CHARS,
    MetadataError,
    parse_a1111_parameters,
)
from desktop_app.store.metadata import (
    MAKERNOTE_PREFIX,
    PARAMETERS_KEY,
    PNG_SIGNATURE,
    PROVENANCE_KEY,
    TAG_EXIF_IFD,
    TAG_MAKER_NOTE,
    TAG_USER_COMMENT,
    decode_user_comment,
)

MAX_PIXELS = 8192 * 8192  # larger than anything we generate; bigger files are refused
MAX_FILE_BYTES = 256 * 1024 * 1024  # PNG: walked chunk by chunk, pixel data never read
MAX_EXIF_FILE_BYTES = 64 * 1024 * 1024  # JPEG / WebP: Pillow reads a WebP whole
MAX_TEXT_BYTES = 1024 * 1024  # of one text chunk, before and after decompression
MAX_PNG_CHUNKS = 100_000  # real files have tens; IDAT split in 8 KB pieces stays far below
MAX_JSON_CHARS = MAX_TEXT_BYTES
READ_BUDGET_S = 2.0  # one file's metadata; real ones take milliseconds
MAX_SEED = 2**63 - 1  # what the gallery (SQLite INTEGER) can hold
MAX_STEPS = 10_000
MAX_SIDE = 65_535
MAX_CFG = 1_000.0
MAX_COST_USD = 1_000_000.0
MAX_LABEL_CHARS = 1_000  # provider and model names
MAX_MASK_BLUR = 64  # A1111's slider
MAX_HIRES_UPSCALE = 16.0

_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
_OUR_KEYS = (PARAMETERS_KEY.encode(), PROVENANCE_KEY.encode())


@dataclasses.dataclass(frozen=True)
class ImageMetadata:
    """What an image file says about how it was made (values range-checked)."""

    format: str
    width: int  # pixel size of the file itself
    height: int
    parameters: str | None  # the raw A1111 infotext
    prompt: str = ""
    negative_prompt: str = ""
    steps: int | None = None
    sampler: str | None = None
    cfg_scale: float | None = None
    seed: int | None = None
    model: str | None = None
    size: tuple[int, int] | None = None  # the infotext's "Size" (before any upscale)
    fields: Mapping[str, str] = dataclasses.field(default_factory=dict)  # every infotext key
    provenance: Mapping[str, Any] | None = None  # our "imagedesk" JSON, if present
    # work on an existing image, as A1111 writes it (None when absent or unusable:
    # these only serve recall, so a bad one does not cost the image its place)
    denoising_strength: float | None = None
    mask_blur: int | None = None
    hires_upscale: float | None = None

    @property
    def is_generated(self) -> bool:
        return self.parameters is not None


class ReadBudget:
    """A per-file time budget: one hostile file can never hold up the others."""

    def __init__(self, seconds: float = READ_BUDGET_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.seconds = seconds
        self.deadline = clock() + seconds

    def check(self) -> None:
        if self.clock() > self.deadline:
            raise MetadataError(f"reading its metadata took over {self.seconds:g} s")


def read_metadata(path: Path, budget: ReadBudget | None = None) -> ImageMetadata:
    """Metadata of a PNG, JPEG or WebP file. Raises ``MetadataError`` (the reason
    is a phrase: "is not a PNG, JPEG or WebP image") for anything else."""
    budget = budget or ReadBudget()
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, io.SEEK_END)
            if size > MAX_FILE_BYTES:
                raise MetadataError(f"it is {size / 2**20:,.0f} MB, larger than the "
                                    f"{MAX_FILE_BYTES // 2**20} MB read for metadata")
            handle.seek(0)
            head = handle.read(len(PNG_SIGNATURE))
            handle.seek(0)
            if head == PNG_SIGNATURE:
                fmt = "png"
                width, height, texts = _png_texts(handle, budget)
            elif size > MAX_EXIF_FILE_BYTES:
                raise MetadataError(f"it is {size / 2**20:,.0f} MB, larger than the "
                                    f"{MAX_EXIF_FILE_BYTES // 2**20} MB read for JPEG or "
                                    "WebP metadata")
            else:
                fmt, width, height, texts = _pillow_texts(handle)
    except OSError as error:
        raise MetadataError(f"it cannot be read ({error.strerror or error})") from error
    budget.check()
    if width < 1 or height < 1 or width * height > MAX_PIXELS:
        raise MetadataError(f"it is {width}x{height} pixels, more than the "
                            f"{MAX_PIXELS // 10**6} megapixels ImageDesk handles")
    return metadata_from_texts(fmt, width, height, texts.get(PARAMETERS_KEY),
                               texts.get(PROVENANCE_KEY))


def metadata_from_texts(fmt: str, width: int, height: int, parameters: str | None,
                        provenance_text: str | None) -> ImageMetadata:
    """Range-checked metadata from the two texts a file carries."""
    provenance = provenance_json(provenance_text)
    if parameters is not None:
        parameters = clean_text(parameters)
    if not parameters:
        return ImageMetadata(fmt, width, height, None, provenance=provenance)
    fields = {clean_text(k): clean_text(v) for k, v in parse_a1111_parameters(parameters).items()}
    return ImageMetadata(
        format=fmt, width=width, height=height, parameters=parameters,
        prompt=fields.get("Prompt", ""), negative_prompt=fields.get("Negative prompt", ""),
        steps=_whole(fields, "Steps", 1, MAX_STEPS), sampler=fields.get("Sampler"),
        cfg_scale=_number(fields, "CFG scale", -MAX_CFG, MAX_CFG),
        seed=_whole(fields, "Seed", -MAX_SEED - 1, MAX_SEED), model=fields.get("Model"),
        size=_size(fields.get("Size")), fields=fields, provenance=provenance,
        denoising_strength=_lenient(_number, fields, DENOISING_STRENGTH, 0.0, 1.0),
        mask_blur=_lenient(_whole, fields, MASK_BLUR, 0, MAX_MASK_BLUR),
        hires_upscale=_lenient(_number, fields, HIRES_UPSCALE, 1.0, MAX_HIRES_UPSCALE),
    )


def _lenient(read: Callable[..., Any], fields: Mapping[str, str], key: str,
             low: float, high: float) -> Any:
    """``read``'s value, or None where it would refuse the text."""
    try:
        return read(fields, key, low, high)
    except MetadataError:
        return None


# -- checked values -----------------------------------------------------------------

def clean_text(text: str) -> str:
    """``text`` without lone surrogates (JSON can carry them; SQLite cannot store them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _whole(fields: Mapping[str, str], key: str, low: int, high: int) -> int | None:
    text = fields.get(key)
    if text is None or text == "":
        return None
    if not _is_whole(text):
        raise MetadataError(f"its {key} {_shown(text)} is not a whole number")
    value = int(text)
    if not low <= value <= high:
        raise MetadataError(f"its {key} {_shown(text)} is out of range ({low} to {high})")
    return value


def _number(fields: Mapping[str, str], key: str, low: float, high: float) -> float | None:
    text = fields.get(key)
    if text is None or text == "":
        return None
    try:
        value = float(text) if len(text) <= 40 else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise MetadataError(f"its {key} {_shown(text)} is not a number")
    if not low <= value <= high:
        raise MetadataError(f"its {key} {_shown(text)} is out of range ({low:g} to {high:g})")
    return value


def _size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    width, _, height = text.partition("x")
    if not (_is_whole(width) and _is_whole(height)) or not (
            1 <= int(width) <= MAX_SIDE and 1 <= int(height) <= MAX_SIDE):
        raise MetadataError(f"its Size {_shown(text)} is not WIDTHxHEIGHT with sides "
                            f"from 1 to {MAX_SIDE}")
    return int(width), int(height)


def _is_whole(text: str) -> bool:
    digits = text[1:] if text.startswith("-") else text
    return 0 < len(digits) <= 25 and digits.isascii() and digits.isdigit()


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def provenance_json(text: str | None) -> dict[str, Any] | None:
    """Our provenance JSON object, or None when absent or not a JSON object.
    Raises ``MetadataError`` when it is too large or nested too deeply to read."""
    if not text:
        return None
    if len(text) > MAX_JSON_CHARS:
        raise MetadataError(f"its ImageDesk provenance is {len(text):,} characters long "
                            f"(at most {MAX_JSON_CHARS:,} are read)")
    try:
        value = json.loads(clean_text(text))
    except RecursionError:
        raise MetadataError("its ImageDesk provenance is nested too deeply to read") from None
    except ValueError:  # not JSON, or a number too long to convert
        return None
    return value if isinstance(value, dict) else None


def provenance_label(provenance: Mapping[str, Any], key: str) -> str | None:
    """A provider or model name from the provenance: a short string, or None."""
    value = provenance.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_LABEL_CHARS:
        raise MetadataError(f"its ImageDesk provenance has an unusable {key!r}")
    return value


def provenance_cost(provenance: Mapping[str, Any]) -> float:
    value = provenance.get("cost_usd")
    if value is None:
        return 0.0
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not 0 <= value <= MAX_COST_USD or not math.isfinite(value)):
        raise MetadataError(f"its ImageDesk provenance has a cost of {_shown(str(value))}, "
                            f"not a dollar amount from 0 to {MAX_COST_USD:,.0f}")
    return float(value)


# -- PNG ------------------------------------------------------------------------------

def _png_texts(handle: BinaryIO, budget: ReadBudget) -> tuple[int, int, dict[str, str]]:
    """(width, height, {key: text}) for our two keys; the last chunk of a key
    wins, as in Pillow. Chunk data other than our text chunks is skipped unread."""
    handle.seek(len(PNG_SIGNATURE))
    width = height = -1
    texts: dict[str, str] = {}
    for index in range(MAX_PNG_CHUNKS):
        budget.check()
        header = handle.read(8)
        if len(header) < 8:
            break  # truncated after what we needed: the reader keeps what it found
        length, kind = struct.unpack(">I4s", header)
        if length > 2**31 - 1:
            raise MetadataError("it is not a valid PNG (a chunk length over 2 GB)")
        if index == 0:
            if kind != b"IHDR" or length != 13:
                raise MetadataError("it is not a valid PNG (no IHDR header first)")
            width, height = struct.unpack(">II", _read(handle, 8))
            length -= 8
        elif kind == b"IEND":
            break
        elif kind in _TEXT_CHUNKS and length <= MAX_TEXT_BYTES:
            found = _png_text(kind, _read(handle, length))
            if found is not None:
                texts[found[0]] = found[1]
            length = 0
        elif kind in _TEXT_CHUNKS:
            key = handle.read(80).split(b"\x00", 1)[0]
            if key in _OUR_KEYS:
                raise MetadataError(f"its {key.decode()!r} text is {length:,} bytes "
                                    f"(at most {MAX_TEXT_BYTES:,} are read)")
            length -= 80
        handle.seek(length + 4, io.SEEK_CUR)  # the rest of the data, then the CRC
    else:
        raise MetadataError(f"it has more than {MAX_PNG_CHUNKS:,} PNG chunks")
    if width < 0:
        raise MetadataError("it is not a valid PNG (empty)")
    return width, height, texts


def _read(handle: BinaryIO, length: int) -> bytes:
    data = handle.read(length)
    if len(data) < length:
        raise MetadataError("it is not a valid PNG (truncated inside a chunk)")
    return data


def _png_text(kind: bytes, data: bytes) -> tuple[str, str] | None:
    key, sep, rest = data.partition(b"\x00")
    if not sep or key not in _OUR_KEYS:
        return None
    name = key.decode("latin-1")
    if kind == b"tEXt":
        return name, rest.decode("latin-1")
    if kind == b"zTXt":
        return name, _inflate(rest[1:], name).decode("latin-1")
    if len(rest) < 2:
        raise MetadataError(f"its {name!r} text chunk is malformed")
    compressed, body = rest[0], rest[2:]
    _language, _, body = body.partition(b"\x00")
    _translated, _, body = body.partition(b"\x00")
    if compressed:
        body = _inflate(body, name)
    return name, body.decode("utf-8", errors="replace")


def _inflate(data: bytes, name: str) -> bytes:
    """zlib data, never more than MAX_TEXT_BYTES of it (a zip bomb stops there)."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_TEXT_BYTES)
    except zlib.error as error:
        raise MetadataError(f"its {name!r} text is not valid compressed data ({error})") \
            from None
    if inflater.unconsumed_tail:
        raise MetadataError(f"its {name!r} text inflates to more than "
                            f"{MAX_TEXT_BYTES:,} bytes")
    return out


# -- JPEG and WebP (EXIF, through Pillow) ----------------------------------------------

def _pillow_texts(handle: BinaryIO) -> tuple[str, int, int, dict[str, str]]:
    from PIL import Image

    try:
        with bomb_guard(), Image.open(handle, formats=("JPEG", "WEBP")) as image:
            fmt = "jpeg" if image.format in ("JPEG", "MPO") else "webp"
            width, height = image.size
            exif = image.getexif().get_ifd(TAG_EXIF_IFD)
            comment = exif.get(TAG_USER_COMMENT)
            note = exif.get(TAG_MAKER_NOTE)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MetadataError("it has too many pixels to read safely") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, KeyError, IndexError,
            TypeError, ZeroDivisionError, OverflowError, RecursionError) as error:
        # Pillow's image and TIFF parsers raise any of these for a damaged file.
        raise MetadataError("it is not a PNG, JPEG or WebP image that can be read "
                            f"({type(error).__name__})") from None
    texts: dict[str, str] = {}
    if isinstance(comment, (bytes, str)) and comment:
        if len(comment) > 4 * MAX_PARAMETERS_CHARS:
            raise MetadataError("its EXIF UserComment is too long to read")
        texts[PARAMETERS_KEY] = decode_user_comment(comment)
    if isinstance(note, bytes) and note.startswith(MAKERNOTE_PREFIX):
        texts[PROVENANCE_KEY] = note[len(MAKERNOTE_PREFIX):].decode("utf-8", errors="replace")
    return fmt, width, height, texts


@contextlib.contextmanager
def bomb_guard() -> Iterator[None]:
    """Refuse images over Pillow's pixel limit instead of decoding them."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield
