"""How the CLI shows things: a progress line on a terminal, tables, and the JSON forms."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO

from desktop_app.domain.job import Job, JobState
from desktop_app.domain.request import RouteMode, RoutingPolicy
from desktop_app.engine.events import Event, JobProgress, JobRouted, JobStarted, JobWaiting
from desktop_app.store.interrupted import INTERRUPTED_PAID_ERROR
from desktop_app.store.job_rows import QUARANTINED_ERROR

BAR_WIDTH = 24


class ProgressPrinter:
    """Draws one updating progress line for a job on stderr when it is a terminal."""

    def __init__(self, job_id: int, stream: TextIO = sys.stderr) -> None:
        self.job_id = job_id
        self.stream = stream
        self.live = stream.isatty()
        self._drawn = False
        self._width = 0  # of the line drawn last

    def __call__(self, event: Event) -> None:
        if getattr(event, "job_id", None) != self.job_id:
            return
        if isinstance(event, JobProgress) and self.live:
            filled = int(BAR_WIDTH * event.fraction)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            # before the first step, what the provider is doing (loading a model…)
            doing = (f"{event.step}/{event.total}" if event.total or not event.message
                     else event.message)
            line = f"[{bar}] {doing} on {event.provider}"
            # a shorter line over a longer one: blank out what the last one left
            self.stream.write(f"\r{line.ljust(self._width)}  ")
            self.stream.flush()
            self._width = len(line)
            self._drawn = True
        elif isinstance(event, JobRouted | JobWaiting):
            self._newline()
            self.stream.write(f"{event.text}\n")
        elif isinstance(event, JobStarted) and self.live:
            self.stream.write(f"job {event.job_id} started\n")

    def _newline(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self._drawn = False
            self._width = 0

    def done(self) -> None:
        self._newline()


def job_json(job: Job, image_paths: Sequence[str]) -> dict[str, Any]:
    """The one JSON object ``generate --json`` prints (documented in the README)."""
    return {
        "job_id": job.id,
        "state": job.state.value,
        "provider": job.provider,
        "attempts": [
            {"provider": a.provider, "outcome": a.outcome.value, "error": a.error,
             "message": a.message, "adaptations": list(a.adaptations),
             "duration_s": round(a.duration_s, 3), "cost_usd": a.cost_usd}
            for a in job.attempts
        ],
        "images": list(image_paths),
        "seed": job.request.seed,
        "cost": round(job.cost_usd, 6),
        "error": job.error_message if job.state.value != "succeeded" else None,
        "policy": job.request.policy.to_dict(),
    }


def job_row(job: Job) -> dict[str, Any]:
    """One job as ``queue list --json`` prints it (documented in the README)."""
    prompt = job.request.prompt.replace("\n", " ")
    return {
        "id": job.id, "state": job.state.value, "priority": job.priority,
        "provider": job.provider, "prompt": prompt, "styles": list(job.request.styles),
        "error": job.error_message, "error_class": job.error, "images": list(job.image_ids),
        "policy": job.request.policy.to_dict(), "routing": policy_text(job.request.policy),
        "waiting_for_you": waiting_reason(job),
    }


def quarantined_row(job_id: int, reason: str) -> dict[str, Any]:
    """A job whose stored request cannot be read, in ``job_row``'s shape."""
    return {
        "id": job_id, "state": JobState.FAILED.value, "priority": None, "provider": None,
        "prompt": None, "error": reason, "error_class": QUARANTINED_ERROR, "images": [],
        "policy": None, "routing": None, "waiting_for_you": f"quarantined: {reason}",
    }


def policy_text(policy: RoutingPolicy) -> str:
    """The routing policy a job runs under, in a few words ("auto, no cloud fallback")."""
    parts = [f"{policy.provider} only" if policy.provider else policy.mode.value]
    if policy.private:
        parts.append("private: never leaves this machine")
    if (policy.mode is RouteMode.AUTO and policy.provider is None
            and not policy.allow_cloud_fallback):
        parts.append("no cloud fallback")
    if not policy.allow_adaptation:
        parts.append("no adapting")
    if policy.allow_failover_after_refusal:
        parts.append("failover after refusal")
    return ", ".join(parts)


def waiting_reason(job: Job) -> str | None:
    """Why a failed job waits for the user rather than running again by itself
    (held after a paid call a stop interrupted, or quarantined as unreadable),
    with what to do; None for every other job."""
    if job.state is not JobState.FAILED:
        return None
    if job.error == INTERRUPTED_PAID_ERROR:
        return (f"held: {job.error_message} To run it again: "
                f"`imagedesk queue retry {job.id}`.")
    if job.error == QUARANTINED_ERROR:
        return f"quarantined: {job.error_message}"
    return None


def print_waiting(rows: Sequence[dict[str, Any]], stream: TextIO = sys.stdout) -> None:
    """Under the queue table: each job that waits for the user, on a line of its own
    (the table cuts long reasons)."""
    for row in rows:
        if row.get("waiting_for_you"):
            stream.write(f"job {row['id']} {row['waiting_for_you']}\n")


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str],
                stream: TextIO = sys.stdout) -> None:
    if not rows:
        stream.write("(none)\n")
        return
    widths = {c: min(60, max(len(c), *(len(_cell(r.get(c))) for r in rows))) for c in columns}
    stream.write("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip() + "\n")
    for row in rows:
        stream.write("  ".join(_cell(row.get(c))[: widths[c]].ljust(widths[c])
                               for c in columns).rstrip() + "\n")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    return str(value)
