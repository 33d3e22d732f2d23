"""What the queue view shows of a job waiting for a rate limit, and of a job held
because ImageDesk stopped during a paid call (which the user may retry there)."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest, RouteMode, RoutingPolicy
from desktop_app.engine.events import EventHub, JobAdded, JobProgress, JobStarted, JobWaiting
from desktop_app.paths import AppPaths
from desktop_app.store.database import open_database
from desktop_app.store.jobs import JobQueue
from desktop_app.ui.qt_events import EngineSignals
from desktop_app.ui.queue_model import Column, QueueModel
from tests.fakes.fake_openai import FakeOpenAI
from tests.ui.conftest import drive
from tests.ui.window_support import Windows

KEY = "sk-test" + "W41t" * 10
CLOUD_ONLY = RoutingPolicy(mode=RouteMode.CLOUD_ONLY)


def progress_text(model: QueueModel, row: int) -> str:
    return str(model.index(row, Column.PROGRESS).data())


def test_a_job_waiting_for_the_rate_limit_says_so_in_the_queue(
        qtbot: QtBot, tmp_path: Path, windows: Windows) -> None:
    with FakeOpenAI(api_key=KEY) as server:
        ctx, window = windows.open(
            tmp_path, {"openai": {"rate_limits": [{"limit": 1, "period_s": 60}]}},
            OPENAI_API_KEY=KEY, IMAGEDESK_OPENAI__BASE_URL=server.base_url)
        drive(qtbot, ctx.engine.start())
        editor = window.editor
        editor.mode.setCurrentIndex(editor.mode.findData(RouteMode.CLOUD_ONLY))
        editor.width_box.setValue(1024)
        editor.height_box.setValue(1024)
        model = window.queue.model
        for prompt in ("the first of two", "the second of two"):
            editor.prompt.setPlainText(prompt)
            qtbot.mouseClick(editor.generate_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: any(model.row(r).prompt == prompt  # noqa: B023
                                        for r in range(model.rowCount())), timeout=5_000)
        waiting = re.compile(r"waiting for openai's rate limit, (\d+) s")

        def shown() -> re.Match[str] | None:
            return next((m for r in range(model.rowCount())
                         if (m := waiting.fullmatch(progress_text(model, r)))), None)
        qtbot.waitUntil(lambda: shown() is not None, timeout=20_000)
        match = shown()
        assert match is not None and 50 <= int(match.group(1)) <= 60
        qtbot.waitUntil(lambda: any(model.row(r).state is JobState.SUCCEEDED
                                    for r in range(model.rowCount())), timeout=20_000)
        assert len(server.image_requests()) == 1  # the other one is waiting, not failing
        assert shown() is not None


def test_the_wait_counts_down_and_goes_when_the_job_moves_on(qtbot: QtBot) -> None:
    now = [1000.0]
    hub = EventHub()  # the engine's events, as the window receives them
    model = QueueModel(clock=lambda: now[0])
    signals = EngineSignals(hub)
    signals.job_added.connect(model.on_job_added)
    signals.job_started.connect(model.on_job_started)
    signals.job_waiting.connect(model.on_job_waiting)
    signals.job_progress.connect(model.on_job_progress)
    hub.emit(JobAdded(7, GenerationRequest("a slow one", policy=CLOUD_ONLY)))
    hub.emit(JobStarted(7))
    hub.emit(JobWaiting(7, "openai", 28.0, "rate limit"))
    assert progress_text(model, 0) == "waiting for openai's rate limit, 28 s"
    now[0] += 10
    model.tick()
    assert progress_text(model, 0) == "waiting for openai's rate limit, 18 s"
    hub.emit(JobProgress(7, "openai", 0, 0, "calling openai"))
    assert progress_text(model, 0) == "calling openai"
    hub.emit(JobWaiting(7, "openai", 5.0, "rate limit"))
    now[0] += 6
    assert progress_text(model, 0) != "waiting for openai's rate limit, 0 s"
    assert "waiting" not in progress_text(model, 0)


def test_a_job_held_after_a_paid_call_shows_why_and_can_be_retried_from_the_queue(
        qtbot: QtBot, tmp_path: Path, windows: Windows) -> None:
    paths = AppPaths.discover({"IMAGEDESK_HOME": str(tmp_path)}).ensure()
    conn = open_database(paths.db_path)
    queue = JobQueue(conn)
    job = queue.add(GenerationRequest("a picture already paid for", policy=CLOUD_ONLY))
    queue.start(job.id)
    queue.paid_call_started(job.id, "openai")  # ... and ImageDesk stopped here
    queue.set_paused(True)  # so that the retried job stays in the queue to be seen
    conn.close()

    ctx, window = windows.open(tmp_path)
    drive(qtbot, ctx.engine.start())  # recovery holds the job
    window.load()
    model = window.queue.model
    qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=5_000)
    assert model.index(0, Column.STATE).data() == "held"
    reason = progress_text(model, 0)
    assert reason.startswith("ImageDesk stopped during a paid call to openai")
    assert "Retry it" in reason
    assert model.index(0, Column.PROGRESS).data(Qt.ItemDataRole.ToolTipRole) == reason

    window.queue.select_job(job.id)
    assert window.queue.retry_action.isEnabled()
    window.queue.retry_action.trigger()
    qtbot.waitUntil(lambda: model.rowCount() == 1 and model.row(0).state is JobState.QUEUED,
                    timeout=5_000)
    assert model.index(0, Column.STATE).data() == "queued"
    again = drive(qtbot, ctx.engine.job(job.id))
    assert again is not None and again.state is JobState.QUEUED
