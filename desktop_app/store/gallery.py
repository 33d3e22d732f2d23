"""The gallery index: one row per image file, with a full-text index (FTS5)
over the prompt and the negative prompt.

User search text is never passed to FTS5 as syntax: it is split into words and
each word becomes a quoted prefix term, so quotes, ``AND``, ``*`` or brackets
in a search box are just text and never an FTS syntax error.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from desktop_app.domain.errors import ImageDeskError
from desktop_app.store.database import reading, transaction

_COLUMNS = ("id, path, job_id, prompt, negative_prompt, seed, width, height, steps, guidance, "
            "provider, model, cost_usd, created_at, favourite, format, thumb_path, provenance")


class ImageNotFound(ImageDeskError, KeyError):
    """No gallery image with this id (it may have been deleted)."""

    def __init__(self, image_id: int) -> None:
        super().__init__(f"There is no image {image_id} in the gallery; it may have been deleted.")
        self.image_id = image_id


@dataclasses.dataclass(frozen=True, kw_only=True)
class NewImage:
    """An image to index: everything an ``ImageRecord`` holds except its id."""

    path: Path
    prompt: str
    width: int
    height: int
    job_id: int | None = None
    negative_prompt: str = ""
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    provider: str = ""
    model: str = ""
    cost_usd: float = 0.0
    format: str = "png"
    thumb_path: Path | None = None
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    created_at: float | None = None  # None: now, by the gallery's clock
    favourite: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageRecord:
    """One indexed image, as the gallery views and the CLI show it."""

    id: int
    path: Path
    prompt: str
    width: int
    height: int
    created_at: float
    job_id: int | None = None
    negative_prompt: str = ""
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    provider: str = ""
    model: str = ""
    cost_usd: float = 0.0
    favourite: bool = False
    format: str = "png"
    thumb_path: Path | None = None
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict)


Sort = Literal["newest", "oldest"]


def fts_query(text: str) -> str | None:
    """User text -> a safe FTS5 query: every word a quoted prefix term, all required.
    Words with no letter or digit (a lone ``(`` or ``*``) are dropped; None when
    nothing searchable is left."""
    terms = []
    for word in text.split():
        if any(ch.isalnum() for ch in word):
            terms.append('"' + word.replace('"', '""') + '"*')
    return " ".join(terms) if terms else None


class Gallery:
    def __init__(self, conn: sqlite3.Connection, clock: Callable[[], float] = time.time) -> None:
        self.conn = conn
        self.clock = clock

    # -- writing -------------------------------------------------------------------

    def add(self, image: NewImage) -> ImageRecord:
        return self.add_many([image])[0]

    def add_many(self, images: Sequence[NewImage]) -> list[ImageRecord]:
        """Index images in one transaction (joins the caller's, if one is open)."""
        now = self.clock()
        records = []
        with transaction(self.conn) as conn:
            for image in images:
                created = now if image.created_at is None else float(image.created_at)
                path = Path(image.path)
                cursor = conn.execute(
                    f"INSERT INTO images ({_COLUMNS}) VALUES "
                    "(NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (str(path), image.job_id, image.prompt, image.negative_prompt, image.seed,
                     int(image.width), int(image.height), image.steps, image.guidance,
                     image.provider, image.model, float(image.cost_usd), created,
                     int(image.favourite), image.format,
                     str(image.thumb_path) if image.thumb_path else None,
                     json.dumps(dict(image.provenance), ensure_ascii=False)),
                )
                fields = {f.name: getattr(image, f.name) for f in dataclasses.fields(NewImage)}
                fields.update(id=int(cursor.lastrowid or 0), path=path, created_at=created,
                              provenance=dict(image.provenance))
                records.append(ImageRecord(**fields))
        return records

    def set_favourite(self, image_id: int, favourite: bool) -> None:
        with transaction(self.conn) as conn:
            cursor = conn.execute("UPDATE images SET favourite = ? WHERE id = ?",
                                  (int(favourite), image_id))
            if cursor.rowcount == 0:
                raise ImageNotFound(image_id)

    def set_thumbnail(self, image_id: int, thumb_path: Path | None) -> None:
        with transaction(self.conn) as conn:
            cursor = conn.execute("UPDATE images SET thumb_path = ? WHERE id = ?",
                                  (str(thumb_path) if thumb_path else None, image_id))
            if cursor.rowcount == 0:
                raise ImageNotFound(image_id)

    def delete(self, image_id: int) -> ImageRecord:
        """Remove the row and return it; the caller deletes the files
        (``files.delete_image_files`` does both in the safe order)."""
        with transaction(self.conn) as conn:
            record = self.get(image_id)
            if record is None:
                raise ImageNotFound(image_id)
            conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
        return record

    # -- reading -------------------------------------------------------------------

    def get(self, image_id: int) -> ImageRecord | None:
        with reading(self.conn):
            row = self.conn.execute(f"SELECT {_COLUMNS} FROM images WHERE id = ?",
                                    (image_id,)).fetchone()
        return _record(row) if row else None

    def get_by_path(self, path: Path) -> ImageRecord | None:
        with reading(self.conn):
            row = self.conn.execute(f"SELECT {_COLUMNS} FROM images WHERE path = ?",
                                    (str(path),)).fetchone()
        return _record(row) if row else None

    def search(self, text: str = "", *, provider: str | None = None, model: str | None = None,
               favourites_only: bool = False, favourite: bool | None = None,
               since: float | None = None, until: float | None = None, sort: Sort = "newest",
               limit: int = 200, offset: int = 0) -> list[ImageRecord]:
        """Images whose prompt or negative prompt holds every word of ``text``
        (as a word prefix: ``light`` finds "lighthouse"), newest first by default.
        ``favourite=True`` is the same as ``favourites_only=True``; ``since`` and
        ``until`` bound ``created_at`` (inclusive, exclusive)."""
        if sort not in ("newest", "oldest"):
            raise ValueError(f"sort must be 'newest' or 'oldest', not {sort!r}")
        where, params = _filters(text, provider, model, favourites_only or bool(favourite),
                                 since, until)
        direction = "DESC" if sort == "newest" else "ASC"
        with reading(self.conn):
            rows = self.conn.execute(
                f"SELECT {_COLUMNS} FROM images {where} "
                f"ORDER BY created_at {direction}, id {direction} LIMIT ? OFFSET ?",
                [*params, max(0, int(limit)), max(0, int(offset))]).fetchall()
        return [_record(r) for r in rows]

    def count(self, text: str = "", *, provider: str | None = None, model: str | None = None,
              favourites_only: bool = False, favourite: bool | None = None,
              since: float | None = None, until: float | None = None) -> int:
        where, params = _filters(text, provider, model, favourites_only or bool(favourite),
                                 since, until)
        with reading(self.conn):
            return int(self.conn.execute(f"SELECT COUNT(*) FROM images {where}",
                                         params).fetchone()[0])

    def providers(self) -> list[str]:
        """Distinct providers, for the filter menu."""
        with reading(self.conn):
            return [r[0] for r in self.conn.execute(
                "SELECT DISTINCT provider FROM images ORDER BY provider")]

    def models(self) -> list[str]:
        with reading(self.conn):
            return [r[0] for r in self.conn.execute(
                "SELECT DISTINCT model FROM images ORDER BY model")]

    def paths(self) -> set[Path]:
        with reading(self.conn):
            return {Path(r[0]) for r in self.conn.execute("SELECT path FROM images")}


def _filters(text: str, provider: str | None, model: str | None, favourites_only: bool,
             since: float | None, until: float | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    query = fts_query(text)
    if query is not None:
        clauses.append("id IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?)")
        params.append(query)
    if provider is not None:
        clauses.append("provider = ?")
        params.append(provider)
    if model is not None:
        clauses.append("model = ?")
        params.append(model)
    if favourites_only:
        clauses.append("favourite = 1")
    if since is not None:
        clauses.append("created_at >= ?")
        params.append(float(since))
    if until is not None:
        clauses.append("created_at < ?")
        params.append(float(until))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _record(row: Sequence[Any]) -> ImageRecord:
    (image_id, path, job_id, prompt, negative, seed, width, height, steps, guidance, provider,
     model, cost, created, favourite, fmt, thumb, provenance) = row
    return ImageRecord(
        id=int(image_id), path=Path(path), job_id=job_id, prompt=prompt, negative_prompt=negative,
        seed=seed, width=int(width), height=int(height), steps=steps, guidance=guidance,
        provider=provider, model=model, cost_usd=float(cost), created_at=float(created),
        favourite=bool(favourite), format=fmt, thumb_path=Path(thumb) if thumb else None,
        provenance=json.loads(provenance),
    )
