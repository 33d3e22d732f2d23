"""Migrations: safe when several processes open a fresh profile at once (issue
12.3), and a database made by the first schema keeps its queue and gallery."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path

from desktop_app.domain.job import JobState
from desktop_app.store import schema
from desktop_app.store.database import integrity_ok, open_database, schema_version
from desktop_app.store.gallery import Gallery
from desktop_app.store.jobs import JobQueue
from tests.store.conftest import request

PROCESSES = 6


def _open_and_add(path: str, barrier: multiprocessing.synchronize.Barrier,
                  results: multiprocessing.Queue[str], index: int) -> None:
    barrier.wait()  # every process opens the fresh file at the same moment
    try:
        conn = open_database(Path(path))
        JobQueue(conn).add(request(f"prompt {index}"))
        conn.close()
        results.put("ok")
    except Exception as error:  # reported to the test
        results.put(f"{type(error).__name__}: {error}")


def test_processes_opening_a_fresh_database_at_once_all_keep_their_prompt(
        tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    for trial in range(3):  # the race was lost in most trials before the fix
        db = tmp_path / f"trial{trial}" / "imagedesk.sqlite3"
        barrier, results = context.Barrier(PROCESSES), context.Queue()
        workers = [context.Process(target=_open_and_add, args=(str(db), barrier, results, i))
                   for i in range(PROCESSES)]
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        assert outcomes == ["ok"] * PROCESSES
        conn = open_database(db)
        prompts = sorted(j.request.prompt for j in JobQueue(conn).jobs())
        assert prompts == sorted(f"prompt {i}" for i in range(PROCESSES))
        assert schema_version(conn) == len(schema.MIGRATIONS)
        conn.close()


def _schema_1_database(path: Path) -> None:
    """A database exactly as the first shipped schema made it, with a job in every state."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN")
    schema.MIGRATIONS[0](conn)
    conn.execute("PRAGMA user_version=1")
    rows = [("queued", 1.0, None), ("running", 2.0, None), ("succeeded", 3.0, "[1]"),
            ("failed", 4.0, None)]
    for state, position, images in rows:
        conn.execute(
            "INSERT INTO jobs (state, priority, position, created_at, request, image_ids, "
            "progress) VALUES (?, 0, ?, 1700000000.0, ?, ?, ?)",
            (state, position, json.dumps(request(f"a {state} job").to_dict()), images or "[]",
             1.0 if state == "succeeded" else 0.0))
    conn.execute("INSERT INTO images (id, path, job_id, prompt, width, height, created_at) "
                 "VALUES (1, '/pictures/lighthouse.png', 3, 'a lighthouse', 64, 64, 1.0)")
    conn.execute("COMMIT")
    conn.close()


def test_a_schema_1_database_upgrades_keeping_its_queue_and_gallery(tmp_path: Path) -> None:
    db = tmp_path / "imagedesk.sqlite3"
    _schema_1_database(db)
    conn = open_database(db)
    assert schema_version(conn) == len(schema.MIGRATIONS)
    assert integrity_ok(conn)
    queue, gallery = JobQueue(conn), Gallery(conn)
    states = {j.request.prompt: j.state for j in queue.jobs()}
    assert states == {"a queued job": JobState.QUEUED, "a running job": JobState.RUNNING,
                      "a succeeded job": JobState.SUCCEEDED, "a failed job": JobState.FAILED}
    assert queue.recover_interrupted() == [2]  # an old running job is simply requeued
    nxt = queue.next_runnable()
    assert nxt is not None and nxt.request.prompt == "a queued job"
    [image] = gallery.search("lighthouse")
    assert image.job_id == 3 and queue.get(3).image_ids == [1]  # type: ignore[union-attr]
    added = queue.add(request("after the upgrade"))
    assert queue.get(added.id) is not None
    columns = {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
    assert {"paid_call", "paid_unsaved"} <= columns and "progress" not in columns
    conn.close()


# A queue row exactly as the round-1 app wrote it: no kind of work, no origin.
_ROUND_1_ROW = {
    "prompt": "a lighthouse at dusk", "negative_prompt": "", "width": 512, "height": 512,
    "steps": 20, "guidance": 7.0, "seed": 5, "n": 1, "output_format": "png", "quality": "auto",
    "policy": {"mode": "auto", "allow_cloud_fallback": True, "allow_adaptation": True,
               "allow_failover_after_refusal": False, "provider": None},
    "model": None,
}


def test_a_round_1_database_reads_as_text_to_image_after_the_image_to_image_upgrade(
        tmp_path: Path) -> None:
    db = tmp_path / "imagedesk.sqlite3"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN")
    schema.MIGRATIONS[0](conn)
    schema.MIGRATIONS[1](conn)
    conn.execute("PRAGMA user_version=2")
    conn.execute("INSERT INTO jobs (state, priority, position, created_at, request) "
                 "VALUES ('queued', 0, 1.0, 1700000000.0, ?)", (json.dumps(_ROUND_1_ROW),))
    conn.execute("INSERT INTO images (id, path, job_id, prompt, width, height, created_at) "
                 "VALUES (7, '/pictures/lighthouse.png', 1, 'a lighthouse', 64, 64, 1.0)")
    conn.execute("COMMIT")
    conn.close()

    conn = open_database(db)
    assert schema_version(conn) == 3 == len(schema.MIGRATIONS)
    [job] = JobQueue(conn).jobs()
    assert job.request.prompt == "a lighthouse at dusk" and job.request.seed == 5
    assert job.request.work is None and job.request.kind.value == "txt2img"
    gallery = Gallery(conn)
    [image] = gallery.search("lighthouse")
    assert image.kind == "txt2img" and image.source_image_id is None
    assert gallery.search(kind="txt2img") == [image] and gallery.search(kind="inpaint") == []
    assert integrity_ok(conn)
    conn.close()
