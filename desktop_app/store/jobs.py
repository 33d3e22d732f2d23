"""The crash-safe job queue.

Every mutation is one SQLite transaction, so a SIGKILL at any instant leaves the
old state or the new one. State changes go through the domain's
``check_transition`` and a conditional ``UPDATE ... WHERE state = ?``, so a job
cannot be started twice nor finished twice.

Run order (priority, then submission order, changed by ``move``) is kept in
``store.run_order``.

Progress is not stored: it changes many times a second while a job runs, is
meaningless after a restart (the job starts again from 0), and reaches the
faces as ``JobProgress`` events.

Rows are read back through ``job_rows``: a row that does not read back is
quarantined (kept as it was, the job failed with the reason) and the queue goes
on. Paid calls: while a cloud provider's call runs, and until the images it was
charged for are saved, the job is marked (``paid_call``, ``paid_unsaved``), so
recovery after a crash holds it as failed instead of running it, and paying,
again without the user knowing.

Other processes: ``changed_elsewhere`` tells whether another connection (the
CLI's ``queue add`` beside the window) committed since it was last asked, from
``PRAGMA data_version``, a read of a counter in shared memory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop_app.domain.errors import ImageDeskError
from desktop_app.domain.job import (
    Attempt,
    IllegalTransition,
    Job,
    JobState,
    check_transition,
)
from desktop_app.domain.request import GenerationRequest
from desktop_app.store import run_order
from desktop_app.store.database import StoreError, reading, transaction
from desktop_app.store.interrupted import (
    pending_names,
    recover_interrupted,
    remove_files,
    unindexed,
)
from desktop_app.store.job_rows import SELECT as _COLUMNS
from desktop_app.store.job_rows import UnreadableJob, parse_job, quarantine

if TYPE_CHECKING:
    from desktop_app.store.gallery import Gallery, NewImage

log = logging.getLogger(__name__)

PAUSED_FLAG = "queue_paused"


class JobNotFound(ImageDeskError, KeyError):
    """No job with this id (it may have been cleared)."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"There is no job {job_id}; it may have been cleared from the queue.")
        self.job_id = job_id


@dataclasses.dataclass(frozen=True)
class QuarantinedJob:
    """A job row that did not read back, as it was kept when it was failed."""

    job_id: int
    quarantined_at: float
    reason: str


