from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from desktop_app.store import files
from desktop_app.store.database import StoreError
from desktop_app.store.files import (
    a1111_parameters,
    import_folder,
    make_thumbnail,
    parse_a1111_parameters,
    read_image_metadata,
    write_image_atomic,
)
from desktop_app.store.gallery import Gallery

PROVENANCE = {"app": "ImageDesk", "provider": "local", "model": "builtin:tiny",
              "attempts": [{"provider": "local", "outcome": "succeeded"}],
              "fallback_reason": None, "cost_usd": 0.0}


def encoded(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    image = Image.new(mode, size, (200, 40, 90) if mode == "RGB" else (200, 40, 90, 128))
    buffer = io.BytesIO()
    image.save(buffer, {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[fmt])
    return buffer.getvalue()


def params(prompt: str, negative: str = "", seed: int = 1234, steps: int = 20,
           size: tuple[int, int] = (64, 48)) -> str:
    return a1111_parameters(prompt, negative, steps, "Euler a", 7.0, seed, *size, "builtin:tiny",
                            {"Provider": "local"})


def exif_user_comment_as_a1111_reads_it(path: Path) -> str:
    """piexif.helper.UserComment.load: 8-byte prefix, then UTF-16-BE for UNICODE."""
    with Image.open(path) as image:
        raw = image.getexif().get_ifd(0x8769)[0x9286]
    assert raw[:8] == b"UNICODE\x00"
    return str(raw[8:].decode("utf-16-be"))


PROMPTS = [
    ("a lighthouse at dusk", ""),
    ("a cat, sitting: on a mat\nsecond line, more: detail", "blurry, lowres\nbad hands"),
    ("東京の夜景、ネオン街: 雨の夜", "ぼやけた, 低品質"),
    ("Ünïcödé façade, 🦊 fox", "ж"),
]


@pytest.mark.parametrize(("prompt", "negative"), PROMPTS)
def test_png_parameters_parse_back_through_a_third_party_reader(tmp_path: Path, prompt: str,
                                                                negative: str) -> None:
    path = write_image_atomic(tmp_path, "20261130-181500_job12_0", encoded("png"), "png",
                              parameters=params(prompt, negative, seed=987654321, steps=33),
                              provenance=PROVENANCE)
    with Image.open(path) as image:  # Pillow as any other reader would use it
        image.load()
        text = image.text["parameters"]  # type: ignore[attr-defined]
        provenance = json.loads(image.text["imagedesk"])  # type: ignore[attr-defined]
        assert image.size == (64, 48)
    parsed = parse_a1111_parameters(text)
    assert (parsed["Prompt"], parsed["Negative prompt"]) == (prompt, negative)
    assert (parsed["Seed"], parsed["Steps"], parsed["Size"]) == ("987654321", "33", "64x48")
    assert provenance == PROVENANCE


def test_latin1_parameters_use_a_plain_text_chunk(tmp_path: Path) -> None:
    path = write_image_atomic(tmp_path, "a", encoded("png"), "png",
                              parameters=params("a plain prompt"), provenance={})
    assert b"tEXtparameters\x00a plain prompt" in path.read_bytes()


def test_png_pixels_are_not_re_encoded(tmp_path: Path) -> None:
    data = encoded("png")
    path = write_image_atomic(tmp_path, "a", data, "png", parameters=params("x"),
                              provenance=PROVENANCE)
    written = path.read_bytes()
    idat = data[data.index(b"IDAT") - 4:]
    assert written.endswith(idat)


def test_atomic_write_leaves_no_temp_files_and_never_overwrites(tmp_path: Path) -> None:
    first = write_image_atomic(tmp_path, "20261130-181500_job12_0", encoded("png"), "png",
                               parameters=params("one"), provenance={})
    second = write_image_atomic(tmp_path, "20261130-181500_job12_0", encoded("png"), "png",
                                parameters=params("two"), provenance={})
    assert first.name == "20261130-181500_job12_0.png"
    assert second.name == "20261130-181500_job12_0-1.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name])
    assert read_image_metadata(first).prompt == "one"  # type: ignore[union-attr]


def test_bytes_that_are_not_the_stated_format_are_refused_and_nothing_is_left(
        tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not png"):
        write_image_atomic(tmp_path, "x", encoded("jpeg"), "png", parameters="p", provenance={})
    with pytest.raises(StoreError, match="truncated"):
        write_image_atomic(tmp_path, "x", encoded("png")[:60], "png", parameters="p",
                           provenance={})
    with pytest.raises(StoreError):
        write_image_atomic(tmp_path, "../escape", encoded("png"), "png", parameters="p",
                           provenance={})
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_no_partial_file(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        write_image_atomic(tmp_path, "x", encoded("png"), "png", parameters="p", provenance={})
    assert list(tmp_path.iterdir()) == []


def test_write_works_where_hard_links_are_not_supported(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: object, dst: object) -> None:
        raise PermissionError("operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    one = write_image_atomic(tmp_path, "x", encoded("png"), "png", parameters=params("a"),
                             provenance={})
    two = write_image_atomic(tmp_path, "x", encoded("png"), "png", parameters=params("b"),
                             provenance={})
    assert (one.name, two.name) == ("x.png", "x-1.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x-1.png", "x.png"]


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
@pytest.mark.parametrize(("prompt", "negative"), PROMPTS)
def test_jpeg_and_webp_carry_parameters_in_exif_user_comment(tmp_path: Path, fmt: str,
                                                             prompt: str, negative: str) -> None:
    path = write_image_atomic(tmp_path, "img", encoded(fmt), fmt,
                              parameters=params(prompt, negative, seed=42), provenance=PROVENANCE)
    assert path.suffix == (".jpg" if fmt == "jpeg" else ".webp")
    text = exif_user_comment_as_a1111_reads_it(path)
    parsed = parse_a1111_parameters(text)
    assert (parsed["Prompt"], parsed["Negative prompt"], parsed["Seed"]) == (
        prompt, negative, "42")
    meta = read_image_metadata(path)
    assert meta is not None
    assert (meta.format, meta.prompt, meta.seed, meta.steps) == (fmt, prompt, 42, 20)
    assert meta.provenance == PROVENANCE
    with Image.open(path) as image:
        image.load()  # the pixels still decode
        assert image.size == (64, 48)


def test_webp_with_alpha_keeps_alpha_after_adding_exif(tmp_path: Path) -> None:
    path = write_image_atomic(tmp_path, "a", encoded("webp", mode="RGBA"), "webp",
                              parameters=params("alpha"), provenance={})
    with Image.open(path) as image:
        assert image.mode == "RGBA"
    assert read_image_metadata(path).prompt == "alpha"  # type: ignore[union-attr]


def test_jpeg_prompt_too_long_for_exif_drops_provenance_then_refuses(tmp_path: Path) -> None:
    big = {"blob": "x" * 70_000}
    path = write_image_atomic(tmp_path, "a", encoded("jpeg"), "jpeg",
                              parameters=params("fits"), provenance=big)
    meta = read_image_metadata(path)
    assert meta is not None and meta.prompt == "fits" and meta.provenance is None
    with pytest.raises(StoreError, match="save as PNG"):
        write_image_atomic(tmp_path, "b", encoded("jpeg"), "jpeg",
                           parameters=params("p" * 40_000), provenance={})


def test_reads_an_a1111_png_made_by_another_tool(tmp_path: Path) -> None:
    infotext = ("masterpiece, a castle on a hill, (sunset:1.2)\n"
                "Negative prompt: lowres, bad anatomy\n"
                "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 3337410958, "
                "Size: 512x768, Model hash: 7f96a1a9ca, Model: AnythingV5, Version: v1.6.0")
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", infotext)
    path = tmp_path / "00012-3337410958.png"
    Image.new("RGB", (51, 76)).save(path, pnginfo=info)
    meta = read_image_metadata(path)
    assert meta is not None
    assert meta.prompt == "masterpiece, a castle on a hill, (sunset:1.2)"
    assert meta.negative_prompt == "lowres, bad anatomy"
    assert (meta.steps, meta.seed, meta.cfg_scale, meta.sampler, meta.model) == (
        28, 3337410958, 7.5, "DPM++ 2M Karras", "AnythingV5")
    assert meta.fields["Size"] == "512x768"
    assert meta.provenance is None


def test_reads_an_a1111_jpeg_written_with_piexif_conventions(tmp_path: Path) -> None:
    exif = Image.Exif()
    comment = b"UNICODE\x00" + "a fox\nSteps: 5, Seed: 9, Size: 64x64".encode("utf-16-be")
    exif.get_ifd(0x8769)[0x9286] = comment
    path = tmp_path / "fox.jpg"
    Image.new("RGB", (64, 64)).save(path, exif=exif.tobytes())
    meta = read_image_metadata(path)
    assert meta is not None and (meta.prompt, meta.seed, meta.steps) == ("a fox", 9, 5)


def test_plain_photos_and_non_images_have_no_generation_metadata(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (10, 10)).save(photo)
    meta = read_image_metadata(photo)
    assert meta is not None and not meta.is_generated
    text = tmp_path / "notes.png"
    text.write_text("not really a png")
    assert read_image_metadata(text) is None
    assert read_image_metadata(tmp_path / "missing.png") is None


def test_thumbnail_is_a_small_jpeg_cached_until_the_source_changes(tmp_path: Path) -> None:
    src = write_image_atomic(tmp_path, "big", encoded("png", (1024, 512)), "png",
                             parameters=params("t"), provenance={})
    cache = tmp_path / "thumbs"
    thumb = make_thumbnail(src, cache)
    with Image.open(thumb) as image:
        assert (image.format, image.size) == ("JPEG", (256, 128))
    assert make_thumbnail(src, cache) == thumb
    stamp = thumb.stat().st_mtime_ns
    assert make_thumbnail(src, cache).stat().st_mtime_ns == stamp  # not remade
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))
    assert make_thumbnail(src, cache) != thumb
    assert not [p for p in cache.iterdir() if p.name.endswith(files.TEMP_SUFFIX)]


def test_thumbnail_of_a_transparent_image(tmp_path: Path) -> None:
    src = tmp_path / "a.webp"
    src.write_bytes(encoded("webp", (300, 300), mode="RGBA"))
    with Image.open(make_thumbnail(src, tmp_path / "t", size=64)) as image:
        assert (image.mode, image.size) == ("RGB", (64, 64))


def test_thumbnail_refuses_decompression_bombs_and_non_images(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    Image.new("1", (12_000, 12_000)).save(bomb)  # 144 Mpx, a few KB on disk
    with pytest.raises(StoreError, match="too large"):
        make_thumbnail(bomb, tmp_path / "t")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(StoreError, match="not a readable image"):
        make_thumbnail(junk, tmp_path / "t")


def test_import_folder_indexes_generated_images_and_explains_skips(tmp_path: Path,
                                                                   gallery: Gallery) -> None:
    folder = tmp_path / "old outputs"
    (folder / "sub").mkdir(parents=True)
    ours = write_image_atomic(folder, "ours", encoded("png"), "png",
                              parameters=params("our fox", seed=5),
                              provenance={**PROVENANCE, "provider": "openai", "cost_usd": 0.04})
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "their castle\nSteps: 20, Seed: 7, Size: 512x768, Model: x")
    Image.new("RGB", (8, 8)).save(folder / "sub" / "theirs.png", pnginfo=info)
    write_image_atomic(folder, "jpeg", encoded("jpeg"), "jpeg",
                       parameters=params("jpeg owl"), provenance={})
    Image.new("RGB", (8, 8)).save(folder / "photo.jpg")
    (folder / "readme.txt").write_text("hello")
    (folder / "broken.png").write_bytes(b"nope")

    report = import_folder(folder, gallery)
    assert report.imported == 3
    reasons = {Path(p).name: why for p, why in report.skipped}
    assert set(reasons) == {"photo.jpg", "readme.txt", "broken.png"}
    assert "no generation parameters" in reasons["photo.jpg"]
    assert "not a PNG" in reasons["readme.txt"]
    assert "not a PNG, JPEG or WebP image that can be read" in reasons["broken.png"]
    [fox] = gallery.search("fox")
    assert (fox.seed, fox.provider, fox.cost_usd, fox.path) == (5, "openai", 0.04, ours.resolve())
    [castle] = gallery.search("castle")
    assert (castle.seed, castle.width, castle.height, castle.steps) == (7, 512, 768, 20)
    assert gallery.count("owl") == 1

    again = import_folder(folder, gallery)
    assert (again.imported, again.already_indexed) == (0, 3)
    assert gallery.count() == 3


def test_import_of_a_missing_folder_is_a_clear_error(tmp_path: Path, gallery: Gallery) -> None:
    with pytest.raises(StoreError, match="not a folder"):
        import_folder(tmp_path / "nope", gallery)


def test_stale_temp_files_are_cleaned_up(tmp_path: Path) -> None:
    (tmp_path / f".x.abc{files.TEMP_SUFFIX}").write_bytes(b"half")
    keep = tmp_path / "x.png"
    keep.write_bytes(b"whole")
    assert files.remove_stale_temp_files(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
