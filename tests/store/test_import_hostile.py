"""Importing a folder that holds hostile or damaged files: each bad file is
skipped with its reason, quickly, and every good file is still imported
(issues 12.1 and 12.7)."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from desktop_app.store.files import a1111_parameters, import_folder, write_image_atomic
from desktop_app.store.gallery import Gallery
from desktop_app.store.image_metadata import MAX_TEXT_BYTES


def chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def tiny_png(*text_chunks: bytes, size: tuple[int, int] = (8, 8)) -> bytes:
    """A valid 8x8 PNG with ``text_chunks`` inserted before its pixels."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    data = buffer.getvalue()
    ihdr_end = 8 + 8 + 13 + 4
    ihdr = bytearray(data[8:ihdr_end])
    ihdr[8:16] = struct.pack(">II", *size)
    ihdr[-4:] = struct.pack(">I", zlib.crc32(bytes(ihdr[4:-4])) & 0xFFFFFFFF)
    return data[:8] + bytes(ihdr) + b"".join(text_chunks) + data[ihdr_end:]


def ztxt(key: str, text: bytes) -> bytes:
    return chunk(b"zTXt", key.encode() + b"\x00\x00" + zlib.compress(text, 9))


def good_files(folder: Path, count: int = 3) -> None:
    for n in range(count):
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", f"good fox {n}\nSteps: 20, Seed: {n}, Size: 8x8, Model: m")
        Image.new("RGB", (8, 8)).save(folder / f"good{n}.png", pnginfo=info)


def reasons(report: object) -> dict[str, str]:
    return {Path(p).name: why for p, why in report.skipped}  # type: ignore[attr-defined]


@pytest.mark.timeout(30)  # before the fix this import took hours
def test_a_one_kilobyte_ztxt_bomb_is_skipped_and_the_folder_still_imports(
        tmp_path: Path, gallery: Gallery) -> None:
    good_files(tmp_path)
    bomb = ztxt("parameters", b"a" * (4 * MAX_TEXT_BYTES))  # a colon-less line, 4 MB inflated
    (tmp_path / "bomb.png").write_bytes(tiny_png(bomb))
    quadratic = ztxt("parameters", b"a" * 1_000_000)  # what Pillow let through: 1 MB
    (tmp_path / "quadratic.png").write_bytes(tiny_png(quadratic))
    assert len(bomb) < 10_000
    report = import_folder(tmp_path, gallery)
    assert report.imported == 3 and gallery.count("fox") == 3
    why = reasons(report)
    assert "inflates to more than" in why["bomb.png"]
    assert "characters long" in why["quadratic.png"]


@pytest.mark.timeout(30)
def test_a_long_colonless_parameters_text_imports_as_its_prompt(tmp_path: Path,
                                                                gallery: Gallery) -> None:
    text = "a" * 100_000  # the 64 KB case took 56 s
    (tmp_path / "long.png").write_bytes(tiny_png(ztxt("parameters", text.encode())))
    report = import_folder(tmp_path, gallery)
    assert report.imported == 1
    [record] = gallery.search("")
    assert record.prompt == text


def test_a_huge_uncompressed_text_chunk_of_ours_is_refused_unread(tmp_path: Path,
                                                                  gallery: Gallery) -> None:
    good_files(tmp_path, 1)
    big = chunk(b"tEXt", b"parameters\x00" + b"x" * (MAX_TEXT_BYTES + 1))
    (tmp_path / "big.png").write_bytes(tiny_png(big))
    report = import_folder(tmp_path, gallery)
    assert report.imported == 1
    assert "(at most 1,048,576 are read)" in reasons(report)["big.png"]


def test_a_header_claiming_billions_of_pixels_is_skipped(tmp_path: Path,
                                                         gallery: Gallery) -> None:
    params = chunk(b"tEXt", b"parameters\x00huge\nSteps: 1, Seed: 1, Size: 8x8")
    (tmp_path / "huge.png").write_bytes(tiny_png(params, size=(100_000, 100_000)))
    report = import_folder(tmp_path, gallery)
    assert report.imported == 0
    assert "100000x100000 pixels" in reasons(report)["huge.png"]


@pytest.mark.parametrize(("infotext", "reason"), [
    ("big seed\nSteps: 20, Seed: 99999999999999999999999, Size: 8x8", "Seed"),
    ("neg seed\nSteps: 20, Seed: -99999999999999999999, Size: 8x8", "Seed"),
    ("big size\nSteps: 20, Seed: 1, Size: 99999999999999999999x8", "Size"),
    ("bad size\nSteps: 20, Seed: 1, Size: 8x8x8", "Size"),
    ("steps\nSteps: 1e400, Seed: 1, Size: 8x8", "Steps"),
    ("cfg\nSteps: 2, CFG scale: inf, Seed: 1, Size: 8x8", "CFG scale"),
    ("cfg\nSteps: 2, CFG scale: 1e308, Seed: 1, Size: 8x8", "CFG scale"),
])
def test_a_value_out_of_range_skips_that_file_only(tmp_path: Path, gallery: Gallery,
                                                  infotext: str, reason: str) -> None:
    good_files(tmp_path)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", infotext)
    Image.new("RGB", (8, 8)).save(tmp_path / "bad.png", pnginfo=info)
    report = import_folder(tmp_path, gallery)
    assert report.imported == 3
    why = reasons(report)["bad.png"]
    assert why.startswith("unusable metadata: its ") and reason in why


