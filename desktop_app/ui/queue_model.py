"""The queue as a table model, fed by engine events (no polling).

Rows are kept in the order the store lists jobs; a ``QueueChanged`` event (a
reorder, retry, clear) makes the owner reload them with ``load``. Live figures
the store does not keep (step counts, previews) survive a reload.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QPalette
from PySide6.QtWidgets import QApplication

from desktop_app.domain.job import Attempt, Job, JobState
from desktop_app.domain.request import RouteMode, RoutingPolicy
from desktop_app.engine.events import (
    JobAdded,
    JobAttempted,
    JobFinished,
    JobProgress,
    JobRouted,
    JobStarted,
    JobWaiting,
)
from desktop_app.store.interrupted import INTERRUPTED_PAID_ERROR

Index = QModelIndex | QPersistentModelIndex


class Column(enum.IntEnum):
    STATE = 0
    PROMPT = 1
    PROGRESS = 2
    PROVIDER = 3
    ELAPSED = 4
    COST = 5


HEADERS = {
    Column.STATE: "State", Column.PROMPT: "Prompt", Column.PROGRESS: "Progress",
    Column.PROVIDER: "Provider", Column.ELAPSED: "Elapsed", Column.COST: "Cost",
}

JOB_ID_ROLE = Qt.ItemDataRole.UserRole + 1
FRACTION_ROLE = Qt.ItemDataRole.UserRole + 2  # float 0..1, or -1 while nothing is known
STATE_ROLE = Qt.ItemDataRole.UserRole + 3  # JobState
ROUTED_ROLE = Qt.ItemDataRole.UserRole + 4  # "routed to openai: ..." or None

STATE_COLOURS = {
    JobState.RUNNING: QColor(52, 120, 246),
    JobState.SUCCEEDED: QColor(46, 160, 67),
    JobState.FAILED: QColor(207, 34, 46),
    JobState.CANCELLED: QColor(130, 130, 130),
}


@dataclasses.dataclass
class JobRow:
    """What one queue row shows; updated in place by events."""

    id: int
    prompt: str
    state: JobState = JobState.QUEUED
    step: int = 0
    total: int = 0
    phase: str = ""
    provider: str | None = None
    routed: str | None = None
    attempts: list[Attempt] = dataclasses.field(default_factory=list)
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    message: str | None = None
    image_ids: tuple[int, ...] = ()
    preview_png: bytes | None = None
    fraction: float = 0.0
    policy: RoutingPolicy | None = None  # what the job runs under (the editor's choices)
    waiting: JobWaiting | None = None  # a rate limit it waits for, as announced
    waiting_until: float | None = None  # when that wait ends (the model's clock)
    origin: str = ""  # "api" for a job another tool sent through the local API

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd for a in self.attempts)

    @property
    def held(self) -> bool:
        """Interrupted during a paid call: it waits for the user, who may retry it."""
        return self.state is JobState.FAILED and self.error == INTERRUPTED_PAID_ERROR

    @property
    def adaptations(self) -> list[str]:
        return [text for a in self.attempts for text in a.adaptations]

    @classmethod
    def from_job(cls, job: Job) -> JobRow:
        reason = job.fallback_reason
        return cls(
            id=job.id, prompt=job.request.prompt, state=job.state, provider=job.provider,
            routed=f"routed to {job.provider}: {reason}" if reason else None,
            attempts=list(job.attempts), started_at=job.started_at,
            finished_at=job.finished_at, error=job.error, message=job.error_message,
            image_ids=tuple(job.image_ids), policy=job.request.policy,
            origin=job.request.origin,
        )

    def details(self) -> str:
        """The error details dialog's text: outcome, then every attempt in readable form."""
        lines = [f"Job {self.id}: {self.state.value}"]
        if self.message:
            lines.append(f"{self.error or 'Error'}: {self.message}")
        if self.routed:
            lines.append(self.routed)
        if self.policy is not None:
            lines.append(f"Policy: {describe_policy(self.policy)}")
        if self.attempts:
            lines.append("")
            lines.append("Attempts:")
            lines.extend(f"  {i}. {a.describe()}" for i, a in enumerate(self.attempts, 1))
        return "\n".join(lines)


