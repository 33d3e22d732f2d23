from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.modeltest import ModelTester

from desktop_app.domain.job import Attempt, Job, JobState, Outcome
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.events import (
    JobAdded,
    JobAttempted,
    JobFinished,
    JobProgress,
    JobRouted,
    JobStarted,
)
from desktop_app.ui.queue_model import FRACTION_ROLE, Column, QueueModel


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def text(model: QueueModel, row: int, column: Column) -> str:
    return model.index(row, column).data(Qt.ItemDataRole.DisplayRole)


def add(model: QueueModel, job_id: int, prompt: str = "a red fox") -> None:
    model.on_job_added(JobAdded(job_id, GenerationRequest(prompt)))


def test_queue_model_passes_the_model_tester_through_a_whole_job(
        qtmodeltester: ModelTester) -> None:
    model = QueueModel()
    qtmodeltester.check(model, force_py=True)
    add(model, 1)
    add(model, 2, "a blue whale")
    model.on_job_started(JobStarted(1))
    model.on_job_progress(JobProgress(1, "local", 3, 10))
    model.on_job_finished(JobFinished(1, JobState.SUCCEEDED, "local", (7,)))
    model.load([Job(2, GenerationRequest("a blue whale")), Job(3, GenerationRequest("x"))])
    qtmodeltester.check(model, force_py=True)
    assert model.rowCount() == 2


def test_a_row_goes_queued_running_succeeded_with_step_counts_and_elapsed_time() -> None:
    clock = Clock()
    model = QueueModel(clock=clock)
    add(model, 5)
    assert text(model, 0, Column.STATE) == "queued"
    model.on_job_started(JobStarted(5))
    model.on_job_progress(JobProgress(5, "local", 4, 20))
    clock.now += 12.0
    assert text(model, 0, Column.STATE) == "running"
    assert text(model, 0, Column.PROGRESS) == "4/20"
    assert model.index(0, Column.PROGRESS).data(FRACTION_ROLE) == 0.2
    assert text(model, 0, Column.PROVIDER) == "local"
    assert text(model, 0, Column.ELAPSED) == "12 s"
    model.on_job_finished(JobFinished(5, JobState.SUCCEEDED, "local", (1,)))
    clock.now += 100.0  # a finished job's elapsed time stops
    assert text(model, 0, Column.STATE) == "succeeded"
    assert text(model, 0, Column.ELAPSED) == "12 s"
    assert model.index(0, Column.PROGRESS).data(FRACTION_ROLE) == 1.0


def test_progress_events_change_only_the_progress_and_provider_cells(qtbot: object) -> None:
    model = QueueModel()
    add(model, 1)
    changes: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda a, b, _r=(): changes.append((a.column(), b.column())))
    model.on_job_progress(JobProgress(1, "local", 1, 5))
    assert changes == [(Column.PROGRESS, Column.PROVIDER)]


def test_the_badge_shows_why_a_job_was_rerouted_and_what_was_adapted() -> None:
    model = QueueModel()
    add(model, 1)
    model.on_job_started(JobStarted(1))
    model.on_job_attempted(JobAttempted(1, Attempt("local", Outcome.FAILED, "OutOfMemory",
                                                   "CUDA out of memory")))
    model.on_job_routed(JobRouted(1, "openai", "local CUDA out of memory"))
    model.on_job_attempted(JobAttempted(1, Attempt(
        "openai", Outcome.SUCCEEDED, duration_s=3.0, adaptations=("size 512x512 -> 1024x1024",),
        cost_usd=0.042)))
    model.on_job_finished(JobFinished(1, JobState.SUCCEEDED, "openai", (3,)))
    badge = text(model, 0, Column.PROVIDER)
    assert badge.startswith("routed to openai: local CUDA out of memory")
    assert "adapted: size 512x512 -> 1024x1024" in badge
    assert text(model, 0, Column.COST) == "$0.042"
    details = model.row(0).details()
    assert "local: OutOfMemory — CUDA out of memory" in details
    assert "openai: succeeded in 3.0 s" in details


def test_failed_job_keeps_its_error_for_the_details_dialog() -> None:
    model = QueueModel()
    add(model, 9)
    model.on_job_started(JobStarted(9))
    model.on_job_finished(JobFinished(9, JobState.FAILED, None, (), "Misconfigured",
                                      "No OpenAI API key: add one in Settings"))
    assert text(model, 0, Column.STATE) == "failed"
    assert "Misconfigured: No OpenAI API key" in model.row(0).details()
    tooltip = model.index(0, Column.STATE).data(Qt.ItemDataRole.ToolTipRole)
    assert "No OpenAI API key" in tooltip


def test_reload_keeps_live_step_counts_of_running_jobs_and_the_store_order() -> None:
    model = QueueModel()
    add(model, 1)
    add(model, 2)
    model.on_job_started(JobStarted(1))
    model.on_job_progress(JobProgress(1, "local", 7, 10))
    running = Job(1, GenerationRequest("a red fox"), state=JobState.RUNNING, started_at=1.0)
    model.load([Job(2, GenerationRequest("a red fox")), running])
    assert [model.row(i).id for i in range(2)] == [2, 1]
    assert text(model, 1, Column.PROGRESS) == "7/10"


def test_events_for_unknown_jobs_are_ignored() -> None:
    model = QueueModel()
    model.on_job_progress(JobProgress(42, "local", 1, 2))
    model.on_job_finished(JobFinished(42, JobState.FAILED, None))
    assert model.rowCount() == 0


def test_a_job_sent_through_the_local_api_is_marked_as_such() -> None:
    model = QueueModel()
    model.on_job_added(JobAdded(1, GenerationRequest("from a script", origin="api")))
    model.on_job_added(JobAdded(2, GenerationRequest("typed in the window", origin="window")))
    texts = [model.data(model.index(row, Column.PROMPT)) for row in (0, 1)]
    assert texts == ["API · from a script", "typed in the window"]
    tip = model.data(model.index(0, Column.PROMPT), Qt.ItemDataRole.ToolTipRole)
    assert "local API" in tip
