"""Fuzzing every parser of untrusted image metadata (issue 12, "Also build").

Each one, given random or structured-but-hostile input, ends in a value or a
typed error (``MetadataError`` for reading, ``StoreError`` for writing) within
a per-example deadline: never a hang and never an untyped exception.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import zlib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from desktop_app.store.a1111 import MetadataError, parse_a1111_parameters
from desktop_app.store.database import StoreError
from desktop_app.store.image_metadata import (
    ImageMetadata,
    metadata_from_texts,
    provenance_json,
    read_metadata,
)
from desktop_app.store.metadata import decode_user_comment, embed, exif_block, transcode

# Fixed examples in `make test`; IMAGEDESK_FUZZ_EXAMPLES=5000 explores further (random).
_LONG_RUN = int(os.environ.get("IMAGEDESK_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_LONG_RUN or 150, deadline=1000, derandomize=not _LONG_RUN,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Characters that steer the A1111 parser: separators, quotes, escapes, spaces, word chars.
INFOTEXT_CHARS = st.sampled_from([*'abS: ,"\\\n-/x1é\u00a0\t\r\ud800', "Seed", "Size", "Steps",
                                  "CFG scale", "Negative prompt:"])
infotexts = st.lists(INFOTEXT_CHARS, max_size=120).map("".join) | st.text(max_size=600)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def _encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), (10, 200, 30)).save(buffer, fmt.upper())
    return buffer.getvalue()


OUR_FILES = {fmt: embed(_encoded(fmt), fmt, "fox\nSteps: 2, Seed: 3, Size: 16x12",
                        {"provider": "local"}) for fmt in ("png", "jpeg", "webp")}


def _check_read(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzzed.img"
    path.write_bytes(data)
    try:
        meta = read_metadata(path)
    except MetadataError as error:
        assert error.message
    else:
        assert isinstance(meta, ImageMetadata)
        assert meta.format in ("png", "jpeg", "webp")


@FUZZ
@given(infotexts)
def test_a1111_parameters_text(text: str) -> None:
    try:
        fields = parse_a1111_parameters(text)
    except MetadataError:
        return
    assert set(fields) >= {"Prompt", "Negative prompt"}


@FUZZ
@given(infotexts, st.one_of(st.none(), st.text(max_size=200),
                            st.integers(0, 3000).map(lambda n: "[" * n + "]" * n),
                            st.integers(0, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n)))
def test_checked_values_and_provenance_json(parameters: str, provenance: str | None) -> None:
    try:
        meta = metadata_from_texts("png", 8, 8, parameters, provenance)
    except MetadataError as error:
        assert error.message
        return
    if meta.seed is not None:
        assert -(2**63) <= meta.seed < 2**63
    for text in (meta.prompt, meta.negative_prompt, *meta.fields.values()):
        text.encode("utf-8")  # storable: no lone surrogates


@FUZZ
@given(st.text(max_size=500))
def test_provenance_json_text(text: str) -> None:
    try:
        value = provenance_json(text)
    except MetadataError:
        return
    assert value is None or isinstance(value, dict)


@FUZZ
@given(st.binary(max_size=300))
def test_exif_user_comment_bytes(raw: bytes) -> None:
    assert isinstance(decode_user_comment(b"UNICODE\x00" + raw), str)
    assert isinstance(decode_user_comment(raw), str)


@FUZZ
@given(st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\x10\x00\x00\x00WEBP"]),
       st.binary(max_size=2000))
def test_random_bytes_as_an_image_file(tmp_path_factory: object, prefix: bytes,
                                       body: bytes) -> None:
    _check_read(_tmp(tmp_path_factory), prefix + body)


_text_payload = st.builds(
    lambda key, body, compress: key + b"\x00" + (
        b"\x00" + zlib.compress(body) if compress == "z" else
        b"\x01\x00en\x00\x00" + zlib.compress(body) if compress == "i" else body),
    st.sampled_from([b"parameters", b"imagedesk", b"Comment", b""]),
    st.binary(max_size=400) | infotexts.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from(["t", "z", "i"]))
_chunks = st.lists(st.one_of(
    st.tuples(st.sampled_from([b"tEXt", b"zTXt", b"iTXt"]), _text_payload),
    st.tuples(st.sampled_from([b"IDAT", b"IEND", b"IHDR", b"zzzz"]), st.binary(max_size=40)),
), max_size=8)


@FUZZ
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), _chunks,
       st.integers(0, 2**32 - 1), st.booleans())
def test_structured_hostile_png(tmp_path_factory: object, width: int, height: int,
                                chunks: list[tuple[bytes, bytes]], lying_length: int,
                                lie: bool) -> None:
    ihdr = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    body = b"".join(_png_chunk(kind, payload) for kind, payload in chunks)
    if lie and body:  # a chunk whose length field claims far more than the file holds
        body = struct.pack(">I", lying_length) + body[4:]
    _check_read(_tmp(tmp_path_factory), b"\x89PNG\r\n\x1a\n" + ihdr + body)


def _jpeg_with(segment: bytes) -> bytes:
    data = _encoded("jpeg")
    return data[:2] + b"\xff\xe1" + struct.pack(">H", min(len(segment) + 2, 65535)) \
        + segment[:65533] + data[2:]


_tiffs = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda text, note: exif_block(text, note, limit=65533)[6:],
              infotexts, st.text(max_size=100)),
)


@FUZZ
@given(_tiffs, st.integers(0, 200), st.binary(min_size=1, max_size=4))
def test_structured_hostile_exif_in_jpeg_and_webp(tmp_path_factory: object, tiff: bytes,
                                                  at: int, junk: bytes) -> None:
    if tiff:
        cut = at % len(tiff)
        tiff = tiff[:cut] + junk + tiff[cut + len(junk):]  # damage the TIFF structure
    _check_read(_tmp(tmp_path_factory), _jpeg_with(b"Exif\x00\x00" + tiff))
    webp = _encoded("webp")
    chunk = b"EXIF" + struct.pack("<I", len(tiff)) + tiff + b"\x00" * (len(tiff) & 1)
    body = webp[12:] + chunk
    _check_read(_tmp(tmp_path_factory),
                b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body)


@FUZZ
@given(st.sampled_from(sorted(OUR_FILES)), st.lists(st.tuples(st.integers(0, 10**6),
                                                              st.integers(0, 255)), max_size=6),
       st.integers(0, 10**6))
def test_damaged_copies_of_our_own_files(tmp_path_factory: object, fmt: str,
                                         flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(OUR_FILES[fmt])
    for where, value in flips:
        data[where % len(data)] = value
    damaged = bytes(data[: max(1, cut % (len(data) + 1))])
    _check_read(_tmp(tmp_path_factory), damaged)
    for target in ("png", "jpeg", "webp"):  # the writer gets provider bytes: same contract
        with contextlib.suppress(StoreError):
            assert embed(damaged, target, "p", {})
        with contextlib.suppress(StoreError):
            assert transcode(damaged, target, 80)


def _tmp(factory: object) -> Path:
    return factory.mktemp("fuzz")  # type: ignore[attr-defined]
