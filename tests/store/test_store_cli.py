"""Store faults through the real CLI, run as users run it: a subprocess per command
on its own profile (issues 12.3, 12.8, 12.9)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from desktop_app.store.profile_lock import LOCK_FILE, ProfileLock
from tests.store.mounts import read_only
from tests.test_cli import CLI, cli_env, run

EXIT_SETUP = 5


def _db(home: Path) -> Path:
    return home / "data" / "imagedesk.sqlite3"


def _prompts(home: Path) -> list[str]:
    listed = run(home, "queue", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return sorted(row["prompt"] for row in json.loads(listed.stdout))


@pytest.mark.slow
def test_parallel_queue_adds_on_a_fresh_profile_keep_every_prompt(tmp_path: Path) -> None:
    prompts = [f"prompt {i}" for i in range(5)]
    procs = [subprocess.Popen([*CLI, "queue", "add", p], env=cli_env(tmp_path),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for p in prompts]
    results = [(p.wait(timeout=240), p.stderr.read() if p.stderr else "") for p in procs]
    for proc in procs:
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert [code for code, _ in results] == [0] * len(prompts), results
    assert not any("damaged" in err for _, err in results)
    assert _prompts(tmp_path) == prompts


@pytest.mark.slow
def test_a_read_only_database_exits_5_with_the_store_message_and_keeps_the_queue(
        tmp_path: Path) -> None:
    assert run(tmp_path, "queue", "add", "kept").returncode == 0
    with read_only(_db(tmp_path)):
        for command in (["queue", "add", "new"], ["generate", "new", "--provider", "local"]):
            result = run(tmp_path, *command)
            assert result.returncode == EXIT_SETUP, result.stderr
            assert "cannot write its database" in result.stderr, result.stderr
            assert "writable" in result.stderr and "damaged" not in result.stderr
            assert "Traceback" not in result.stderr
        assert _prompts(tmp_path) == ["kept"]  # reading still works, and shows the queue


@pytest.mark.slow
def test_damaged_pages_exit_5_with_the_integrity_verdict_and_a_kept_copy(
        tmp_path: Path) -> None:
    for i in range(3):
        assert run(tmp_path, "queue", "add", f"prompt {i} " + "x" * 2000).returncode == 0
    db = _db(tmp_path)
    with sqlite3.connect(db) as conn:
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'jobs'").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(db, "r+b") as file:
        file.seek((root - 1) * size)
        file.write(b"\xa5" * size)
    result = run(tmp_path, "queue", "list")
    assert result.returncode == EXIT_SETUP, result.stderr
    assert "is damaged" in result.stderr and "integrity check" in result.stderr
    assert "Traceback" not in result.stderr
    [copy] = [p for p in db.parent.glob("*.damaged-*") if not p.name.endswith("-wal")]
    assert str(copy) in result.stderr


@pytest.mark.slow
def test_a_corrupt_attempts_value_fails_that_job_and_list_and_run_go_on(
        tmp_path: Path) -> None:
    assert run(tmp_path, "queue", "add", "a cat").returncode == 0
    with sqlite3.connect(_db(tmp_path)) as conn:
        conn.execute("UPDATE jobs SET attempts = '[{\"provider\": 5}' WHERE id = 1")
    listed = run(tmp_path, "queue", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["state"] == "failed" and "attempts" in row["error"]
    ran = run(tmp_path, "queue", "run", timeout=120)  # used to loop for ever
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr


@pytest.mark.slow
def test_a_job_left_running_by_an_interrupted_run_can_be_cancelled(tmp_path: Path) -> None:
    assert run(tmp_path, "queue", "add", "a cat").returncode == 0
    leftover = tmp_path / "half-saved.png"
    leftover.write_bytes(b"written but never indexed")
    with sqlite3.connect(_db(tmp_path)) as conn:  # as a SIGKILLed `queue run` leaves it
        conn.execute("UPDATE jobs SET state = 'running', started_at = 1, pending_files = ? "
                     "WHERE id = 1", (json.dumps([str(leftover)]),))
    with ProfileLock(tmp_path / "data" / LOCK_FILE):  # another process runs the queue
        busy = run(tmp_path, "queue", "cancel", "1")
        assert busy.returncode == 2 and "cancel it in the window" in busy.stderr
    cancelled = run(tmp_path, "queue", "cancel", "1", "--json")  # nobody runs it now
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["state"] == "cancelled"
    assert not leftover.exists()  # its unindexed file went with it
