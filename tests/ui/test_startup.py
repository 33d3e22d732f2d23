"""Start-up keeps the window live (issue 17.9): the engine is built off the GUI
thread, keys typed meanwhile land at once and in order, a Generate pressed
before the engine is attached is submitted exactly once when it attaches, and
the controls that need the engine (Pause, the gallery, Settings…) wait for it.

The real start-up coroutine (``ui.app._run``), the real engine on a real profile
(its queue paused beforehand, so a submitted job stays visibly queued); the only
addition is a gate in front of ``open_app`` that holds the build in its worker
thread until the test has typed and pressed.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import qasync
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from desktop_app.bootstrap import AppContext
from desktop_app.domain.job import Job, JobState
from desktop_app.paths import AppPaths
from desktop_app.store.database import open_database
from desktop_app.store.jobs import JobQueue
from desktop_app.ui import app, tasks
from desktop_app.ui.startup import (
    BUILD_SWITCH_S,
    WAITING_MESSAGE,
    StartingWindow,
    open_context,
)

PROMPT = "a lighthouse on a cliff"


class GatedOpener:
    """``open_context`` behind a gate the test opens; records where it ran."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.gate = threading.Event()
        self.thread: threading.Thread | None = None
        self.collecting_during_build: bool | None = None
        self.switch_during_build: float | None = None

    def __call__(self, env: Mapping[str, str]) -> AppContext:
        self.thread = threading.current_thread()
        self.collecting_during_build = gc.isenabled()
        self.switch_during_build = sys.getswitchinterval()
        self.started.set()
        # bounded: were the build on the GUI thread, the test fails instead of hanging
        self.gate.wait(10)
        return open_context(env)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {"IMAGEDESK_HOME": str(tmp_path / "home"),
                   "IMAGEDESK_LOCAL__MODEL": "builtin:tiny", "IMAGEDESK_LOCAL__DEVICE": "cpu"}
    conn = open_database(AppPaths.discover(environment).ensure().db_path)
    JobQueue(conn).set_paused(True)  # a job submitted at start-up stays queued, in sight
    conn.close()
    return environment


@pytest.fixture
def starting(qtbot: QtBot, loop: qasync.QEventLoop, env: dict[str, str],
             tmp_path: Path) -> Iterator[tuple[StartingWindow, GatedOpener, asyncio.Task[None]]]:
    window = StartingWindow(None, QSettings(str(tmp_path / "window.ini"),
                                            QSettings.Format.IniFormat))
    window.show()
    opener = GatedOpener()
    run = asyncio.ensure_future(app._run(window, env, opener))
    qtbot.waitUntil(opener.started.is_set, timeout=10_000)
    yield window, opener, run
    opener.gate.set()
    if window.isVisible():
        window.close()  # the real shutdown: engine closed, then shutdown_finished
    qtbot.waitUntil(run.done, timeout=20_000)
    run.result()
    window.deleteLater()


def stored_jobs(env: Mapping[str, str]) -> list[Job]:
    conn = open_database(AppPaths.discover(env).db_path)
    try:
        return JobQueue(conn).jobs()
    finally:
        conn.close()


def test_the_engine_is_built_off_the_gui_thread_and_the_interpreter_restored(
        qtbot: QtBot, starting: tuple[StartingWindow, GatedOpener, asyncio.Task[None]]) -> None:
    window, opener, _run = starting
    assert opener.thread is not threading.main_thread()
    assert opener.collecting_during_build is False
    assert opener.switch_during_build == BUILD_SWITCH_S
    assert window.engine is None
    with qtbot.waitSignal(window.ready, timeout=20_000):
        opener.gate.set()
    assert window.engine is not None
    assert gc.isenabled()  # collection is back on once the build is done
    assert sys.getswitchinterval() == 0.005  # Python's default, back after the build


