"""Image files: atomic writes with metadata, reading metadata back (ours and
other tools'), thumbnails, and importing an existing folder into the gallery.

Everything here blocks; the engine runs it in a worker thread, never on the
UI thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from desktop_app.store.a1111 import a1111_parameters, parse_a1111_parameters
from desktop_app.store.database import StoreError
from desktop_app.store.gallery import Gallery, NewImage
from desktop_app.store.metadata import (
    MAKERNOTE_PREFIX,
    PARAMETERS_KEY,
    PROVENANCE_KEY,
    TAG_EXIF_IFD,
    TAG_MAKER_NOTE,
    TAG_USER_COMMENT,
    decode_user_comment,
    embed,
)

log = logging.getLogger(__name__)

EXTENSIONS = {"png": ".png", "jpeg": ".jpg", "jpg": ".jpg", "webp": ".webp"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
TEMP_SUFFIX = ".imagedesk-tmp"
MAX_PIXELS = 8192 * 8192  # larger than anything we generate; bigger files are refused
_STEM = re.compile(r"^[\w.\-]+$")

__all__ = [
    "ImageMetadata", "ImportReport", "a1111_parameters", "import_folder",
    "make_thumbnail", "parse_a1111_parameters", "read_image_metadata",
    "remove_stale_temp_files", "write_image_atomic",
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

@dataclasses.dataclass(frozen=True)
class ImageMetadata:
    """What an image file says about how it was made."""

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
    fields: Mapping[str, str] = dataclasses.field(default_factory=dict)  # every infotext key
    provenance: Mapping[str, Any] | None = None  # our "imagedesk" JSON, if present

    @property
    def is_generated(self) -> bool:
        return self.parameters is not None


def read_image_metadata(path: Path) -> ImageMetadata | None:
    """Metadata of a PNG, JPEG or WebP file; None when it is not an image we can read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with _bomb_guard(), Image.open(path) as image:
            fmt = (image.format or "").lower()
            width, height = image.size
            parameters, provenance_raw = _raw_metadata(image, fmt)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError):
        return None
    if fmt not in ("png", "jpeg", "webp"):
        return None
    provenance = _json_object(provenance_raw)
    if parameters is None:
        return ImageMetadata(fmt, width, height, None, provenance=provenance)
    fields = parse_a1111_parameters(parameters)
    return ImageMetadata(
        format=fmt, width=width, height=height, parameters=parameters,
        prompt=fields.get("Prompt", ""), negative_prompt=fields.get("Negative prompt", ""),
        steps=_int(fields.get("Steps")), sampler=fields.get("Sampler"),
        cfg_scale=_float(fields.get("CFG scale")), seed=_int(fields.get("Seed")),
        model=fields.get("Model"), fields=fields, provenance=provenance,
    )


def _raw_metadata(image: Any, fmt: str) -> tuple[str | None, str | None]:
    if fmt == "png":
        info = image.info
        params = info.get(PARAMETERS_KEY)
        prov = info.get(PROVENANCE_KEY)
        return (str(params) if params is not None else None,
                str(prov) if prov is not None else None)
    exif = image.getexif().get_ifd(TAG_EXIF_IFD)
    comment = exif.get(TAG_USER_COMMENT)
    note = exif.get(TAG_MAKER_NOTE)
    params = decode_user_comment(comment) if comment else None
    prov = None
    if isinstance(note, bytes) and note.startswith(MAKERNOTE_PREFIX):
        prov = note[len(MAKERNOTE_PREFIX):].decode("utf-8", errors="replace")
    return (params or None), prov


def _json_object(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


@contextlib.contextmanager
def _bomb_guard() -> Iterator[None]:
    """Refuse images over MAX_PIXELS instead of decoding them (a decompression bomb)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


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
        with _bomb_guard(), Image.open(src) as opened:
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


# -- importing -----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ImportReport:
    """``skipped`` holds (path, reason) pairs the user can act on."""

    imported: int
    already_indexed: int
    skipped: list[tuple[str, str]]


def import_folder(folder: Path, gallery: Gallery, *, recursive: bool = True,
                  include_without_metadata: bool = False, batch: int = 500) -> ImportReport:
    """Index the images in ``folder`` that carry A1111 parameters (ours or another
    tool's). Files already indexed are counted, not duplicated; everything else
    is listed in ``skipped`` with the reason."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StoreError(f"{folder} is not a folder.")
    known = gallery.paths()
    pending: list[NewImage] = []
    imported = already = 0
    skipped: list[tuple[str, str]] = []
    files = sorted(folder.rglob("*") if recursive else folder.iterdir())
    for path in files:
        if not path.is_file() or path.name.endswith(TEMP_SUFFIX):
            continue
        path = path.resolve()
        if path in known:
            already += 1
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append((str(path), "not a PNG, JPEG or WebP file"))
            continue
        meta = read_image_metadata(path)
        if meta is None:
            skipped.append((str(path), "not a readable image"))
            continue
        if not meta.is_generated and not include_without_metadata:
            skipped.append((str(path), "no generation parameters (A1111 infotext) in it"))
            continue
        pending.append(_new_image(path, meta))
        known.add(path)
        if len(pending) >= batch:
            imported += len(gallery.add_many(pending))
            pending = []
    if pending:
        imported += len(gallery.add_many(pending))
    return ImportReport(imported=imported, already_indexed=already, skipped=skipped)


def _new_image(path: Path, meta: ImageMetadata) -> NewImage:
    prov = dict(meta.provenance or {})
    size = meta.fields.get("Size", "")
    width, height = meta.width, meta.height
    if re.fullmatch(r"\d+x\d+", size):
        width, height = (int(v) for v in size.split("x"))
    return NewImage(
        path=path, prompt=meta.prompt, negative_prompt=meta.negative_prompt, seed=meta.seed,
        width=width, height=height, steps=meta.steps, guidance=meta.cfg_scale,
        provider=str(prov.get("provider") or meta.fields.get("Provider") or "imported"),
        model=str(prov.get("model") or meta.model or ""),
        cost_usd=float(prov.get("cost_usd") or 0.0), format=meta.format,
        provenance=prov or {"imported_from": "file", "parameters": meta.parameters},
        created_at=path.stat().st_mtime,
    )
