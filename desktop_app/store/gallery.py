"""The gallery index: one row per image file, with a full-text index (FTS5)
over the prompt and the negative prompt.

User search text is never passed to FTS5 as syntax: it is split into words and
each word becomes a quoted prefix term, so quotes, ``AND``, ``*`` or brackets
in a search box are just text and never an FTS syntax error.

Image ids follow ``created_at``: an id is the creation time in milliseconds
times 1,000 plus a sequence number (~1.8e15 today, exact in a double until
the year 2255). So "newest first" is id order, which FTS5 can return directly
(``ORDER BY rowid DESC LIMIT n`` stops early) instead of sorting every match:
a one-letter search over 100,000 prompts stays in a few milliseconds, and an
imported old image still sorts by when it was made, not when it was imported.
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
            "provider, model, cost_usd, created_at, favourite, format, thumb_path, provenance, "
            "kind, source_image_id")
_QUALIFIED = ", ".join(f"images.{c.strip()}" for c in _COLUMNS.split(","))
ID_SEQUENCE = 1000  # ids per millisecond before they spill into the next one


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
    kind: str = "txt2img"  # domain.image_work.RequestKind value
    source_image_id: int | None = None  # the gallery image it was made from (lineage)


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
    kind: str = "txt2img"
    source_image_id: int | None = None


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
                image_id = _free_id(conn, created)
                conn.execute(
                    f"INSERT INTO images ({_COLUMNS}) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (image_id, str(path), image.job_id, image.prompt, image.negative_prompt,
                     image.seed, int(image.width), int(image.height), image.steps, image.guidance,
                     image.provider, image.model, float(image.cost_usd), created,
                     int(image.favourite), image.format,
                     str(image.thumb_path) if image.thumb_path else None,
                     json.dumps(dict(image.provenance), ensure_ascii=False),
                     image.kind, image.source_image_id),
                )
                fields = {f.name: getattr(image, f.name) for f in dataclasses.fields(NewImage)}
                fields.update(id=image_id, path=path, created_at=created,
                              provenance=dict(image.provenance))
                records.append(ImageRecord(**fields))
        return records

    def set_favourite(self, image_id: int, favourite: bool) -> None:
        with transaction(self.conn) as conn:
            cursor = conn.execute("UPDATE images SET favourite = ? WHERE id = ?",
                                  (int(favourite), image_id))
            if cursor.rowcount == 0:
                raise ImageNotFound(image_id)

    def delete(self, image_id: int) -> ImageRecord:
        """Remove the row and return it; the caller deletes the files afterwards
        (``Engine.delete_image``), so a crash in between leaves an unindexed file
        that import finds again, never a row pointing at nothing."""
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

    def search(self, text: str = "", *, provider: str | None = None, model: str | None = None,
               favourites_only: bool = False, favourite: bool | None = None,
               since: float | None = None, until: float | None = None, sort: Sort = "newest",
               limit: int = 200, offset: int = 0, kind: str | None = None,
               source_image_id: int | None = None, style: str | None = None) -> list[ImageRecord]:
        """Images whose prompt or negative prompt holds every word of ``text``
        (as a word prefix: ``light`` finds "lighthouse"), newest first by default.
        ``favourite=True`` is the same as ``favourites_only=True``; ``since`` and
        ``until`` bound ``created_at`` (inclusive, exclusive); ``kind`` keeps one kind of
        job (``"inpaint"``), ``source_image_id`` the results made from one image, and
        ``style`` those made with a named style."""
        if sort not in ("newest", "oldest"):
            raise ValueError(f"sort must be 'newest' or 'oldest', not {sort!r}")
        where, params = _filters(text, provider, model, favourites_only or bool(favourite),
                                 since, until, kind, source_image_id, style)
        direction = "DESC" if sort == "newest" else "ASC"
        page = [max(0, int(limit)), max(0, int(offset))]
        if fts_query(text) is not None:  # FTS5 drives, in rowid (= time) order
            sql = (f"SELECT {_QUALIFIED} FROM images_fts JOIN images "
                   f"ON images.id = images_fts.rowid {where} "
                   f"ORDER BY images_fts.rowid {direction} LIMIT ? OFFSET ?")
        else:
            sql = f"SELECT {_COLUMNS} FROM images {where} ORDER BY id {direction} LIMIT ? OFFSET ?"
        with reading(self.conn):
            rows = self.conn.execute(sql, [*params, *page]).fetchall()
        return [_record(r) for r in rows]

    def count(self, text: str = "", *, provider: str | None = None, model: str | None = None,
              favourites_only: bool = False, favourite: bool | None = None,
              since: float | None = None, until: float | None = None,
              kind: str | None = None, source_image_id: int | None = None,
              style: str | None = None) -> int:
        where, params = _filters(text, provider, model, favourites_only or bool(favourite),
                                 since, until, kind, source_image_id, style)
        source = "images"
        if fts_query(text) is not None:
            source = "images_fts JOIN images ON images.id = images_fts.rowid"
        with reading(self.conn):
            return int(self.conn.execute(f"SELECT COUNT(*) FROM {source} {where}",
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


def _free_id(conn: sqlite3.Connection, created_at: float) -> int:
    """The first unused id of ``created_at``'s millisecond (see the module doc)."""
    key = max(0, int(created_at * 1000)) * ID_SEQUENCE
    row = conn.execute("SELECT MAX(id) FROM images WHERE id >= ? AND id < ?",
                       (key, key + ID_SEQUENCE)).fetchone()
    image_id = key if row[0] is None else int(row[0]) + 1
    while image_id >= key + ID_SEQUENCE and conn.execute(
            "SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone():
        image_id += 1  # a thousand images in one millisecond: borrow from the next
    return image_id


def _filters(text: str, provider: str | None, model: str | None, favourites_only: bool,
             since: float | None, until: float | None, kind: str | None = None,
             source_image_id: int | None = None,
             style: str | None = None) -> tuple[str, list[Any]]:
    """WHERE clause for ``images`` (joined to ``images_fts`` when there is text).
    With text, the filter columns carry a unary ``+`` so SQLite keeps FTS5 as the
    outer loop (in time order, stopping at the limit) instead of an index scan."""
    clauses: list[str] = []
    params: list[Any] = []
    query = fts_query(text)
    plus = "+" if query is not None else ""
    if query is not None:
        clauses.append("images_fts MATCH ?")
        params.append(query)
    if provider is not None:
        clauses.append(f"{plus}images.provider = ?")
        params.append(provider)
    if model is not None:
        clauses.append(f"{plus}images.model = ?")
        params.append(model)
    if favourites_only:
        clauses.append(f"{plus}images.favourite = 1")
    if style is not None:  # provenance is the file's: only well-formed JSON is looked into
        clauses.append("EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(images.provenance) "
                       "THEN images.provenance ELSE '{}' END, '$.styles') WHERE value = ?)")
        params.append(style)
    if kind is not None:
        clauses.append(f"{plus}images.kind = ?")
        params.append(kind)
    if source_image_id is not None:
        clauses.append(f"{plus}images.source_image_id = ?")
        params.append(int(source_image_id))
    if since is not None:
        clauses.append(f"{plus}images.created_at >= ?")
        params.append(float(since))
    if until is not None:
        clauses.append(f"{plus}images.created_at < ?")
        params.append(float(until))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _record(row: Sequence[Any]) -> ImageRecord:
    (image_id, path, job_id, prompt, negative, seed, width, height, steps, guidance, provider,
     model, cost, created, favourite, fmt, thumb, provenance, kind, source_image_id) = row
    return ImageRecord(
        id=int(image_id), path=Path(path), job_id=job_id, prompt=prompt, negative_prompt=negative,
        seed=seed, width=int(width), height=int(height), steps=steps, guidance=guidance,
        provider=provider, model=model, cost_usd=float(cost), created_at=float(created),
        favourite=bool(favourite), format=fmt, thumb_path=Path(thumb) if thumb else None,
        provenance=json.loads(provenance), kind=kind, source_image_id=source_image_id,
    )
