"""Run by test_crash_safety.py: works the queue as the app would, forever, until
SIGKILLed. After each commit it appends a line to the log file, so every id
in the log was committed before the line was written."""

from __future__ import annotations

import functools
import io
import os
import random
import sys
from pathlib import Path

from PIL import Image

from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest
from desktop_app.store.database import open_database
from desktop_app.store.files import a1111_parameters, remove_stale_temp_files, write_image_atomic
from desktop_app.store.gallery import Gallery, NewImage
from desktop_app.store.jobs import JobQueue


def journal(queue: JobQueue, job_id: int, path: Path) -> None:
    queue.note_pending_files(job_id, [path])


def main(db: Path, folder: Path, log_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    conn = open_database(db)
    queue, gallery = JobQueue(conn), Gallery(conn)
    queue.recover_interrupted()
    remove_stale_temp_files(folder)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 120, 200)).save(buffer, "PNG")
    png = buffer.getvalue()
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(log, b"ready\n")
    n = 0
    while True:
        n += 1
        requests = [GenerationRequest(prompt=f"crash test {seed}-{n}-{i}", seed=n)
                    for i in range(rng.choice((1, 1, 3)))]
        jobs = queue.add_many(requests) if len(requests) > 1 else [queue.add(requests[0])]
        os.write(log, "".join(f"added {j.id}\n" for j in jobs).encode())
        job = queue.next_runnable()
        if job is None:
            continue
        job = queue.start(job.id)
        roll = rng.random()
        if roll < 0.6:
            path = write_image_atomic(
                folder, f"job{job.id}_0", png, "png",
                parameters=a1111_parameters(job.request.prompt, "", 20, "Euler a", 7.0, n, 64,
                                            64, "builtin:tiny"),
                provenance={"job_id": job.id},
                journal=functools.partial(journal, queue, job.id))
            queue.finish_with_images(job.id, gallery, [NewImage(
                path=path, prompt=job.request.prompt, width=64, height=64, job_id=job.id,
                seed=n)], provider="local")
        elif roll < 0.8:
            queue.finish(job.id, JobState.FAILED, error="Transient", error_message="boom")
            if rng.random() < 0.5:
                queue.retry(job.id)
        # else: leave it running, as if the app were busy with it


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
