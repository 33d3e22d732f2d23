"""The order in which queued jobs run, and moving a job in it.

Run order: ``priority`` descending, then ``position`` ascending. ``position`` is
the submission order (a new or retried job goes to the back of its priority);
``move`` changes it. What the user sees in the queue panel is run order, and
``move(conn, job_id, delta)`` moves a job ``delta`` places in that list (negative
= earlier). A job moved past a job of another priority takes that job's
priority, so the list the user sees is always the order jobs will run in.

Positions are floats: a move puts the job halfway between its new neighbours,
one ``UPDATE``; only when floats run out of room between two neighbours is the
queue renumbered. Rows whose position or priority is damaged (not a number, or
absurdly large) are left out of the order rather than breaking it.

Each function runs inside the caller's transaction (``store.jobs.JobQueue``).
"""

from __future__ import annotations

import sqlite3

# the rows that take part in run order: a damaged position or priority does not
ORDERABLE = ("typeof(position) IN ('integer', 'real') AND abs(position) < 1e300 "
             "AND typeof(priority) = 'integer'")


def last_position(conn: sqlite3.Connection) -> float:
    """The back of the queue: a new or retried job goes one past it."""
    row = conn.execute(f"SELECT MAX(position) FROM jobs WHERE {ORDERABLE}").fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def move_queued(conn: sqlite3.Connection, job_id: int, delta: int) -> None:
    """Move the queued job ``job_id`` ``delta`` places in run order, clamped to the
    ends (the caller has checked that it is queued)."""
    order = conn.execute(f"SELECT id, priority, position FROM jobs WHERE state = 'queued' "
                         f"AND {ORDERABLE} "
                         "ORDER BY priority DESC, position ASC").fetchall()
    index = next(i for i, row in enumerate(order) if row[0] == job_id)
    target = max(0, min(len(order) - 1, index + int(delta)))
    if target == index:
        return
    passed = order[target]  # the last job this one jumps over
    rest = [row for row in order if row[0] != job_id]
    slot = target  # the job's index in ``rest`` after the move
    priority = int(passed[1])
    before = rest[slot - 1] if slot > 0 else None
    after = rest[slot] if slot < len(rest) else None
    position = between(
        before[2] if before is not None and before[1] == priority else None,
        after[2] if after is not None and after[1] == priority else None)
    if position is None:  # floats ran out of room between the two: renumber
        for number, row in enumerate(rest, start=1):
            conn.execute("UPDATE jobs SET position = ? WHERE id = ?", (number, row[0]))
        position = slot + 0.5  # rest[slot - 1] is now at slot, rest[slot] at slot + 1
    conn.execute("UPDATE jobs SET priority = ?, position = ? WHERE id = ?",
                 (priority, position, job_id))


def between(low: float | None, high: float | None) -> float | None:
    """A position strictly between two neighbours of the same priority (None for
    "no neighbour on that side"), or None when floats have run out of room."""
    if low is None and high is None:
        return 0.0
    if low is None:
        assert high is not None
        return high - 1.0
    if high is None:
        return low + 1.0
    middle = (low + high) / 2
    return middle if low < middle < high else None
