"""A stored job that no longer validates must not stall the queue behind it."""

from __future__ import annotations

import json
from pathlib import Path

from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest
from desktop_app.store.database import open_database
from desktop_app.store.jobs import JobQueue


def test_an_unreadable_job_is_failed_and_the_next_one_runs(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "db.sqlite3")
    queue = JobQueue(conn)
    broken = queue.add(GenerationRequest(prompt="written by a newer version"))
    good = queue.add(GenerationRequest(prompt="a cat"))
    data = broken.request.to_dict() | {"sparkle": True}
    with conn:
        conn.execute("UPDATE jobs SET request = ? WHERE id = ?", (json.dumps(data), broken.id))

    nxt = queue.next_runnable()
    assert nxt is not None and nxt.id == good.id
    assert [j.id for j in queue.jobs()] == [good.id]  # the list shows what it can read
    row = conn.execute("SELECT state, error_message FROM jobs WHERE id = ?",
                       (broken.id,)).fetchone()
    assert row[0] == JobState.FAILED.value and "could not be read back" in row[1]
