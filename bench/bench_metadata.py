"""Reading image metadata from hostile files: the A1111 parameters parser on the
worst lines we know of (at the 128 KiB cap), a zTXt bomb, and importing a folder
of 200 good PNGs with 20 hostile files mixed in. Issue 12.1: the old regex took
56 s on a 64 KB line; one hostile file held a whole import for hours.

Run: .venv/bin/python bench/bench_metadata.py
"""

from __future__ import annotations

import io
import struct
import tempfile
import time
import zlib
from pathlib import Path

from _harness import median, record
from PIL import Image, PngImagePlugin

from desktop_app.store.a1111 import MAX_PARAMETERS_CHARS, parse_a1111_parameters
from desktop_app.store.database import open_database
from desktop_app.store.gallery import Gallery
from desktop_app.store.importing import import_folder

HOSTILE_UNITS = ["a", "a,", "x:", '"', 'ab: "\\", ', "ab cd "]
GOOD = 200
HOSTILE = 20


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def _bomb_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    data = buffer.getvalue()
    bomb = _chunk(b"zTXt", b"parameters\x00\x00" + zlib.compress(b"a" * 8_000_000, 9))
    return data[:33] + bomb + data[33:]


def main() -> None:
    lines = []
    worst = 0.0
    for unit in HOSTILE_UNITS:
        text = "p\n" + (unit * MAX_PARAMETERS_CHARS)[: MAX_PARAMETERS_CHARS - 10]
        times = []
        for _ in range(5):
            started = time.perf_counter()
            parse_a1111_parameters(text)
            times.append(time.perf_counter() - started)
        worst = max(worst, median(times))
        lines.append(f"parameters line of {len(text):,} chars of {unit!r}: "
                     f"median {median(times) * 1000:.1f} ms")
    lines.append(f"worst hostile parameters text: {worst * 1000:.1f} ms (was 56 s at 64 KB)")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for n in range(GOOD):
            info = PngImagePlugin.PngInfo()
            info.add_text("parameters", f"fox {n}\nSteps: 20, Seed: {n}, Size: 64x64, Model: m")
            Image.new("RGB", (64, 64)).save(folder / f"good{n:03}.png", pnginfo=info)
        bomb = _bomb_png()
        for n in range(HOSTILE):
            (folder / f"bomb{n:02}.png").write_bytes(bomb)
        gallery = Gallery(open_database(Path(tmp) / "db.sqlite"))
        started = time.perf_counter()
        report = import_folder(folder, gallery)
        took = time.perf_counter() - started
    lines.append(f"zTXt bomb: {len(bomb):,} bytes on disk, 8 MB of colon-less text inflated")
    lines.append(f"import of {GOOD} good PNGs + {HOSTILE} bombs: {took:.2f} s "
                 f"({report.imported} imported, {len(report.skipped)} skipped)")
    record("Metadata: hostile files (bench/bench_metadata.py)", lines)


if __name__ == "__main__":
    main()