@pytest.mark.parametrize(("provenance", "reason"), [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    (json.dumps({"provider": "x", "cost_usd": "a lot"}), "cost"),
    (json.dumps({"provider": "x", "cost_usd": 1e300}), "cost"),
    (json.dumps({"provider": {"nested": 1}}), "'provider'"),
])
def test_hostile_provenance_json_skips_that_file_only(tmp_path: Path, gallery: Gallery,
                                                      provenance: str, reason: str) -> None:
    good_files(tmp_path, 1)
    write = ztxt("parameters", b"p\nSteps: 1, Seed: 1, Size: 8x8") + ztxt(
        "imagedesk", provenance.encode())
    (tmp_path / "prov.png").write_bytes(tiny_png(write))
    report = import_folder(tmp_path, gallery)
    assert report.imported == 1
    assert reason in reasons(report)["prov.png"]


def test_lone_surrogates_from_json_quoted_values_do_not_abort_the_import(
        tmp_path: Path, gallery: Gallery) -> None:
    good_files(tmp_path)
    text = 'ghost\nSteps: 1, Seed: 1, Size: 8x8, Model: "\\ud800 model, x"'
    (tmp_path / "ghost.png").write_bytes(tiny_png(chunk(b"tEXt", b"parameters\x00"
                                                        + text.encode())))
    report = import_folder(tmp_path, gallery)
    assert report.imported == 4, report.skipped
    [ghost] = gallery.search("ghost")
    assert ghost.model == "? model, x"


def test_one_slow_file_uses_up_only_its_own_time_budget(tmp_path: Path,
                                                        gallery: Gallery) -> None:
    good_files(tmp_path)
    padding = [chunk(b"tEXt", b"Comment\x00hello") for _ in range(60)]
    (tmp_path / "slow.png").write_bytes(tiny_png(*padding))
    now = [0.0]

    def clock() -> float:  # every look at the clock costs 0.1 s: 60 chunks cost 6 s
        now[0] += 0.1
        return now[0]

    report = import_folder(tmp_path, gallery, budget_s=3.0, clock=clock)
    assert report.imported == 3
    assert "took over 3 s" in reasons(report)["slow.png"]


def test_our_own_files_still_import_in_every_format(tmp_path: Path, gallery: Gallery) -> None:
    folder = tmp_path / "images"
    for fmt in ("png", "jpeg", "webp"):
        buffer = io.BytesIO()
        Image.new("RGB", (16, 16)).save(buffer, fmt.upper())
        write_image_atomic(folder, fmt, buffer.getvalue(), fmt,
                           parameters=a1111_parameters(f"{fmt} owl", "", 3, None, 5.0,
                                                       2**63 - 1, 16, 16, "m"),
                           provenance={"provider": "local", "cost_usd": 0.5})
    report = import_folder(folder, gallery)
    assert (report.imported, report.skipped) == (3, [])
    assert {r.seed for r in gallery.search("owl")} == {2**63 - 1}
    assert report.to_dict()["skipped_count"] == 0


def test_an_oversized_jpeg_is_skipped_without_being_read(tmp_path: Path, gallery: Gallery,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop_app.store import image_metadata

    monkeypatch.setattr(image_metadata, "MAX_EXIF_FILE_BYTES", 1000)  # a 64 MB file, scaled
    good_files(tmp_path, 1)
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 90).convert("RGB").save(buffer, "JPEG")
    assert len(buffer.getvalue()) > 1000
    (tmp_path / "big.jpg").write_bytes(buffer.getvalue())
    report = import_folder(tmp_path, gallery)
    assert report.imported == 1
    assert "read for JPEG or WebP metadata" in reasons(report)["big.jpg"]


def test_the_report_reads_as_one_line_of_counts(tmp_path: Path, gallery: Gallery) -> None:
    folder = tmp_path / "in"  # away from the gallery's database files
    folder.mkdir()
    good_files(folder, 2)
    (folder / "notes.txt").write_text("x")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    report = import_folder(folder, gallery)
    assert str(report) == ("imported 2, already indexed 0, skipped 2; "
                           "1 unusable metadata; 1 not a PNG, JPEG or WebP file")