def test_keys_typed_while_starting_land_at_once_and_in_order(
        qtbot: QtBot, starting: tuple[StartingWindow, GatedOpener, asyncio.Task[None]]) -> None:
    window, opener, _run = starting
    prompt = window.editor.prompt
    prompt.setFocus()
    for char in PROMPT:
        QTest.keyClicks(prompt, char)
        qtbot.wait(5)  # the event loop turns between keys, as with a real typist
    # every key is in the box while the engine is still being built
    assert window.engine is None
    assert prompt.toPlainText() == PROMPT
    with qtbot.waitSignal(window.ready, timeout=20_000):
        opener.gate.set()
    assert prompt.toPlainText() == PROMPT


def press_generate(window: StartingWindow, how: str, qtbot: QtBot) -> None:
    if how == "button":
        assert window.editor.generate_button.isEnabled()  # live from the first frame
        qtbot.mouseClick(window.editor.generate_button, Qt.MouseButton.LeftButton)
    else:
        QTest.keyClick(window.editor.prompt, Qt.Key.Key_Return,
                       Qt.KeyboardModifier.ControlModifier)


@pytest.mark.parametrize("how", ["button", "ctrl+enter"])
def test_generate_pressed_before_the_engine_is_submitted_once_it_attaches(
        qtbot: QtBot, env: dict[str, str], how: str,
        starting: tuple[StartingWindow, GatedOpener, asyncio.Task[None]]) -> None:
    window, opener, _run = starting
    window.editor.prompt.setPlainText(PROMPT)
    press_generate(window, how, qtbot)
    qtbot.waitUntil(lambda: window.waiting_requests == 1, timeout=5_000)
    assert window.engine is None
    assert window.statusBar().currentMessage() == WAITING_MESSAGE
    with qtbot.waitSignal(window.ready, timeout=20_000):
        opener.gate.set()
    model = window.queue.model
    # each press is one task: with none pending, no second submission can come
    qtbot.waitUntil(lambda: model.rowCount() == 1 and tasks.pending() == 0, timeout=10_000)
    assert window.waiting_requests == 0
    assert model.rowCount() == 1
    assert model.row(0).prompt == PROMPT
    assert window.editor.status.text() == "Queued."
    [job] = stored_jobs(env)
    assert job.request.prompt == PROMPT
    assert job.state is JobState.QUEUED


def test_closing_while_starting_still_stores_the_generate_pressed(
        qtbot: QtBot, env: dict[str, str],
        starting: tuple[StartingWindow, GatedOpener, asyncio.Task[None]]) -> None:
    window, opener, run = starting
    window.editor.prompt.setPlainText(PROMPT)
    press_generate(window, "ctrl+enter", qtbot)
    qtbot.waitUntil(lambda: window.waiting_requests == 1, timeout=5_000)
    window.close()  # before the engine exists: the window goes at once
    assert not window.isVisible()
    opener.gate.set()
    qtbot.waitUntil(run.done, timeout=20_000)
    run.result()
    [job] = stored_jobs(env)  # kept for the next start, not lost
    assert job.request.prompt == PROMPT
    assert job.state is JobState.QUEUED


def test_controls_that_need_the_engine_wait_for_it(
        qtbot: QtBot, starting: tuple[StartingWindow, GatedOpener, asyncio.Task[None]]) -> None:
    window, opener, _run = starting
    waiting: list[QWidget | QAction] = [
        window.queue, window.gallery, window.providers, window.pause_action,
        window.queue.clear_action, window.import_action, window.settings_action]
    assert not any(part.isEnabled() for part in waiting)
    window.pause_action.trigger()  # Ctrl+P or the toolbar: ignored, not an error
    QTest.keyClicks(window.gallery.search, "cat")  # greyed: no search is started
    assert window.gallery.search.text() == ""
    assert not window.pause_action.isChecked()
    assert window.statusBar().currentMessage() == "Starting…"  # no error shown
    with qtbot.waitSignal(window.ready, timeout=20_000):
        opener.gate.set()
    assert all(part.isEnabled() for part in waiting)
    assert window.editor.generate_button.isEnabled()
