"""The schema, as forward migrations: ``MIGRATIONS[i]`` takes a database from
version ``i`` to ``i + 1``. Append new steps; never edit one that has shipped."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

_V1 = """
CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even after clear_finished
    state         TEXT    NOT NULL
                  CHECK (state IN ('queued','running','succeeded','failed','cancelled')),
    priority      INTEGER NOT NULL DEFAULT 0,
    position      REAL    NOT NULL,                   -- order within a priority, see JobQueue.move
    created_at    REAL    NOT NULL,
    started_at    REAL,
    finished_at   REAL,
    request       TEXT    NOT NULL,                   -- GenerationRequest.to_dict() as JSON
    attempts      TEXT    NOT NULL DEFAULT '[]',      -- [Attempt.to_dict()]
    error         TEXT,
    error_message TEXT,
    image_ids     TEXT    NOT NULL DEFAULT '[]',
    provider      TEXT,
    progress      REAL    NOT NULL DEFAULT 0,
    pending_files TEXT    NOT NULL DEFAULT '[]'       -- written but not yet indexed
);
CREATE INDEX jobs_run_order ON jobs (state, priority DESC, position);
CREATE INDEX jobs_position ON jobs (position);

CREATE TABLE images (
    id              INTEGER PRIMARY KEY,                -- time-ordered, see gallery.py
    path            TEXT    NOT NULL UNIQUE,
    job_id          INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    prompt          TEXT    NOT NULL DEFAULT '',
    negative_prompt TEXT    NOT NULL DEFAULT '',
    seed            INTEGER,
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    steps           INTEGER,
    guidance        REAL,
    provider        TEXT    NOT NULL DEFAULT '',
    model           TEXT    NOT NULL DEFAULT '',
    cost_usd        REAL    NOT NULL DEFAULT 0,
    created_at      REAL    NOT NULL,
    favourite       INTEGER NOT NULL DEFAULT 0,
    format          TEXT    NOT NULL DEFAULT 'png',
    thumb_path      TEXT,
    provenance      TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX images_created ON images (created_at);
CREATE INDEX images_provider ON images (provider, created_at);
CREATE INDEX images_job ON images (job_id);

CREATE VIRTUAL TABLE images_fts USING fts5 (
    prompt, negative_prompt,
    content = 'images', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER images_fts_insert AFTER INSERT ON images BEGIN
    INSERT INTO images_fts (rowid, prompt, negative_prompt)
    VALUES (new.id, new.prompt, new.negative_prompt);
END;
CREATE TRIGGER images_fts_delete AFTER DELETE ON images BEGIN
    INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt)
    VALUES ('delete', old.id, old.prompt, old.negative_prompt);
END;
CREATE TRIGGER images_fts_update AFTER UPDATE OF prompt, negative_prompt ON images BEGIN
    INSERT INTO images_fts (images_fts, rowid, prompt, negative_prompt)
    VALUES ('delete', old.id, old.prompt, old.negative_prompt);
    INSERT INTO images_fts (rowid, prompt, negative_prompt)
    VALUES (new.id, new.prompt, new.negative_prompt);
END;

CREATE TABLE flags (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE metrics_daily (
    provider     TEXT    NOT NULL,
    day          TEXT    NOT NULL,                    -- YYYY-MM-DD, local date
    successes    INTEGER NOT NULL DEFAULT 0,
    rate_limited INTEGER NOT NULL DEFAULT 0,
    images       INTEGER NOT NULL DEFAULT 0,
    cost_usd     REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, day)
);
CREATE TABLE metrics_failures (
    provider    TEXT    NOT NULL,
    day         TEXT    NOT NULL,
    error_class TEXT    NOT NULL,
    count       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, day, error_class)
);
CREATE TABLE metrics_latency (                       -- a log-spaced histogram per day
    provider TEXT    NOT NULL,
    day      TEXT    NOT NULL,
    bucket   INTEGER NOT NULL,
    count    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, day, bucket)
);
"""


def _v1(conn: sqlite3.Connection) -> None:
    for statement in _split(_V1):
        conn.execute(statement)


def _split(script: str) -> list[str]:
    """Statements of a script (``executescript`` would commit our transaction)."""
    statements, current = [], []
    for line in script.splitlines():
        current.append(line)
        joined = "\n".join(current).strip()
        if joined and sqlite3.complete_statement(joined):
            statements.append(joined)
            current = []
    return statements


def _v2(conn: sqlite3.Connection) -> None:
    """Paid-call marks, the quarantine of unreadable job rows, and no stored progress.

    ``jobs.progress`` was never written with anything but 0 or 1 (progress is an
    event, not a stored value); it is dropped where this SQLite can (3.35+) and
    otherwise left unused. No later code may read or write it.
    """
    conn.execute("ALTER TABLE jobs ADD COLUMN paid_call TEXT")  # provider of a call in flight
    conn.execute("ALTER TABLE jobs ADD COLUMN paid_unsaved INTEGER NOT NULL DEFAULT 0")
    conn.execute("""
        CREATE TABLE job_quarantine (            -- job rows that did not read back, as they were
            job_id         INTEGER NOT NULL,
            quarantined_at REAL    NOT NULL,
            reason         TEXT    NOT NULL,
            row            TEXT    NOT NULL        -- every column, as JSON
        )""")
    conn.execute("CREATE INDEX job_quarantine_job ON job_quarantine (job_id)")
    if sqlite3.sqlite_version_info >= (3, 35, 0):
        conn.execute("ALTER TABLE jobs DROP COLUMN progress")


def _v3(conn: sqlite3.Connection) -> None:
    """Image-to-image: each image records its kind of job and the gallery image it
    was made from (lineage). Rows from before are text-to-image with no source."""
    conn.execute("ALTER TABLE images ADD COLUMN kind TEXT NOT NULL DEFAULT 'txt2img'")
    conn.execute("ALTER TABLE images ADD COLUMN source_image_id INTEGER "
                 "REFERENCES images (id) ON DELETE SET NULL")
    conn.execute("CREATE INDEX images_kind ON images (kind, created_at)")
    conn.execute("CREATE INDEX images_source ON images (source_image_id)")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3]
