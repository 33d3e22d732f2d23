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

Faults: every SQLite error raised inside ``transaction`` or ``reading`` (and
while opening) leaves as a typed ``StoreError`` from ``store.faults`` whose
message says what to fix: read-only, disk full, locked, disk error, or damaged
(only after an integrity check said so).

Concurrent first opens: several processes may open a fresh profile at once
(``imagedesk queue add`` run in parallel). Migrations therefore read
``user_version`` only after taking the write lock (``BEGIN IMMEDIATE``), so
exactly one process runs each step and the others find it done.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from desktop_app.store.faults import StoreBusy, StoreError, store_fault

BUSY_TIMEOUT_MS = 5_000
# Opening a fresh profile while other processes do the same: SQLite answers some
# lock conflicts (switching to WAL, a read lock that must grow into a write lock)
# with "database is locked" at once, without waiting out the busy timeout. The
# set-up is retried that long before the user is told the database stays locked.
SETUP_RETRY_S = 30.0

__all__ = ["StoreConnection", "StoreError", "integrity_ok", "migrate", "open_database",
           "reading", "schema_version", "transaction"]


class StoreConnection(sqlite3.Connection):
    """A connection with the lock ``transaction`` uses and the file it opened."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock = threading.RLock()
        self.path = Path(str(args[0]) if args else str(kwargs.get("database", "")))


def _path_of(conn: sqlite3.Connection) -> Path:
    if isinstance(conn, StoreConnection):
        return conn.path
    try:
        return Path(conn.execute("PRAGMA database_list").fetchone()[2])
    except (sqlite3.Error, TypeError):
        return Path("(database)")


def _typed(conn: sqlite3.Connection, error: sqlite3.Error) -> BaseException:
    """A programming error or a broken constraint stays as it is (a bug in our own
    statements, to fix); the rest become typed faults."""
    if isinstance(error, (sqlite3.ProgrammingError, sqlite3.InterfaceError,
                          sqlite3.IntegrityError)):
        return error
    return store_fault(error, _path_of(conn), conn)


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
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as error:
            if conn.in_transaction:  # a failed COMMIT (disk full) leaves it open
                with contextlib.suppress(sqlite3.Error):
                    conn.rollback()
            typed = _typed(conn, error)
            if typed is error:
                raise
            raise typed from error


@contextlib.contextmanager
def reading(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Hold the connection's lock for a read (no transaction needed in WAL mode)."""
    lock: threading.RLock | contextlib.nullcontext[None]
    lock = conn.lock if isinstance(conn, StoreConnection) else contextlib.nullcontext()
    with lock:
        try:
            yield conn
        except sqlite3.Error as error:
            typed = _typed(conn, error)
            if typed is error:
                raise
            raise typed from error


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
        raise store_fault(error, path) from error
    try:
        _retry_while_locked(lambda: _set_up(conn, path))
    except sqlite3.Error as error:
        fault = store_fault(error, path, conn)
        conn.close()
        raise fault from error
    except BaseException:
        conn.close()
        raise
    return conn


def _set_up(conn: sqlite3.Connection, path: Path) -> None:
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"The database at {path} cannot use write-ahead logging "
                         f"(journal mode {mode}); put it on a local disk.")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA synchronous=FULL")
    migrate(conn)


def _retry_while_locked(step: Callable[[], None], budget_s: float = SETUP_RETRY_S) -> None:
    """``step`` again after a short random pause while SQLite says "locked" or
    "busy" at once, for at most ``budget_s``; then the last error stands."""
    deadline = time.monotonic() + budget_s
    while True:
        try:
            step()
            return
        except (sqlite3.OperationalError, StoreBusy) as error:
            text = str(error).lower()
            busy = isinstance(error, StoreBusy) or "locked" in text or "busy" in text
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.02, 0.2))


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
    together with its ``user_version`` bump (both or neither land). The version is
    read again under the write lock before each step, so processes opening the
    same database at once never both run a step (see the module doc)."""
    from desktop_app.store.schema import MIGRATIONS

    while True:
        if _check_version(schema_version(conn), len(MIGRATIONS)):
            return  # the common case, without taking the write lock
        with transaction(conn):
            current = schema_version(conn)
            if _check_version(current, len(MIGRATIONS)):
                return  # another process migrated while we waited for the lock
            MIGRATIONS[current](conn)
            conn.execute(f"PRAGMA user_version={current + 1}")


def _check_version(current: int, known: int) -> bool:
    """True when the database is up to date; refuses one from a newer ImageDesk."""
    if current > known:
        raise StoreError(
            f"This database was written by a newer ImageDesk (schema {current}; this version "
            f"knows up to {known}). Update ImageDesk; do not delete the database, it holds "
            "your queue and gallery.")
    return current == known


Migration = Callable[[sqlite3.Connection], None]
