from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from desktop_app.store import schema
from desktop_app.store.database import (
    StoreError,
    integrity_ok,
    open_database,
    schema_version,
    transaction,
)


def test_new_database_is_wal_durable_and_at_the_latest_schema(db_path: Path) -> None:
    conn = open_database(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert schema_version(conn) == len(schema.MIGRATIONS)
    assert integrity_ok(conn)
    conn.close()


def test_fts5_is_available_in_this_python() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE probe USING fts5 (text)")


def test_reopening_keeps_data_and_does_not_migrate_again(db_path: Path) -> None:
    conn = open_database(db_path)
    with transaction(conn):
        conn.execute("INSERT INTO flags VALUES ('x', 'kept')")
    conn.close()
    again = open_database(db_path)
    assert again.execute("SELECT value FROM flags WHERE name = 'x'").fetchone()[0] == "kept"
    again.close()


def test_a_new_migration_runs_once_on_an_old_database(db_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    open_database(db_path).close()
    calls = []

    def add_column(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("ALTER TABLE flags ADD COLUMN note TEXT")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, add_column])
    conn = open_database(db_path)
    assert schema_version(conn) == len(schema.MIGRATIONS)
    conn.close()
    open_database(db_path).close()
    assert calls == [1]


def test_a_failing_migration_leaves_the_old_version_intact(db_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    open_database(db_path).close()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE flags ADD COLUMN half TEXT")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])
    with pytest.raises(RuntimeError):
        open_database(db_path)
    monkeypatch.undo()
    conn = open_database(db_path)
    assert schema_version(conn) == len(schema.MIGRATIONS)
    columns = [r[1] for r in conn.execute("PRAGMA table_info(flags)")]
    assert "half" not in columns
    conn.close()


def test_a_database_from_a_newer_version_is_refused_with_advice(db_path: Path) -> None:
    conn = open_database(db_path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(StoreError, match="newer ImageDesk"):
        open_database(db_path)


def test_a_file_that_is_not_a_database_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "imagedesk.sqlite"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="damaged or not a database"):
        open_database(path)


def test_transactions_roll_back_on_error_and_nest(db_path: Path) -> None:
    conn = open_database(db_path)
    with pytest.raises(ValueError), transaction(conn):
        conn.execute("INSERT INTO flags VALUES ('a', '1')")
        with transaction(conn):  # joins the outer one
            conn.execute("INSERT INTO flags VALUES ('b', '1')")
        raise ValueError("abort")
    assert conn.execute("SELECT COUNT(*) FROM flags").fetchone()[0] == 0
    conn.close()


def test_connection_can_be_used_from_another_thread(db_path: Path) -> None:
    conn = open_database(db_path)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with transaction(conn):
                conn.execute("INSERT INTO flags VALUES ('t', '1')")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert not errors
    assert conn.execute("SELECT value FROM flags WHERE name = 't'").fetchone()[0] == "1"
    conn.close()
