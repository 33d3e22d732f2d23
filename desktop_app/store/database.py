"""Opening the one SQLite database: WAL, foreign keys, a busy timeout, durable
commits, and forward-only schema migrations keyed by ``PRAGMA user_version``.

Durability: ``synchronous=FULL``. In WAL mode ``NORMAL`` already survives an
application crash (SIGKILL), but a commit may roll back after a power loss or
an OS crash; a user who pressed Generate and then lost power overnight would
lose the job. ``FULL`` fsyncs the WAL on every commit, measured at ~0.2 ms per
transaction here (bench/bench_store.py), well inside the 2 ms submit budget.

Threads: the engine calls the store from one dedicated thread, but the
connection is opened on another (start-up), so it is created with
``check_same_thread=False`` and every transaction holds the connection's lock.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from desktop_app.domain.errors import ImageDeskError

BUSY_TIMEOUT_MS = 5_000


class StoreError(ImageDeskError):
    """The database or an image file could not be read or written."""


class StoreConnection(sqlite3.Connection):
    """A connection with the lock and nesting depth that ``transaction`` uses."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock = threading.RLock()
        self.depth = 0


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One atomic unit of work: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on
    any exception. Nested use joins the outer transaction, so a store method can
    be composed into a larger one (``JobQueue.finish_with_images``)."""
    lock: threading.RLock | contextlib.nullcontext[None]
    lock = conn.lock if isinstance(conn, StoreConnection) else contextlib.nullcontext()
    with lock:
        if conn.in_transaction:
            yield conn  # joined: the outermost block commits
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.execute("COMMIT")


@contextlib.contextmanager
def reading(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Hold the connection's lock for a read (no transaction needed in WAL mode)."""
    lock: threading.RLock | contextlib.nullcontext[None]
    lock = conn.lock if isinstance(conn, StoreConnection) else contextlib.nullcontext()
    with lock:
        yield conn


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database at ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
            check_same_thread=False, factory=StoreConnection,
        )
    except (OSError, sqlite3.Error) as error:
        raise StoreError(f"Cannot open the ImageDesk database at {path}: {error}. "
                         "Check that the folder exists and is writable.") from error
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"The database at {path} cannot use write-ahead logging "
                             f"(journal mode {mode}); put it on a local disk.")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous=FULL")
        migrate(conn)
    except sqlite3.DatabaseError as error:
        conn.close()
        raise StoreError(
            f"The ImageDesk database at {path} is damaged or not a database ({error}). "
            "Move it aside and restart ImageDesk to begin a fresh one."
        ) from error
    except BaseException:
        conn.close()
        raise
    return conn


def integrity_ok(conn: sqlite3.Connection) -> bool:
    """``PRAGMA integrity_check`` says "ok" and no foreign key is dangling."""
    with reading(conn):
        rows = conn.execute("PRAGMA integrity_check").fetchall()
        if [r[0] for r in rows] != ["ok"]:
            return False
        return not conn.execute("PRAGMA foreign_key_check").fetchall()


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> None:
    """Apply every migration the database has not had, each in its own transaction
    together with its ``user_version`` bump (both or neither land)."""
    from desktop_app.store.schema import MIGRATIONS

    current = schema_version(conn)
    if current > len(MIGRATIONS):
        raise StoreError(
            f"This database was written by a newer ImageDesk (schema {current}; this version "
            f"knows up to {len(MIGRATIONS)}). Update ImageDesk, or move the database aside."
        )
    for version, step in enumerate(MIGRATIONS[current:], start=current + 1):
        with transaction(conn):
            step(conn)
            conn.execute(f"PRAGMA user_version={version}")


Migration = Callable[[sqlite3.Connection], None]
