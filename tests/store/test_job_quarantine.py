"""A stored job row that does not read back is quarantined: the job fails with
the reason, the row is kept as it was, and the queue goes on (issue 12.8)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop_app.domain.job import JobState
from desktop_app.store.database import open_database
from desktop_app.store.job_rows import COLUMNS, QUARANTINED_ERROR
from desktop_app.store.jobs import JobQueue
from tests.store.conftest import request

# One damaged value per column, as a hand edit, a newer version or a bad sector leaves it.
DAMAGE = {
    "state": "paused",
    "priority": "high",
    "position": "first",
    "created_at": "yesterday",
    "started_at": b"\x00\x01",
    "finished_at": float("inf"),
    "request": "{not json",
    "attempts": '{"provider": "local"}',
    "error": b"\x01",
    "error_message": b"\xff",
    "image_ids": '["one"]',
    "provider": b"local",
    "pending_files": "[1, 2]",
    "paid_call": b"openai",
    "paid_unsaved": "many",
}


def _damage(conn: sqlite3.Connection, job_id: int, column: str, value: Any) -> None:
    conn.execute("PRAGMA ignore_check_constraints = ON")  # as another tool could
    with conn:
        conn.execute(f"UPDATE jobs SET {column} = ? WHERE id = ?", (value, job_id))
    conn.execute("PRAGMA ignore_check_constraints = OFF")


def test_every_column_is_checked() -> None:
    assert set(DAMAGE) == set(COLUMNS) - {"id"}


@pytest.mark.parametrize("column", sorted(DAMAGE))
def test_a_damaged_column_fails_its_job_with_the_reason_and_the_queue_goes_on(
        queue: JobQueue, conn: sqlite3.Connection, column: str) -> None:
    broken, good = queue.add(request("broken")), queue.add(request("good"))
    _damage(conn, broken.id, column, DAMAGE[column])

    listed = {j.id: j for j in queue.jobs()}  # no exception: the list shows what it can
    nxt = queue.next_runnable()
    assert nxt is not None and nxt.id == good.id
    assert listed[good.id].state is JobState.QUEUED
    if column == "request":  # no safe default: left out of the list, shown as quarantined
        assert broken.id not in listed
    else:  # repaired to readable values and failed with the reason
        job = listed[broken.id]
        assert job.state is JobState.FAILED and job.error == QUARANTINED_ERROR
        assert job.error_message is not None and column in job.error_message
        assert job.request.prompt == "broken"  # retrying it runs what the user asked for
    [kept] = queue.quarantined()
    assert kept.job_id == broken.id and column in kept.reason
    row = json.loads(conn.execute("SELECT row FROM job_quarantine").fetchone()[0])
    assert row[column] is not None  # the damaged value itself is kept, not lost


def test_a_quarantined_job_can_be_retried_and_runs(queue: JobQueue,
                                                   conn: sqlite3.Connection) -> None:
    job = queue.add(request("a cat"))
    _damage(conn, job.id, "attempts", "[[[")
    queue.jobs()
    retried = queue.retry(job.id)
    assert retried.state is JobState.QUEUED and retried.attempts == []
    nxt = queue.next_runnable()
    assert nxt is not None and nxt.id == job.id


def test_reading_a_quarantined_row_again_does_not_quarantine_it_twice(
        queue: JobQueue, conn: sqlite3.Connection) -> None:
    job = queue.add(request())
    _damage(conn, job.id, "request", "[]")
    for _ in range(3):
        assert queue.jobs() == []
        assert queue.next_runnable() is None
    assert [q.job_id for q in queue.quarantined()] == [job.id]


# -- fuzzing stored rows --------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                  max_size=4),
    max_leaves=12)
_near_valid_attempt = st.fixed_dictionaries({
    "provider": st.text(max_size=8) | st.integers(),
    "outcome": st.sampled_from(["succeeded", "failed", "skipped", "interrupted", "won"]),
}, optional={"duration_s": _json_values, "adaptations": _json_values,
             "cost_usd": _json_values, "error": _json_values})
_sql_values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=40),
    st.binary(max_size=40),
    _json_values.map(json.dumps),
    st.lists(_near_valid_attempt, max_size=3).map(json.dumps),
    st.sampled_from(["queued", "running", "succeeded", "failed", "cancelled", "[]", "[1,2]",
                     "[" * 5000, json.dumps(request().to_dict())]),
)
_requests = st.one_of(
    st.just(json.dumps(request().to_dict())),
    st.dictionaries(st.sampled_from(["prompt", "width", "steps", "seed", "policy", "n"]),
                    _json_values, max_size=4).map(
        lambda extra: json.dumps({**request().to_dict(), **extra})),
    _sql_values,
)
_rows = st.lists(st.fixed_dictionaries(
    {column: (_requests if column == "request" else _sql_values) for column in COLUMNS
     if column != "id"}), min_size=1, max_size=4)


@pytest.fixture(scope="module")
def fuzz_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "imagedesk.sqlite3"


@settings(max_examples=150, deadline=2000,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(rows=_rows)
def test_any_stored_row_reads_back_as_a_job_or_a_quarantined_job(
        fuzz_db: Path, rows: list[dict[str, Any]]) -> None:
    conn = open_database(fuzz_db)
    try:
        with conn:
            conn.execute("DELETE FROM jobs")
            conn.execute("DELETE FROM job_quarantine")
        conn.execute("PRAGMA ignore_check_constraints = ON")
        ids = []
        for row in rows:
            try:
                with conn:
                    cursor = conn.execute(
                        f"INSERT INTO jobs ({', '.join(row)}) VALUES "
                        f"({', '.join('?' * len(row))})", list(row.values()))
                ids.append(cursor.lastrowid)
            except sqlite3.IntegrityError:  # NULL in a NOT NULL column: SQLite refuses it
                continue
        conn.execute("PRAGMA ignore_check_constraints = OFF")
        queue = JobQueue(conn)
        started = time.monotonic()
        listed = {j.id for j in queue.jobs()}
        while queue.next_runnable() is not None:  # every bad queued row leaves the queue
            nxt = queue.next_runnable()
            assert nxt is not None
            queue.start(nxt.id)
        queue.counts()
        queue.recover_interrupted()
        listed |= {j.id for j in queue.jobs()}
        quarantined = {q.job_id for q in queue.quarantined()}
        assert set(ids) <= listed | quarantined
        assert time.monotonic() - started < 5
    finally:
        conn.close()
