"""Input images (sources and masks), stored once, named by their content.

A job that works on an image refers to it by the SHA-256 of a normalised PNG
(``domain.image_work.ImageRef``); the queue row and a remote job message carry
only that name, never the pixels. The file lives at
``<data>/inputs/<first two hex digits>/<sha256>.png``, written atomically and
durably before the job that needs it is queued, so a crash never leaves a queued
job pointing at nothing.

Normalising: whatever the user gives (PNG, JPEG, WebP, any mode) is decoded once,
within Pillow's pixel limit, EXIF orientation applied, and re-encoded as PNG:
sources as RGB, masks as 8-bit grey (white = repaint). A mask given with
transparency and no painting (alpha only) takes transparent = repaint, the
convention of the OpenAI edits endpoint and most painting tools. The same
picture given twice is stored once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from desktop_app.domain.errors import ImageDeskError
from desktop_app.domain.image_work import MAX_INPUT_SIDE, ImageRef
from desktop_app.store.image_metadata import bomb_guard

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

MAX_INPUT_BYTES = 64 * 1024 * 1024
Role = Literal["source", "mask"]
__all__ = ["MAX_INPUT_BYTES", "InputImageError", "InputImages", "MissingInputImage"]


class InputImageError(ImageDeskError):
    """A file given as a source image or mask cannot be used; the message says why."""


class MissingInputImage(InputImageError):
    """A job names an input image that is not (or no longer correctly) stored."""


class InputImages:
    """The profile's content-addressed store of input images."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @classmethod
    def in_profile(cls, data_dir: Path) -> InputImages:
        """The store of the profile whose data folder is ``data_dir`` (``AppPaths.inputs_dir``)."""
        return cls(Path(data_dir) / "inputs")

    def path(self, ref: ImageRef | str) -> Path:
        sha = ref.sha256 if isinstance(ref, ImageRef) else ref
        return self.folder / sha[:2] / f"{sha}.png"

    def add_file(self, path: Path, role: Role = "source",
                 gallery_id: int | None = None) -> ImageRef:
        """Store the image file at ``path``; errors name the file and what to fix."""
        path = Path(path)
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_INPUT_BYTES + 1)
        except FileNotFoundError:
            raise InputImageError(f"There is no file {path}.") from None
        except IsADirectoryError:
            raise InputImageError(f"{path} is a folder; give an image file.") from None
        except OSError as error:
            raise InputImageError(f"Cannot read {path}: {error.strerror or error}.") from None
        return self.add(data, role, gallery_id=gallery_id, name=str(path))

    def add(self, data: bytes, role: Role = "source", *, gallery_id: int | None = None,
            name: str = "the image") -> ImageRef:
        """Store ``data`` (an encoded PNG, JPEG or WebP) and return its reference."""
        if len(data) > MAX_INPUT_BYTES:
            raise InputImageError(f"{name} is over {MAX_INPUT_BYTES // 2**20} MB; "
                                  "use a smaller file.")
        png, width, height = _normalise(data, role, name)
        sha = hashlib.sha256(png).hexdigest()
        target = self.path(sha)
        if not target.exists():
            _write_durably(target, png)
        return ImageRef(sha256=sha, width=width, height=height, gallery_id=gallery_id)

    def mark_private(self, ref: ImageRef) -> None:
        """Remember that this image must never leave this machine (it came from a private
        folder or a private job): every job using it is private. Kept beside the image,
        so it holds across restarts; it is never cleared."""
        marker = self.path(ref).with_suffix(".private")
        if not marker.exists():
            _write_durably(marker, b"")

    def is_private(self, ref: ImageRef) -> bool:
        return self.path(ref).with_suffix(".private").exists()

    def read(self, ref: ImageRef) -> bytes:
        """The stored PNG, checked against its name (a damaged file is refused)."""
        target = self.path(ref)
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise MissingInputImage(
                f"The input image {ref.sha256[:12]}… is missing from {self.folder}; "
                "the job cannot run. Queue it again with the source image.") from None
        except OSError as error:
            raise MissingInputImage(f"Cannot read the input image {target}: "
                                    f"{error.strerror or error}.") from None
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise MissingInputImage(
                f"The input image {target} is damaged (its content no longer matches its "
                "name); queue the job again with the source image.")
        return data

    def put(self, sha256: str, data: bytes) -> None:
        """Keep ``data`` as the stored image named ``sha256``, exactly as given (a
        remote worker receiving a job's inputs); refused unless it matches its name."""
        if hashlib.sha256(data).hexdigest() != sha256:
            raise MissingInputImage(f"The input image {sha256[:12]}… does not match its "
                                    "content; it was not stored.")
        target = self.path(sha256)
        with contextlib.suppress(OSError):  # already there and sound: keep it
            if hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
                return
        _write_durably(target, data)  # absent, or damaged: replaced

    def has(self, ref: ImageRef) -> bool:
        return self.path(ref).is_file()


def _normalise(data: bytes, role: Role, name: str) -> tuple[bytes, int, int]:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with bomb_guard(), Image.open(io.BytesIO(data), formats=("PNG", "JPEG", "WEBP")) as image:
            width, height = image.size
            if max(width, height) > MAX_INPUT_SIDE:
                raise InputImageError(f"{name} is {width}x{height}; the largest source "
                                      f"ImageDesk takes is {MAX_INPUT_SIDE} pixels a side.")
            image.load()
            upright = ImageOps.exif_transpose(image)
            converted = _as_mask(upright) if role == "mask" else upright.convert("RGB")
    except InputImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning):
        raise InputImageError(f"{name} is not a PNG, JPEG or WebP image ImageDesk can "
                              "open (or it is too large to decode).") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise InputImageError(f"{name} is damaged or truncated: {error}.") from None
    out = io.BytesIO()
    converted.save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue(), converted.width, converted.height


def _as_mask(image: PILImage) -> PILImage:
    """8-bit grey, white = repaint. An image whose only content is transparency
    takes transparent = repaint."""
    if "A" in image.getbands():
        alpha = image.getchannel("A")
        grey = image.convert("L")
        low, high = grey.getextrema()
        if alpha.getextrema() != (255, 255) and low == high:  # alpha carries the mask
            return alpha.point(lambda v: 255 - v)
        return grey
    return image.convert("L")


def _write_durably(target: Path, data: bytes) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.stem[:12]}.", suffix=".tmp",
                                         dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
    except OSError as error:
        raise InputImageError(f"Cannot store the input image in {target.parent}: "
                              f"{error.strerror or error}.") from None