class QueueModel(QAbstractTableModel):
    def __init__(self, parent: QObject | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(parent)
        self._rows: list[JobRow] = []
        self._by_id: dict[int, int] = {}
        self._clock = clock

    # -- reading -----------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Column)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal
                and 0 <= section < len(Column)):
            return HEADERS[Column(section)]
        return None

    def row(self, row: int) -> JobRow:
        return self._rows[row]

    def row_of(self, job_id: int) -> int | None:
        return self._by_id.get(job_id)

    def job_row(self, job_id: int) -> JobRow | None:
        row = self._by_id.get(job_id)
        return None if row is None else self._rows[row]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        r = self._rows[index.row()]
        column = Column(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(r, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(r, column)
        if role == Qt.ItemDataRole.ForegroundRole and column is Column.STATE:
            colour = STATE_COLOURS.get(r.state)
            return QBrush(colour) if colour else None
        if role == Qt.ItemDataRole.ForegroundRole and column is Column.PROVIDER and r.routed:
            return QApplication.palette().brush(QPalette.ColorRole.Link)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (Column.ELAPSED, Column.COST):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == JOB_ID_ROLE:
            return r.id
        if role == FRACTION_ROLE:
            return self._fraction(r)
        if role == STATE_ROLE:
            return r.state
        if role == ROUTED_ROLE:
            return r.routed
        return None

    def _fraction(self, r: JobRow) -> float:
        if r.held:
            return -1.0  # its reason is drawn as text, not on a bar
        if r.state is JobState.SUCCEEDED:
            return 1.0
        if r.total:
            return r.step / r.total
        return r.fraction if r.state is not JobState.RUNNING or r.fraction else -1.0

    def _display(self, r: JobRow, column: Column) -> str:
        if column is Column.STATE:
            return "held" if r.held else r.state.value
        if column is Column.PROMPT:
            shown = r.prompt if len(r.prompt) <= 120 else r.prompt[:119] + "…"
            return f"API · {shown}" if r.origin == "api" else shown
        if column is Column.PROGRESS:
            waiting = self.waiting_text(r)
            if waiting is not None:
                return waiting
            if r.held:
                return r.message or ""
            if r.state is JobState.RUNNING and r.total:
                return f"{r.step}/{r.total}"
            if r.state is JobState.RUNNING:
                return r.phase or "starting…"
            return finished_progress_text(r)
        if column is Column.PROVIDER:
            text = r.routed or r.provider or (
                describe_policy(r.policy) if r.policy and r.state is JobState.QUEUED else "")
            if r.adaptations:
                text += f" · adapted: {'; '.join(r.adaptations)}"
            return text
        if column is Column.ELAPSED:
            elapsed = self.elapsed_s(r)
            return "" if elapsed is None else _duration(elapsed)
        if column is Column.COST:
            return f"${r.cost_usd:.3f}" if r.cost_usd else ""
        return ""

    def _tooltip(self, r: JobRow, column: Column) -> str | None:
        if column is Column.PROMPT:
            return f"{r.prompt}\n\n(sent by another tool through the local API)" \
                if r.origin == "api" else r.prompt
        if column is Column.PROGRESS and r.held:
            return r.message
        if column in (Column.PROVIDER, Column.STATE) and (r.attempts or r.message):
            return r.details()
        return None

    def waiting_text(self, r: JobRow) -> str | None:
        """"waiting for openai's rate limit, 28 s", counting down; None once it is over."""
        if r.waiting is None or r.waiting_until is None or r.state is not JobState.RUNNING:
            return None
        left = r.waiting_until - self._clock()
        if left <= 0:
            return None
        return dataclasses.replace(r.waiting, seconds=left).text

    def elapsed_s(self, r: JobRow) -> float | None:
        if r.started_at is None:
            return None
        end = r.finished_at if r.finished_at is not None else self._clock()
        return max(0.0, end - r.started_at)

    # -- loading and events ------------------------------------------------------

    def load(self, jobs: Sequence[Job]) -> None:
        """Replace all rows with the store's list, keeping live step counts of running jobs."""
        old = {r.id: r for r in self._rows}
        self.beginResetModel()
        self._rows = []
        for job in jobs:
            row = JobRow.from_job(job)
            previous = old.get(job.id)
            if previous is not None and job.state is JobState.RUNNING:
                row.step, row.total, row.phase = previous.step, previous.total, previous.phase
                row.preview_png = previous.preview_png
                row.routed = row.routed or previous.routed
                row.provider = row.provider or previous.provider
                row.started_at = row.started_at or previous.started_at
                row.waiting, row.waiting_until = previous.waiting, previous.waiting_until
            self._rows.append(row)
        self._reindex()
        self.endResetModel()

    def on_job_added(self, event: JobAdded) -> None:
        if event.job_id in self._by_id:
            return
        position = len(self._rows)
        self.beginInsertRows(QModelIndex(), position, position)
        self._rows.append(JobRow(id=event.job_id, prompt=event.request.prompt,
                                 policy=event.request.policy, origin=event.request.origin))
        self._by_id[event.job_id] = position
        self.endInsertRows()

    def on_job_started(self, event: JobStarted) -> None:
        def update(r: JobRow) -> None:
            r.state = JobState.RUNNING
            r.step = r.total = 0
            r.phase = ""
            r.started_at = self._clock()
            r.finished_at = None
            r.error = r.message = None
            r.waiting = r.waiting_until = None
        self._update(event.job_id, update)

    def on_job_progress(self, event: JobProgress) -> None:
        def update(r: JobRow) -> None:
            r.step, r.total, r.phase = event.step, event.total, event.message
            r.provider = event.provider
            r.waiting = r.waiting_until = None
            if event.preview_png is not None:
                r.preview_png = event.preview_png
        self._update(event.job_id, update, Column.PROGRESS, Column.PROVIDER)

    def on_job_attempted(self, event: JobAttempted) -> None:
        self._update(event.job_id, lambda r: r.attempts.append(event.attempt))

    def on_job_routed(self, event: JobRouted) -> None:
        def update(r: JobRow) -> None:
            r.routed = event.text
            r.provider = event.provider
            r.step = r.total = 0
            r.waiting = r.waiting_until = None
        self._update(event.job_id, update)

    def on_job_waiting(self, event: JobWaiting) -> None:
        def update(r: JobRow) -> None:
            r.waiting, r.waiting_until = event, self._clock() + event.seconds
        self._update(event.job_id, update, Column.PROGRESS)

    def on_job_finished(self, event: JobFinished) -> None:
        def update(r: JobRow) -> None:
            r.state = event.state
            r.provider = event.provider or r.provider
            r.image_ids = event.image_ids
            r.error, r.message = event.error, event.message
            r.finished_at = self._clock()
            r.waiting = r.waiting_until = None
            if event.state is JobState.SUCCEEDED and r.total:
                r.step = r.total
        self._update(event.job_id, update)

    def tick(self) -> None:
        """Refresh the elapsed column of running jobs, and the countdown of those
        waiting (the view calls this once a second)."""
        for position, r in enumerate(self._rows):
            if r.state is JobState.RUNNING:
                first = Column.PROGRESS if r.waiting is not None else Column.ELAPSED
                self.dataChanged.emit(self.index(position, first),
                                      self.index(position, Column.ELAPSED),
                                      [Qt.ItemDataRole.DisplayRole])

    def _update(self, job_id: int, change: Callable[[JobRow], None], *columns: Column) -> None:
        position = self._by_id.get(job_id)
        if position is None:
            return
        change(self._rows[position])
        first = min(columns) if columns else Column.STATE
        last = max(columns) if columns else Column(len(Column) - 1)
        self.dataChanged.emit(self.index(position, first), self.index(position, last))

    def _reindex(self) -> None:
        self._by_id = {r.id: i for i, r in enumerate(self._rows)}


def finished_progress_text(r: JobRow) -> str:
    """The Progress cell of a job not running: what it gave (the State column
    already says whether it failed or was cancelled, so those stay blank)."""
    if r.state is JobState.SUCCEEDED:
        n = len(r.image_ids)
        return f"{n} image{'s' if n != 1 else ''}" if n else "done"
    return ""


def describe_policy(policy: RoutingPolicy) -> str:
    """The routing policy a job runs under, as the queue shows it."""
    mode = {RouteMode.AUTO: "auto", RouteMode.LOCAL_ONLY: "local only",
            RouteMode.CLOUD_ONLY: "cloud only"}[policy.mode]
    parts = [f"{policy.provider} only" if policy.provider else mode]
    parts.append("cloud fallback " + ("on" if policy.allow_cloud_fallback else "off"))
    parts.append("adapts size/count" if policy.allow_adaptation else "no adapting")
    if policy.allow_failover_after_refusal:
        parts.append("another provider after a refusal")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}:{secs:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
