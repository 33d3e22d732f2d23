"""The main window on a real engine (temporary profile, scripted providers): its
layout is remembered, closing does what the user chose with running jobs, the pause
shortcut reaches the queue, and the gallery's search reaches the engine."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from desktop_app.domain.job import Job, JobState
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.engine import Engine
from desktop_app.engine.events import Event, QueueChanged
from desktop_app.ui.main_window import CloseMode, MainWindow
from tests.fakes.scripted_provider import ScriptedProvider
from tests.ui.conftest import EngineMaker, drive

REQ = GenerationRequest("a lighthouse at dusk", width=64, height=64, steps=2)


def make_window(qtbot: QtBot, tmp_path: Path, engine: Engine) -> MainWindow:
    settings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    window = MainWindow(engine, settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def quit_window(qtbot: QtBot, window: MainWindow) -> None:
    window.ask_close_mode = lambda: CloseMode.QUIT  # type: ignore[method-assign]
    with qtbot.waitSignal(window.shutdown_finished, timeout=10_000):
        window.close()


def start_a_running_job(qtbot: QtBot, engine: Engine, local: ScriptedProvider) -> Job:
    """Start the engine and return a job that its provider is now working on."""
    drive(qtbot, engine.start())
    job = drive(qtbot, engine.submit(REQ))
    qtbot.waitUntil(lambda: bool(local.calls) and engine.running_job_ids == [job.id],
                    timeout=10_000)
    return job


def test_layout_is_remembered_between_runs(
        qtbot: QtBot, tmp_path: Path, scripted_engines: EngineMaker) -> None:
    # (the offscreen screen is 800x600, so widths are clamped: the vertical split is checked)
    window = make_window(qtbot, tmp_path, scripted_engines())
    window.resize(1250, 760)
    qtbot.wait(50)
    window.right_split.setSizes([420, 250])
    window.metrics_dock.hide()
    qtbot.wait(50)
    sizes = window.right_split.sizes()
    assert sizes[0] > sizes[1]  # the queue made taller than by default
    quit_window(qtbot, window)
    again = make_window(qtbot, tmp_path, scripted_engines())
    assert again.height() == 760
    assert again.right_split.sizes() == sizes
    assert not again.metrics_dock.isVisible()
    quit_window(qtbot, again)


@pytest.mark.parametrize(("choice", "state", "paused"), [
    (CloseMode.FINISH, JobState.SUCCEEDED, False),
    (CloseMode.PAUSE, JobState.QUEUED, True),
    (CloseMode.QUIT, JobState.QUEUED, False),
])
def test_closing_while_a_job_runs_does_what_the_user_chose(
        qtbot: QtBot, tmp_path: Path, scripted_engines: EngineMaker, choice: CloseMode,
        state: JobState, paused: bool) -> None:
    work_done = asyncio.Event()  # the provider finishes its image when this is set
    local = ScriptedProvider("local", script=[work_done])
    engine = scripted_engines(local)
    job = start_a_running_job(qtbot, engine, local)
    window = make_window(qtbot, tmp_path, engine)
    window.ask_close_mode = lambda: choice  # type: ignore[method-assign]
    finished: list[bool] = []
    window.shutdown_finished.connect(lambda: finished.append(True))
    window.close()
    assert not window.isVisible()  # hidden at once, whatever the choice
    if choice is CloseMode.FINISH:
        assert finished == []  # still waiting for the image
        work_done.set()
    qtbot.waitUntil(lambda: finished == [True], timeout=10_000)
    # what the next start finds
    again = scripted_engines(ScriptedProvider("local"), folder=tmp_path / "engine-0")
    after = drive(qtbot, again.job(job.id))
    assert after is not None and after.state is state
    assert len(after.image_ids) == (1 if state is JobState.SUCCEEDED else 0)
    assert drive(qtbot, again.paused()) is paused


def test_cancelling_the_close_prompt_keeps_the_window_and_the_running_job(
        qtbot: QtBot, tmp_path: Path, scripted_engines: EngineMaker) -> None:
    local = ScriptedProvider("local", script=["hang"])
    engine = scripted_engines(local)
    job = start_a_running_job(qtbot, engine, local)
    window = make_window(qtbot, tmp_path, engine)
    window.ask_close_mode = lambda: None  # type: ignore[method-assign]
    window.close()  # the prompt decides at once: nothing runs in the background
    assert window.isVisible()
    assert engine.running_job_ids == [job.id]
    still = drive(qtbot, engine.job(job.id))
    assert still is not None and still.state is JobState.RUNNING
    quit_window(qtbot, window)


def test_pause_shortcut_pauses_the_queue_and_the_button_follows_the_engine(
        qtbot: QtBot, tmp_path: Path, scripted_engines: EngineMaker) -> None:
    engine = scripted_engines()
    announced: list[Event] = []
    engine.hub.subscribe(announced.append)
    window = make_window(qtbot, tmp_path, engine)
    window.pause_action.trigger()
    qtbot.waitUntil(lambda: QueueChanged(paused=True) in announced)
    assert window.pause_action.isChecked()
    assert drive(qtbot, engine.paused()) is True
    window.pause_action.trigger()
    qtbot.waitUntil(lambda: QueueChanged(paused=False) in announced)
    qtbot.waitUntil(lambda: not window.pause_action.isChecked())
    assert drive(qtbot, engine.paused()) is False
    quit_window(qtbot, window)


def test_gallery_search_and_favourites_filter_what_the_engine_finds(
        qtbot: QtBot, tmp_path: Path, scripted_engines: EngineMaker) -> None:
    engine = scripted_engines()
    for prompt in ("a red fox", "a fox at night", "an owl"):
        drive(qtbot, engine.submit(REQ.replace(prompt=prompt)))
    drive(qtbot, engine.run_until_idle())
    images = {r.prompt: r for r in drive(qtbot, engine.search_images(""))}
    for prompt in ("a red fox", "an owl"):
        drive(qtbot, engine.set_favourite(images[prompt].id, True))
    window = make_window(qtbot, tmp_path, engine)
    gallery = window.gallery
    gallery.favourites.setChecked(True)
    qtbot.keyClicks(gallery.search, "fox")
    qtbot.waitUntil(lambda: [r.prompt for r in gallery.model.records()] == ["a red fox"],
                    timeout=10_000)
    gallery.favourites.setChecked(False)
    qtbot.waitUntil(lambda: sorted(r.prompt for r in gallery.model.records())
                    == ["a fox at night", "a red fox"], timeout=10_000)
    quit_window(qtbot, window)
