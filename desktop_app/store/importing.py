"""Importing an existing folder of generated images into the gallery.

Every file is read on its own, within its own time budget; a file whose
metadata is unusable (damaged, hostile, a value out of range) is skipped with
the reason, and the rest of the folder is still imported.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from desktop_app.domain.image_work import RequestKind
from desktop_app.store.a1111 import MetadataError
from desktop_app.store.database import StoreError
from desktop_app.store.gallery import Gallery, NewImage
from desktop_app.store.image_metadata import (
    READ_BUDGET_S,
    ImageMetadata,
    ReadBudget,
    provenance_cost,
    provenance_label,
    read_metadata,
)

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
TEMP_SUFFIX = ".imagedesk-tmp"  # files.py's temp files: half-written, never imported

NOT_AN_IMAGE = "not a PNG, JPEG or WebP file"
NO_PARAMETERS = "no generation parameters (A1111 infotext) in it"


@dataclasses.dataclass(frozen=True)
class ImportReport:
    """``skipped`` holds (path, reason) pairs the user can act on."""

    imported: int
    already_indexed: int
    skipped: list[tuple[str, str]]

    def skipped_by_reason(self) -> dict[str, int]:
        """How many files were skipped for each kind of reason (the part before ":")."""
        return dict(collections.Counter(why.split(":", 1)[0] for _, why in self.skipped))

    def __str__(self) -> str:
        """One line for a status bar or a terminal: the counts, and why files were skipped."""
        why = "".join(f"; {n} {reason}" for reason, n in self.skipped_by_reason().items())
        return (f"imported {self.imported}, already indexed {self.already_indexed}, "
                f"skipped {len(self.skipped)}{why}")

    def to_dict(self) -> dict[str, object]:
        """The JSON form ``gallery import --json`` prints."""
        return {
            "imported": self.imported, "already_indexed": self.already_indexed,
            "skipped_count": len(self.skipped),
            "skipped_by_reason": self.skipped_by_reason(),
            "skipped": [{"path": path, "reason": why} for path, why in self.skipped],
        }


def import_folder(folder: Path, gallery: Gallery, *, recursive: bool = True,
                  include_without_metadata: bool = False, batch: int = 500,
                  budget_s: float = READ_BUDGET_S,
                  clock: Callable[[], float] = time.monotonic) -> ImportReport:
    """Index the images in ``folder`` that carry A1111 parameters (ours or another
    tool's). Files already indexed are counted, not duplicated; everything else
    is listed in ``skipped`` with the reason. ``budget_s`` bounds the time spent
    reading one file's metadata."""
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
            skipped.append((str(path), NOT_AN_IMAGE))
            continue
        try:
            meta = read_metadata(path, ReadBudget(budget_s, clock))
            if not meta.is_generated and not include_without_metadata:
                skipped.append((str(path), NO_PARAMETERS))
                continue
            pending.append(_new_image(path, meta))
        except MetadataError as error:
            skipped.append((str(path), f"unusable metadata: {error.message}"))
            continue
        except OSError as error:
            skipped.append((str(path), f"cannot be read: {error.strerror or error}"))
            continue
        known.add(path)
        if len(pending) >= batch:
            imported += _add(gallery, pending, skipped)
            pending = []
    if pending:
        imported += _add(gallery, pending, skipped)
    return ImportReport(imported=imported, already_indexed=already, skipped=skipped)


def _add(gallery: Gallery, images: list[NewImage], skipped: list[tuple[str, str]]) -> int:
    """Index a batch; if the batch is refused, each image on its own, so one row
    the database will not take never loses the others."""
    try:
        return len(gallery.add_many(images))
    except (StoreError, sqlite3.Error, OverflowError, ValueError, UnicodeError) as error:
        log.warning("import batch refused (%s); indexing its images one by one", error)
    added = 0
    for image in images:
        try:
            added += len(gallery.add_many([image]))
        except (StoreError, sqlite3.Error, OverflowError, ValueError, UnicodeError) as error:
            skipped.append((str(image.path), f"the gallery could not index it: {error}"))
    return added


def _new_image(path: Path, meta: ImageMetadata) -> NewImage:
    prov = dict(meta.provenance or {})
    # "Size" is the generated size, except after A1111's hires fix (or our upscale),
    # where it names the size before the upscale: the file's own size is then right
    width, height = (meta.width, meta.height) if meta.hires_upscale is not None \
        else meta.size or (meta.width, meta.height)
    return NewImage(
        path=path, prompt=meta.prompt, negative_prompt=meta.negative_prompt, seed=meta.seed,
        width=width, height=height, steps=meta.steps, guidance=meta.cfg_scale,
        provider=(provenance_label(prov, "provider") or meta.fields.get("Provider")
                  or "imported"),
        model=provenance_label(prov, "model") or meta.model or "",
        cost_usd=provenance_cost(prov), format=meta.format,
        provenance=prov or {"imported_from": "file", "parameters": meta.parameters},
        created_at=path.stat().st_mtime, kind=_kind(prov),
    )


def _kind(provenance: Mapping[str, Any]) -> str:
    """The kind of job our provenance records (an image ImageDesk made, imported again)."""
    kind = provenance.get("kind")
    return kind if kind in {k.value for k in RequestKind} else RequestKind.TEXT_TO_IMAGE.value
