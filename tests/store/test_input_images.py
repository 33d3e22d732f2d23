"""The content-addressed store of source images and masks."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from desktop_app.store.input_images import InputImageError, InputImages, MissingInputImage


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def test_a_source_is_stored_once_as_png_named_by_its_content(tmp_path: Path) -> None:
    store = InputImages(tmp_path / "inputs")
    photo = Image.new("RGB", (101, 67), (200, 30, 30))
    first = store.add(encoded(photo, "JPEG"))
    again = store.add(encoded(photo, "JPEG"))
    assert first == again and (first.width, first.height) == (101, 67)
    data = store.read(first)
    assert hashlib.sha256(data).hexdigest() == first.sha256
    assert store.path(first).name == f"{first.sha256}.png"
    assert len(list((tmp_path / "inputs").rglob("*.png"))) == 1
    with Image.open(io.BytesIO(data)) as back:
        assert back.format == "PNG" and back.mode == "RGB"


def test_a_mask_is_stored_as_grey_white_repaints(tmp_path: Path) -> None:
    store = InputImages(tmp_path)
    mask = Image.new("RGB", (16, 16), "black")
    mask.paste((255, 255, 255), (0, 0, 8, 16))
    ref = store.add(encoded(mask), "mask")
    with Image.open(io.BytesIO(store.read(ref))) as back:
        assert back.mode == "L" and back.getpixel((2, 2)) == 255 and back.getpixel((12, 2)) == 0


def test_a_mask_drawn_only_in_transparency_takes_transparent_as_repaint(tmp_path: Path) -> None:
    store = InputImages(tmp_path)
    mask = Image.new("RGBA", (16, 16), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 8, 16))  # the OpenAI convention: transparent = edit
    ref = store.add(encoded(mask), "mask")
    with Image.open(io.BytesIO(store.read(ref))) as back:
        assert back.getpixel((2, 2)) == 255 and back.getpixel((12, 2)) == 0


def test_exif_orientation_is_applied_so_the_source_is_upright(tmp_path: Path) -> None:
    photo = Image.new("RGB", (40, 20), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to display
    out = io.BytesIO()
    photo.save(out, format="JPEG", exif=exif)
    ref = InputImages(tmp_path).add(out.getvalue())
    assert (ref.width, ref.height) == (20, 40)


@pytest.mark.parametrize(("data", "message"), [
    (b"not an image at all", "not a PNG, JPEG or WebP"),
    (encoded(Image.new("RGB", (8, 8)))[:40], "damaged or truncated|not a PNG"),
    (encoded(Image.new("RGB", (8, 8)), "GIF"), "not a PNG, JPEG or WebP"),
])
def test_a_file_that_is_not_a_usable_image_is_refused_clearly(
        tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(InputImageError, match=message):
        InputImages(tmp_path).add(data)
    assert not list(tmp_path.rglob("*.png"))


def test_a_missing_or_folder_path_names_the_path(tmp_path: Path) -> None:
    store = InputImages(tmp_path / "inputs")
    with pytest.raises(InputImageError, match="There is no file"):
        store.add_file(tmp_path / "nope.png")
    with pytest.raises(InputImageError, match="is a folder"):
        store.add_file(tmp_path)


def test_a_damaged_or_deleted_stored_input_is_reported_not_used(tmp_path: Path) -> None:
    store = InputImages(tmp_path)
    ref = store.add(encoded(Image.new("RGB", (8, 8), "red")))
    store.path(ref).write_bytes(encoded(Image.new("RGB", (8, 8), "green")))
    with pytest.raises(MissingInputImage, match="damaged"):
        store.read(ref)
    store.path(ref).unlink()
    with pytest.raises(MissingInputImage, match="missing"):
        store.read(ref)


@settings(max_examples=150, deadline=500)
@given(st.binary(max_size=2000))
def test_any_bytes_become_a_stored_image_or_a_clear_error(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        store = InputImages(Path(folder))
        try:
            ref = store.add(data)
        except InputImageError as error:
            assert str(error)
        else:
            assert store.has(ref)


def test_put_keeps_exact_bytes_under_their_name_and_refuses_a_mismatch(tmp_path: Path) -> None:
    from desktop_app.domain.request import ImageRef

    store = InputImages(tmp_path / "inputs")
    data = b"\x89PNG exact bytes from the desktop"
    sha = hashlib.sha256(data).hexdigest()
    with pytest.raises(MissingInputImage, match="does not match its content"):
        store.put(sha, data + b"!")
    assert not store.path(sha).exists()
    store.path(sha).parent.mkdir(parents=True)
    store.path(sha).write_bytes(b"damaged")  # a damaged copy is replaced
    store.put(sha, data)
    assert store.read(ImageRef(sha, 1, 1)) == data
