"""Kill a process that works the queue at random moments; after every kill the
database opens, passes ``integrity_check``, holds every job it had accepted,
and, after recovery, the gallery index and the image folder agree."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from desktop_app.domain.job import JobState
from desktop_app.store.database import integrity_ok, open_database
from desktop_app.store.files import TEMP_SUFFIX, remove_stale_temp_files
from desktop_app.store.gallery import Gallery
from desktop_app.store.jobs import JobQueue

KILLS = 32
WORKER = Path(__file__).with_name("crash_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def wait_for_ready(log: Path, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    start = log.read_bytes().count(b"ready") if log.exists() else 0
    while time.monotonic() < deadline:
        if log.exists() and log.read_bytes().count(b"ready") > start:
            return
        if process.poll() is not None:
            raise AssertionError(f"the worker exited early: {process.stderr.read()!r}")  # type: ignore[union-attr]
        time.sleep(0.01)
    raise AssertionError("the worker never became ready")


def accepted_ids(log: Path) -> set[int]:
    return {int(line.split()[1]) for line in log.read_text().splitlines()
            if line.startswith("added ")}


def final_files(folder: Path) -> set[Path]:
    return {p for p in folder.iterdir() if not p.name.endswith(TEMP_SUFFIX)}


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_accepted_job(tmp_path: Path) -> None:
    db, folder, log = tmp_path / "imagedesk.sqlite", tmp_path / "images", tmp_path / "log.txt"
    folder.mkdir()
    rng = random.Random(20261130)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for kill in range(KILLS):
        process = subprocess.Popen(
            [sys.executable, str(WORKER), str(db), str(folder), str(log), str(kill)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_ready(log, process)
        time.sleep(rng.uniform(0.0, 0.25))
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL, process.stderr.read()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]

        # Before recovery: no image under a final name is partial.
        for path in final_files(folder):
            with Image.open(path) as image:
                image.load()
                assert "parameters" in image.text  # type: ignore[attr-defined]

        conn = open_database(db)
        assert integrity_ok(conn), f"integrity check failed after kill {kill}"
        queue, gallery = JobQueue(conn), Gallery(conn)
        missing = [i for i in accepted_ids(log) if queue.get(i) is None]
        assert not missing, f"accepted jobs lost after kill {kill}: {missing}"

        queue.recover_interrupted()
        remove_stale_temp_files(folder)
        assert final_files(folder) == gallery.paths(), f"index and folder differ after kill {kill}"
        assert not queue.jobs({JobState.RUNNING})
        by_job: dict[int | None, list[int]] = {}
        for record in gallery.search(limit=1_000_000, sort="oldest"):
            by_job.setdefault(record.job_id, []).append(record.id)
        for job in queue.jobs({JobState.SUCCEEDED}, limit=1_000_000):
            images = by_job.get(job.id, [])
            assert images == job.image_ids and len(images) == 1, (
                f"job {job.id} completed {len(images)} times")
        conn.close()

    conn = open_database(db)
    counts = JobQueue(conn).counts()
    conn.close()
    assert len(accepted_ids(log)) > KILLS  # the worker really worked between kills
    assert counts[JobState.SUCCEEDED] > 0