class JobQueue:
    def __init__(self, conn: sqlite3.Connection, clock: Callable[[], float] = time.time) -> None:
        self.conn = conn
        self.clock = clock
        self._data_version: int | None = None

    # -- adding --------------------------------------------------------------------

    def add(self, request: GenerationRequest, priority: int = 0) -> Job:
        return self.add_many([request], priority)[0]

    def add_many(self, requests: Sequence[GenerationRequest], priority: int = 0) -> list[Job]:
        """Queue requests in one transaction: all of them are accepted, or none."""
        now = self.clock()
        ids = []
        with transaction(self.conn) as conn:
            position = self._last_position() + 1
            for offset, request in enumerate(requests):
                cursor = conn.execute(
                    "INSERT INTO jobs (state, priority, position, created_at, request) "
                    "VALUES ('queued', ?, ?, ?, ?)",
                    (int(priority), position + offset, now, _dumps(request.to_dict())),
                )
                ids.append(int(cursor.lastrowid or 0))
        return [Job(id=i, request=r, priority=int(priority), created_at=now)
                for i, r in zip(ids, requests, strict=True)]

    # -- reading -------------------------------------------------------------------

    def get(self, job_id: int) -> Job | None:
        """The job, or None when there is none. A row that does not read back is
        quarantined first; one that still cannot be read raises ``UnreadableJob``."""
        with reading(self.conn):
            row = self.conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?",
                                    (job_id,)).fetchone()
        if row is None:
            return None
        try:
            return parse_job(row, self.clock())
        except UnreadableJob as bad:
            self._quarantine(bad)
            with reading(self.conn):
                row = self.conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?",
                                        (job_id,)).fetchone()
            return None if row is None else parse_job(row, self.clock())

    def next_runnable(self, exclude: Collection[int] = ()) -> Job | None:
        """The queued job that should run next, skipping ``exclude``. Rows that do
        not read back are quarantined on the way (each leaves ``queued``, so this ends)."""
        excluded = list(exclude)
        marks = ",".join("?" * len(excluded))
        where = f"AND id NOT IN ({marks})" if excluded else ""
        while True:
            with reading(self.conn):
                row = self.conn.execute(
                    f"SELECT {_COLUMNS} FROM jobs WHERE state = 'queued' {where} "
                    "ORDER BY priority DESC, position ASC LIMIT 1", excluded).fetchone()
            if row is None:
                return None
            try:
                return parse_job(row, self.clock())
            except UnreadableJob as bad:  # e.g. written by a newer version: fail it, go on
                self._quarantine(bad)

    def jobs(self, states: Collection[JobState] | None = None, limit: int = 500) -> list[Job]:
        """Running jobs (oldest start first), then queued in run order, then finished
        ones, most recently finished first — the order of the queue panel."""
        wanted = [s.value for s in states] if states is not None else []
        if states is not None and not wanted:
            return []
        # Without a filter every row is read, so a damaged state is quarantined too.
        where = f"state IN ({','.join('?' * len(wanted))})" if wanted else "1"
        with reading(self.conn):
            rows = self.conn.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE {where} ORDER BY "
                "CASE state WHEN 'running' THEN 0 WHEN 'queued' THEN 1 ELSE 2 END, "
                "CASE state WHEN 'running' THEN started_at WHEN 'queued' THEN NULL "
                "ELSE -finished_at END, priority DESC, position, id LIMIT ?",
                [*wanted, int(limit)]).fetchall()
        jobs = []
        for row in rows:
            try:
                jobs.append(parse_job(row, self.clock()))
            except UnreadableJob as bad:
                try:
                    job = self.get(bad.job_id)  # quarantines it, then reads it again
                except StoreError as still:  # a request with no safe default, or read-only
                    log.debug("job %s is left out of the list: %s", bad.job_id, still)
                    continue
                if job is not None and (states is None or job.state in states):
                    jobs.append(job)
        return jobs

    def quarantined(self) -> list[QuarantinedJob]:
        """Jobs whose stored row did not read back, newest first (the rows as they
        were are kept in ``job_quarantine``)."""
        with reading(self.conn):
            rows = self.conn.execute(
                "SELECT job_id, quarantined_at, reason FROM job_quarantine "
                "ORDER BY quarantined_at DESC, rowid DESC").fetchall()
        return [QuarantinedJob(int(i), float(t), str(r)) for i, t, r in rows]

    def _quarantine(self, bad: UnreadableJob) -> None:
        with transaction(self.conn) as conn:
            state = conn.execute("SELECT state FROM jobs WHERE id = ?", (bad.job_id,)).fetchone()
            if state is None:
                return
            kept = conn.execute("SELECT 1 FROM job_quarantine WHERE job_id = ?",
                                (bad.job_id,)).fetchone()
            if kept and state[0] == JobState.FAILED.value and not bad.repairs:
                return  # quarantined before; only its request is left, which has no default
            log.warning("%s", bad.message)
            quarantine(conn, bad, self.clock(), self._last_position() + 1)

    def counts(self) -> dict[JobState, int]:
        counts = dict.fromkeys(JobState, 0)
        with reading(self.conn):
            for state, count in self.conn.execute(
                    "SELECT state, COUNT(*) FROM jobs GROUP BY state"):
                if state in JobState._value2member_map_:  # a damaged row counts nowhere
                    counts[JobState(state)] = int(count)
        return counts

    def changed_elsewhere(self) -> bool:
        """Whether another connection (another process) committed to the database
        since the last call; the first call only takes the baseline. Cheap: a read
        of a counter in the WAL's shared memory, no table is touched."""
        with reading(self.conn):
            version = int(self.conn.execute("PRAGMA data_version").fetchone()[0])
        changed = self._data_version is not None and version != self._data_version
        self._data_version = version
        return changed

    # -- state changes -------------------------------------------------------------

    def start(self, job_id: int) -> Job:
        """queued -> running, stamping ``started_at``."""
        with transaction(self.conn):
            self._move_state(job_id, JobState.RUNNING,
                             "started_at = ?, finished_at = NULL", (self.clock(),))
        return self._must_get(job_id)

    def paid_call_started(self, job_id: int, provider: str) -> None:
        """A call that may be charged for (a cloud provider's) is about to start:
        committed before the call goes out, so a crash during it is seen on recovery."""
        with transaction(self.conn) as conn:
            conn.execute("UPDATE jobs SET paid_call = ? WHERE id = ? AND state = 'running'",
                         (provider, job_id))

    def paid_call_ended(self, job_id: int, *, charged: bool) -> None:
        """The paid call returned: with images (``charged``: they are held until the
        job's images are saved), or with an error (nothing to hold for it)."""
        with transaction(self.conn) as conn:
            conn.execute("UPDATE jobs SET paid_call = NULL, paid_unsaved = paid_unsaved + ? "
                         "WHERE id = ? AND typeof(paid_unsaved) = 'integer'",
                         (1 if charged else 0, job_id))

    def add_attempt(self, job_id: int, attempt: Attempt) -> None:
        with transaction(self.conn) as conn:
            cursor = conn.execute(
                "UPDATE jobs SET attempts = json_insert(attempts, '$[#]', json(?)) WHERE id = ?",
                (_dumps(attempt.to_dict()), job_id))
            if cursor.rowcount == 0:
                raise JobNotFound(job_id)

    def note_pending_files(self, job_id: int, paths: Iterable[Path]) -> None:
        """Journal image files a running job is about to write (or has written) but
        not yet indexed; ``recover_interrupted`` deletes them if the app dies before
        ``finish_with_images`` commits, so the folder and the gallery always agree."""
        with transaction(self.conn) as conn:
            row = conn.execute("SELECT pending_files FROM jobs WHERE id = ?",
                               (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(job_id)
            pending = pending_names(row[0]) + [str(p) for p in paths]
            conn.execute("UPDATE jobs SET pending_files = ? WHERE id = ?",
                         (_dumps(pending), job_id))

    def finish(self, job_id: int, state: JobState, *, provider: str | None = None,
               error: str | None = None, error_message: str | None = None,
               image_ids: Sequence[int] = ()) -> Job:
        """running (or queued) -> succeeded / failed / cancelled."""
        if not state.finished:
            raise ValueError(f"finish() needs a finished state, not {state.value}")
        with transaction(self.conn):
            self._finish(job_id, state, provider, error, error_message, image_ids)
        return self._must_get(job_id)

    def finish_with_images(self, job_id: int, gallery: Gallery, images: Sequence[NewImage],
                           *, provider: str | None = None,
                           seed: int | None = None) -> list[int]:
        """Index a job's images and mark it succeeded in ONE transaction, so a crash
        leaves either a running job (requeued on restart) or a finished job with
        its gallery rows, never one without the other. ``seed``, when the request
        had none, records the seed that was used in the stored request."""
        if gallery.conn is not self.conn:
            raise StoreError("The job queue and the gallery must share one database connection.")
        with transaction(self.conn) as conn:
            image_ids = gallery.add_many(images)
            if seed is not None:
                row = conn.execute("SELECT request FROM jobs WHERE id = ?", (job_id,)).fetchone()
                if row is not None:
                    data = json.loads(row[0])
                    if data.get("seed") is None:
                        data["seed"] = int(seed)
                        conn.execute("UPDATE jobs SET request = ? WHERE id = ?",
                                     (_dumps(data), job_id))
            self._finish(job_id, JobState.SUCCEEDED, provider, None, None,
                         [r.id for r in image_ids])
        return [r.id for r in image_ids]

    def cancel(self, job_id: int, *, orphaned: bool = False) -> Job:
        """queued -> cancelled; running -> cancelled only when ``orphaned``.

        A running job normally raises ``IllegalTransition``: the process running it
        (this one's runner, or another window or CLI on the same profile) holds its
        provider call, so only that process can stop it — its runner cancels the
        call, then records ``finish(job_id, JobState.CANCELLED)``. Marking the row
        cancelled from here would leave the call running, paying for images
        whose job then refuses to finish.

        ``orphaned`` says the caller holds the profile's queue lock and does not run
        the job itself, so no process runs it (an interrupted ``queue run`` left it
        ``running``): then it is cancelled, and files it wrote but never indexed go.
        """
        with transaction(self.conn) as conn:
            row = conn.execute("SELECT state, pending_files FROM jobs WHERE id = ?",
                               (job_id,)).fetchone()
            running = row is not None and row[0] == JobState.RUNNING.value
            if running and not orphaned:
                raise IllegalTransition(f"Job {job_id} is running; cancel it in the window "
                                        "or process that runs it.")
            if running:
                remove_files(unindexed(conn, row[1]))  # before the commit, as recovery does
            self._move_state(job_id, JobState.CANCELLED,
                             "finished_at = ?, error = 'Cancelled', error_message = ?, "
                             "pending_files = '[]', paid_call = NULL, paid_unsaved = 0",
                             (self.clock(), "cancelled by the user"),
                             only_from=(JobState.QUEUED, JobState.RUNNING) if orphaned
                             else (JobState.QUEUED,))
        return self._must_get(job_id)

    def retry(self, job_id: int) -> Job:
        """failed / cancelled -> queued at the back of its priority; attempts are kept."""
        with transaction(self.conn):
            self._move_state(
                job_id, JobState.QUEUED,
                "position = ?, started_at = NULL, finished_at = NULL, error = NULL, "
                "error_message = NULL, provider = NULL, paid_call = NULL, paid_unsaved = 0",
                (self._last_position() + 1,), only_from=(JobState.FAILED, JobState.CANCELLED))
        return self._must_get(job_id)

    def move(self, job_id: int, delta: int) -> None:
        """Move a queued job ``delta`` places in run order (negative = earlier),
        clamped to the ends; see ``store.run_order`` for how priority follows."""
        with transaction(self.conn) as conn:
            job = self._must_get(job_id)
            if job.state is not JobState.QUEUED:
                raise IllegalTransition(f"Only queued jobs can be moved; job {job_id} is "
                                        f"{job.state.value}.")
            run_order.move_queued(conn, job_id, delta)

    def clear_finished(self) -> int:
        """Remove succeeded, failed and cancelled jobs; their images stay in the gallery."""
        with transaction(self.conn) as conn:
            cursor = conn.execute(
                "DELETE FROM jobs WHERE state IN ('succeeded', 'failed', 'cancelled')")
        return int(cursor.rowcount)

    def recover_interrupted(self) -> list[int]:
        """On start: every ``running`` job goes back to ``queued`` at its old place,
        except one interrupted during (or just after) a paid call, which is held
        as failed until the user retries it; see ``store.interrupted``. Returns the
        ids put back."""
        return recover_interrupted(self.conn, self.clock())

    # -- the pause flag ------------------------------------------------------------

    def set_paused(self, paused: bool) -> None:
        with transaction(self.conn) as conn:
            conn.execute("INSERT INTO flags (name, value) VALUES (?, ?) "
                         "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                         (PAUSED_FLAG, "1" if paused else "0"))

    def is_paused(self) -> bool:
        with reading(self.conn):
            row = self.conn.execute("SELECT value FROM flags WHERE name = ?",
                                    (PAUSED_FLAG,)).fetchone()
        return bool(row) and row[0] == "1"

    # -- internals -----------------------------------------------------------------

    def _last_position(self) -> float:
        return run_order.last_position(self.conn)

    def _must_get(self, job_id: int) -> Job:
        job = self.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def _move_state(self, job_id: int, target: JobState, sets: str, params: tuple[Any, ...],
                    only_from: Collection[JobState] | None = None) -> None:
        row = self.conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        current = JobState(row[0])
        check_transition(current, target)
        if only_from is not None and current not in only_from:
            # running -> queued is legal for crash recovery only, never a user's retry
            raise IllegalTransition(f"A {current.value} job cannot be retried; only failed "
                                    "or cancelled jobs can.")
        self.conn.execute(f"UPDATE jobs SET state = ?, {sets} WHERE id = ? AND state = ?",
                          (target.value, *params, job_id, current.value))

    def _finish(self, job_id: int, state: JobState, provider: str | None, error: str | None,
                error_message: str | None, image_ids: Sequence[int]) -> None:
        self._move_state(
            job_id, state,
            "finished_at = ?, provider = COALESCE(?, provider), error = ?, error_message = ?, "
            "image_ids = ?, pending_files = '[]', paid_call = NULL, paid_unsaved = 0",
            (self.clock(), provider, error, error_message, _dumps([int(i) for i in image_ids])))


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
