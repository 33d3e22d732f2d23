"""Image files: atomic writes with metadata, reading metadata back (ours and
other tools'), thumbnails, and importing an existing folder into the gallery.

Everything here blocks; the engine runs it in a worker thread, never on the
UI thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from desktop_app.store.a1111 import MetadataError, a1111_parameters, parse_a1111_parameters
from desktop_app.store.database import StoreError
from desktop_app.store.image_metadata import (
    MAX_PIXELS,
    ImageMetadata,
    bomb_guard,
    read_metadata,
)
from desktop_app.store.importing import (
    IMAGE_SUFFIXES,
    TEMP_SUFFIX,
    ImportReport,
    import_folder,
)
from desktop_app.store.metadata import embed

log = logging.getLogger(__name__)

EXTENSIONS = {"png": ".png", "jpeg": ".jpg", "jpg": ".jpg", "webp": ".webp"}
_STEM = re.compile(r"^[\w.\-]+$")

__all__ = [
    "IMAGE_SUFFIXES", "MAX_PIXELS", "TEMP_SUFFIX", "ImageMetadata", "ImportReport",
    "MetadataError", "a1111_parameters",
    "import_folder", "make_thumbnail", "parse_a1111_parameters",
    "read_image_metadata", "remove_stale_temp_files", "write_image_atomic",
]


# -- writing -------------------------------------------------------------------------

def write_image_atomic(folder: Path, stem: str, data: bytes, fmt: str, *, parameters: str,
                       provenance: Mapping[str, Any],
                       journal: Callable[[Path], None] | None = None) -> Path:
    """Write ``data`` with its metadata as ``folder/stem.ext`` (``stem-1.ext`` ... if
    taken) and return the path. The bytes go to a hidden temp file in the same
    folder, are fsynced, then linked into place (never replacing an existing
    file) and the folder is fsynced: the final name never holds a partial file.

    ``journal(final_path)`` is called just before the file appears under its
    final name (e.g. ``JobQueue.note_pending_files``), so crash recovery can
    remove a file whose index row was never committed."""
    fmt = fmt.lower()
    if fmt not in EXTENSIONS:
        raise StoreError(f"Cannot save images as {fmt!r}: use png, jpeg or webp.")
    if not _STEM.match(stem):
        raise StoreError(f"{stem!r} is not a plain file name.")
    fmt = "jpeg" if fmt == "jpg" else fmt
    payload = embed(data, fmt, parameters, provenance)
    folder.mkdir(parents=True, exist_ok=True)
    # The writer's pid is in the name, so a sweep by another process (the CLI while
    # the window runs) never removes a file that is still being written.
    fd, temp_name = tempfile.mkstemp(prefix=f".{stem}.{os.getpid()}.", suffix=TEMP_SUFFIX,
                                     dir=folder)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        final = _link_unique(temp, folder, stem, EXTENSIONS[fmt], journal)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    _fsync_dir(folder)
    return final


def _link_unique(temp: Path, folder: Path, stem: str, ext: str,
                 journal: Callable[[Path], None] | None) -> Path:
    for n in range(10_000):
        final = folder / (f"{stem}{ext}" if n == 0 else f"{stem}-{n}{ext}")
        if final.exists():
            continue
        if journal is not None:
            journal(final)
        try:
            os.link(temp, final)  # atomic, and fails rather than overwrite
            return final
        except FileExistsError:
            continue
        except OSError:  # no hard links here (some network or FAT drives)
            if final.exists():
                continue
            os.replace(temp, final)
            return final
    raise StoreError(f"Too many files named {stem}* in {folder}.")


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temp_files(folder: Path) -> int:
    """Delete temp files a crash left mid-write (they never carry a final name)."""
    removed = 0
    for path in folder.rglob(f".*{TEMP_SUFFIX}"):
        if _writer_alive(path):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


def _writer_alive(temp: Path) -> bool:
    """Whether another live process is writing this temp file (its pid is in the name)."""
    parts = temp.name[: -len(TEMP_SUFFIX)].split(".")
    try:
        pid = int(parts[-2])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- reading metadata ----------------------------------------------------------------

def read_image_metadata(path: Path) -> ImageMetadata | None:
    """Metadata of a PNG, JPEG or WebP file; None when it is not an image we can
    read or its metadata is unusable (``image_metadata.read_metadata`` says why)."""
    try:
        return read_metadata(path)
    except MetadataError:
        return None


# -- thumbnails ----------------------------------------------------------------------

def thumbnail_path(src: Path, cache_dir: Path, size: int = 256) -> Path:
    """Where the thumbnail of ``src`` as it is now (path + mtime + size) lives."""
    stat = src.stat()
    key = f"{src.resolve()}\0{stat.st_mtime_ns}\0{stat.st_size}\0{size}"
    return cache_dir / f"{hashlib.sha1(key.encode('utf-8')).hexdigest()}.jpg"


def make_thumbnail(src: Path, cache_dir: Path, size: int = 256) -> Path:
    """A JPEG (quality 85) no larger than ``size`` px on its long side, cached on
    disk; a changed source gets a new one. Raises ``StoreError`` for files that
    are not images or are too large to decode safely."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        target = thumbnail_path(src, cache_dir, size)
    except OSError as error:
        raise StoreError(f"Cannot read {src}: {error.strerror or error}.") from error
    if target.exists():
        return target
    try:
        with bomb_guard(), Image.open(src) as opened:
            if opened.size[0] * opened.size[1] > MAX_PIXELS:
                raise StoreError(f"{src.name} is {opened.size[0]}x{opened.size[1]} pixels, too "
                                 "large to preview safely.")
            opened.draft("RGB", (size, size))  # JPEG: decode at a reduced scale
            image = ImageOps.exif_transpose(opened)
            image.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=2.0)
            if image.mode in ("RGBA", "LA", "P", "PA"):
                image = image.convert("RGBA")
                backdrop = Image.new("RGB", image.size, (128, 128, 128))
                backdrop.paste(image, mask=image.getchannel("A"))
                image = backdrop
            elif image.mode != "RGB":
                image = image.convert("RGB")
            cache_dir.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".thumb.", suffix=TEMP_SUFFIX, dir=cache_dir)
            with os.fdopen(fd, "wb") as handle:
                image.save(handle, "JPEG", quality=85)
            os.replace(temp, target)  # a cache: atomic, but no fsync needed
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise StoreError(f"{src.name} is too large to preview safely.") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise StoreError(f"Cannot make a preview of {src.name}: it is not a readable "
                         f"image ({error}).") from error
    return target


