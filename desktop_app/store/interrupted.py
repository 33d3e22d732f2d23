"""Jobs a stopped ImageDesk left ``running``: putting them back, or holding them.

On start, the process that runs the profile's queue (it holds the profile lock,
so no other process is running these jobs) recovers every ``running`` job:

- normally it goes back to ``queued`` at its old place, with an ``INTERRUPTED``
  attempt recorded, and runs again;
- a job interrupted during a paid call (``paid_call``: a cloud provider's call
  was in flight), or after one whose images were not saved yet
  (``paid_unsaved``), may already have been charged for. Running it again by
  itself could charge twice without the user knowing, so it is failed with
  that reason (error ``InterruptedPaidCall``) and runs again only when the user
  retries it.

Image files a requeued job wrote but never indexed are deleted, so the gallery
folder and the index agree; a held job's are its charged images, so they are
kept and its reason names them.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterable
from typing import Any

from desktop_app.domain.job import Attempt, Outcome
from desktop_app.store.database import transaction

log = logging.getLogger(__name__)

INTERRUPTED_MESSAGE = "ImageDesk stopped while this job ran; it went back to the queue"
INTERRUPTED_PAID_ERROR = "InterruptedPaidCall"


def recover_interrupted(conn: sqlite3.Connection, now: float) -> list[int]:
    """On start: every ``running`` job goes back to ``queued`` at its old place,
    with an ``INTERRUPTED`` attempt recorded; files it wrote but never indexed
    are deleted. Returns the ids put back.

    A job interrupted during a paid call, or after one before its images were
    saved, is not put back: it may have been charged for, so running it again
    by itself could charge twice. It is failed with that reason instead and
    runs again only when the user retries it."""
    removed: list[str] = []
    requeued: list[int] = []
    with transaction(conn):
        rows = conn.execute("SELECT id, started_at, pending_files, paid_call, paid_unsaved, "
                            "attempts FROM jobs WHERE state = 'running' ORDER BY id").fetchall()
        for job_id, started_at, pending, paid_call, paid_unsaved, attempts in rows:
            held = _held_reason(paid_call, paid_unsaved)
            attempt = Attempt(provider="imagedesk", outcome=Outcome.INTERRUPTED,
                              message=held or INTERRUPTED_MESSAGE,
                              started_at=_started(started_at, now))
            attempts = _with_attempt(attempts, attempt)
            files = unindexed(conn, pending)
            if held:  # its unindexed files are the charged images: keep them, say where
                kept = [name for name in files if os.path.isfile(name)]
                if kept:
                    held += (f" Its images were written but not added to the gallery: "
                             f"{', '.join(kept)} (`imagedesk gallery import` adds them).")
                files = []
                conn.execute(
                    "UPDATE jobs SET state = 'failed', finished_at = ?, error = ?, "
                    "error_message = ?, pending_files = '[]', paid_call = NULL, "
                    "paid_unsaved = 0, attempts = ? WHERE id = ?",
                    (now, INTERRUPTED_PAID_ERROR, held, attempts, job_id))
            else:
                conn.execute("UPDATE jobs SET state = 'queued', started_at = NULL, "
                             "pending_files = '[]', attempts = ? WHERE id = ?",
                             (attempts, job_id))
                requeued.append(int(job_id))
            removed += files
        # Before the commit: a crash in between leaves the job running with its journal,
        # and the next recovery finds the rest (a missing file is fine). After it, a
        # crash would leave files no journal names any more.
        remove_files(removed)
    return requeued


def _held_reason(paid_call: Any, paid_unsaved: Any) -> str | None:
    """Why an interrupted job must wait for the user, or None when it may run again."""
    if isinstance(paid_call, str) and paid_call:
        return (f"ImageDesk stopped during a paid call to {paid_call}, which may have been "
                "charged, so the job was not run again by itself. Retry it to run it again "
                "(that call is charged again).")
    if paid_unsaved != 0:  # a count, or a damaged value: hold rather than risk paying twice
        return ("ImageDesk stopped after a paid call had made this job's images but before "
                "they were saved, so the job was not run again by itself. Retry it to run it "
                "again (that call is charged again).")
    return None


def _started(value: Any, now: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return now
    return float(value)


def _with_attempt(attempts: Any, attempt: Attempt) -> Any:
    """The attempts journal with ``attempt`` appended; a damaged one is left as it
    is (reading the job back quarantines it)."""
    try:
        recorded = json.loads(attempts) if isinstance(attempts, str) else None
    except ValueError:
        recorded = None
    if not isinstance(recorded, list):
        return attempts
    return _dumps([*recorded, attempt.to_dict()])


def pending_names(pending: Any) -> list[str]:
    """The file names in a pending-files journal; a damaged one holds none."""
    try:
        names = json.loads(pending) if isinstance(pending, str) else []
    except ValueError:
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def unindexed(conn: sqlite3.Connection, pending: Any) -> list[str]:
    """The journalled files that never made it into the gallery."""
    return [name for name in pending_names(pending)
            if not conn.execute("SELECT 1 FROM images WHERE path = ?", (name,)).fetchone()]


def remove_files(names: Iterable[str]) -> None:
    for name in names:
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass
        except OSError as error:
            log.warning("could not remove the unindexed file %s: %s", name, error)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
