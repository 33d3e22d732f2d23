"""Reading a stored job row back, trusting nothing in it.

A row may have been written by a newer ImageDesk, edited by hand or by a tool,
or half-damaged; one bad value must not stop the queue (``queue list`` exiting,
``queue run`` looping). Every column is checked here and a row that does not
read back raises ``UnreadableJob`` naming the bad columns and the value each
one is repaired to. ``quarantine`` then keeps the row as it was (in
``job_quarantine``, so nothing is lost) and fails the job with that reason; the
queue goes on.

Parsing takes time bounded by the row's size and ends in a ``Job`` or an
``UnreadableJob``, never another exception.
"""

from __future__ import annotations

import base64
import json
import math
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from desktop_app.domain.job import Attempt, Job, JobState, Outcome
from desktop_app.domain.request import GenerationRequest
from desktop_app.store.faults import StoreError

COLUMNS = ("id", "state", "priority", "position", "created_at", "started_at", "finished_at",
           "request", "attempts", "error", "error_message", "image_ids", "provider",
           "pending_files", "paid_call", "paid_unsaved")
SELECT = ", ".join(COLUMNS)
QUARANTINED_ERROR = "UnreadableJob"
MAX_TIME = 253_402_300_799.0  # 9999-12-31: later (or non-finite) times are not times


class UnreadableJob(StoreError):
    """A stored job row that does not read back. ``repairs`` maps each bad column
    (other than ``request``, which has no safe default) to the value that makes
    the row readable again; ``request_ok`` says whether the request itself read."""

    def __init__(self, job_id: int, message: str, repairs: dict[str, Any] | None = None,
                 request_ok: bool = False) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.repairs = repairs or {}
        self.request_ok = request_ok


def parse_job(row: Sequence[Any], now: float) -> Job:
    """The job a ``SELECT {SELECT}`` row holds, or ``UnreadableJob``."""
    values = dict(zip(COLUMNS, row, strict=True))
    job_id = values["id"]
    problems: list[str] = []
    repairs: dict[str, Any] = {}

    def check(column: str, parse: Callable[[Any], Any], repair: Any) -> Any:
        try:
            return parse(values[column])
        except Exception as error:  # any failure of an untrusted value: the column is bad
            problems.append(f"{column} ({_short(error)})")
            repairs[column] = repair
            return None

    request = check("request", _request, None)
    repairs.pop("request", None)
    state = check("state", JobState, JobState.FAILED.value)
    priority = check("priority", _integer, 0)
    check("position", _number, None)  # repaired to the back of the queue by the caller
    created_at = check("created_at", _time, now)
    started_at = check("started_at", _optional(_time), None)
    finished_at = check("finished_at", _optional(_time), None)
    attempts = check("attempts", _attempts, "[]")
    error = check("error", _optional(_text), None)
    error_message = check("error_message", _optional(_text), None)
    image_ids = check("image_ids", _json_list(_integer), "[]")
    provider = check("provider", _optional(_text), None)
    check("pending_files", _json_list(_text), "[]")
    check("paid_call", _optional(_text), None)
    check("paid_unsaved", _integer, 1)  # unknown: assume a charge, hold the job
    if problems:
        raise UnreadableJob(job_id, f"Job {job_id} could not be read back "
                            f"({'; '.join(problems)}); it was marked failed and its stored "
                            "values were kept.", repairs, request_ok=request is not None)
    return Job(id=job_id, request=request, state=state, priority=priority,
               created_at=created_at, started_at=started_at, finished_at=finished_at,
               attempts=attempts, error=error, error_message=error_message,
               image_ids=image_ids, provider=provider)


def quarantine(conn: sqlite3.Connection, bad: UnreadableJob, now: float,
               back_of_queue: float) -> None:
    """Keep the row as it was, repair what can be repaired, and fail the job with
    ``bad``'s reason (inside the caller's transaction)."""
    row = conn.execute(f"SELECT {SELECT} FROM jobs WHERE id = ?", (bad.job_id,)).fetchone()
    if row is None:
        return
    conn.execute("INSERT INTO job_quarantine (job_id, quarantined_at, reason, row) "
                 "VALUES (?, ?, ?, ?)", (bad.job_id, now, bad.message, _snapshot(row)))
    repairs = dict(bad.repairs)
    if "position" in repairs:
        repairs["position"] = back_of_queue
    repairs.update(state=JobState.FAILED.value, finished_at=now, error=QUARANTINED_ERROR,
                   error_message=bad.message)
    if "paid_unsaved" in repairs or "paid_call" in repairs:
        repairs["error_message"] += (" It may have been charged for images that were not "
                                     "saved; check before retrying it.")
    sets = ", ".join(f"{column} = ?" for column in repairs)
    conn.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*repairs.values(), bad.job_id))


def _snapshot(row: Sequence[Any]) -> str:
    """The row as JSON, every value kept exactly (blobs as base64)."""
    kept: dict[str, Any] = {}
    for column, value in zip(COLUMNS, row, strict=True):
        if isinstance(value, bytes):
            kept[column] = {"blob_base64": base64.b64encode(value).decode("ascii")}
        elif isinstance(value, float) and not math.isfinite(value):
            kept[column] = {"real": repr(value)}
        else:
            kept[column] = value
    return json.dumps(kept, ensure_ascii=False)


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def _request(value: Any) -> GenerationRequest:
    data = _json(value)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return GenerationRequest.from_dict(data)


def _json(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"not JSON text but {type(value).__name__}")
    return json.loads(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not a whole number: {value!r:.40}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r:.40}")
    return float(value)


def _time(value: Any) -> float:
    number = _number(value)
    if not 0 <= number <= MAX_TIME:
        raise ValueError(f"not a time: {number!r}")
    return number


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"not text but {type(value).__name__}")
    return value


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else parse(value)


def _json_list(item: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    def parse(value: Any) -> list[Any]:
        data = _json(value)
        if not isinstance(data, list):
            raise ValueError("not a JSON list")
        return [item(v) for v in data]
    return parse


def _attempts(value: Any) -> list[Attempt]:
    return _json_list(_attempt)(value)


def _attempt(data: Any) -> Attempt:
    if not isinstance(data, dict):
        raise ValueError("an attempt is not a JSON object")
    adaptations = data.get("adaptations", [])
    if not isinstance(adaptations, list):
        raise ValueError("an attempt's adaptations are not a list")
    return Attempt(
        provider=_text(data.get("provider")), outcome=Outcome(data.get("outcome")),
        error=_optional(_text)(data.get("error")), message=_text(data.get("message", "")),
        duration_s=_number(data.get("duration_s", 0.0)),
        adaptations=tuple(_text(a) for a in adaptations),
        cost_usd=_number(data.get("cost_usd", 0.0)),
        started_at=_number(data.get("started_at", 0.0)),
    )
