"""Database faults are told apart, with advice that keeps the queue and gallery:
read-only, disk full, locked by another program, really damaged (issue 12.5)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from desktop_app.store.database import open_database
from desktop_app.store.faults import (
    StoreBusy,
    StoreDamaged,
    StoreDiskFull,
    StoreError,
    StoreReadOnly,
)
from desktop_app.store.jobs import JobQueue
from tests.store.conftest import request
from tests.store.mounts import fill, read_only, tiny_disk

MOVE_ASIDE = "move"


def _prompts(path: Path) -> list[str]:
    conn = open_database(path)
    try:
        return [j.request.prompt for j in JobQueue(conn).jobs()]
    finally:
        conn.close()


def _queue_with(path: Path, *prompts: str) -> None:
    conn = open_database(path)
    queue = JobQueue(conn)
    for prompt in prompts:
        queue.add(request(prompt))
    conn.close()


def test_a_read_only_database_is_reported_as_such_and_keeps_its_jobs(tmp_path: Path) -> None:
    db = tmp_path / "imagedesk.sqlite3"
    _queue_with(db, "kept")
    with read_only(db):
        conn = open_database(db)
        with pytest.raises(StoreReadOnly) as raised:
            JobQueue(conn).add(request("new"))
        conn.close()
    message = raised.value.message
    assert "cannot write" in message and "writable" in message
    assert "damaged" not in message and MOVE_ASIDE not in message.lower()
    assert _prompts(db) == ["kept"]


def test_a_full_disk_is_reported_as_full_and_keeps_the_queue(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "disk", 512) as disk:
        db = disk / "imagedesk.sqlite3"
        _queue_with(db, "kept")
        conn = open_database(db)
        queue = JobQueue(conn)
        filler = fill(disk)
        with pytest.raises(StoreDiskFull) as raised:
            queue.add_many([request("x" * 4000) for _ in range(50)])
        conn.close()
        filler.unlink()
        assert _prompts(db) == ["kept"]
    message = raised.value.message
    assert "full" in message and "free some space" in message
    assert "damaged" not in message and MOVE_ASIDE not in message.lower()


def test_a_database_locked_by_another_program_says_what_to_close(tmp_path: Path) -> None:
    db = tmp_path / "imagedesk.sqlite3"
    _queue_with(db, "kept")
    conn = open_database(db)
    conn.execute("PRAGMA busy_timeout=50")
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        with pytest.raises(StoreBusy, match="locked by another program.*Close"):
            JobQueue(conn).add(request("new"))
    finally:
        other.rollback()
        other.close()
        conn.close()
    assert _prompts(db) == ["kept"]


def _damage_jobs_table(db: Path) -> None:
    """Overwrite the interior pages of the jobs table's b-tree with noise."""
    conn = open_database(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'jobs'").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with open(db, "r+b") as file:
        file.seek((root - 1) * page_size)
        file.write(bytes(range(256)) * (page_size // 256))


def test_damaged_pages_are_confirmed_by_the_integrity_check_and_a_copy_is_kept(
        tmp_path: Path) -> None:
    db = tmp_path / "imagedesk.sqlite3"
    _queue_with(db, *(f"prompt {i} " + "x" * 300 for i in range(200)))
    _damage_jobs_table(db)
    damaged = db.read_bytes()
    conn = open_database(db)  # the header and the schema still read
    with pytest.raises(StoreDamaged) as raised:
        JobQueue(conn).jobs()
    conn.close()
    error = raised.value
    assert "is damaged" in error.message and "integrity check" in error.message
    assert error.copy is not None and error.copy.read_bytes() == damaged
    assert f"A copy of it was kept as {error.copy}" in error.message
    assert "gallery import" in error.message  # how to get the images back in a fresh one
    with pytest.raises(StoreDamaged) as again:  # asking twice keeps one copy, not two
        JobQueue(open_database(db)).jobs()
    assert again.value.copy == error.copy
    assert [p.name for p in tmp_path.glob("*.damaged-*") if not p.name.endswith("-wal")] == [
        error.copy.name]


def test_a_file_that_is_not_a_database_is_damaged_with_a_copy(tmp_path: Path) -> None:
    db = tmp_path / "imagedesk.sqlite3"
    db.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreDamaged, match="damaged or not a database") as raised:
        open_database(db)
    assert raised.value.copy is not None and raised.value.copy.is_file()


def test_a_read_only_folder_on_a_fresh_profile_is_not_called_damaged(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    with read_only(folder), pytest.raises(StoreReadOnly) as raised:
        open_database(folder / "imagedesk.sqlite3")
    assert "damaged" not in raised.value.message
    assert isinstance(raised.value, StoreError)
