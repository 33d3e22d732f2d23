from __future__ import annotations

from pathlib import Path

import pytest
import qasync
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from desktop_app.ui.main_window import CloseMode, MainWindow
from tests.ui.fake_engine import FakeEngine


def make_window(qtbot: QtBot, tmp_path: Path, engine: FakeEngine) -> MainWindow:
    settings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    window = MainWindow(engine, settings)  # type: ignore[arg-type]
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_layout_is_remembered_between_runs(
        qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop) -> None:
    # (the offscreen screen is 800x600, so widths are clamped: the vertical split is checked)
    engine = FakeEngine()
    window = make_window(qtbot, tmp_path, engine)
    window.resize(1250, 760)
    qtbot.wait(50)
    window.right_split.setSizes([420, 250])
    window.metrics_dock.hide()
    qtbot.wait(50)
    sizes = window.right_split.sizes()
    assert sizes[0] > sizes[1]  # the queue made taller than by default
    window.close()
    qtbot.waitUntil(lambda: ("close", False) in engine.calls)
    again = make_window(qtbot, tmp_path, FakeEngine())
    assert again.height() == 760
    assert again.right_split.sizes() == sizes
    assert not again.metrics_dock.isVisible()


@pytest.mark.parametrize(("choice", "expected"), [
    (CloseMode.FINISH, [("close", True)]),
    (CloseMode.PAUSE, [("pause", None), ("close", False)]),
    (CloseMode.QUIT, [("close", False)]),
])
def test_closing_while_jobs_run_does_what_the_user_chose(
        qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop, choice: CloseMode,
        expected: list[tuple[str, object]]) -> None:
    engine = FakeEngine()
    engine.running_job_ids = [3]
    window = make_window(qtbot, tmp_path, engine)
    window.ask_close_mode = lambda: choice  # type: ignore[method-assign]
    with qtbot.waitSignal(window.shutdown_finished, timeout=5_000):
        window.close()
    assert [c for c in engine.calls if c[0] in ("pause", "close")] == expected
    assert not window.isVisible()


def test_cancelling_the_close_prompt_keeps_the_window_and_the_engine(
        qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop) -> None:
    engine = FakeEngine()
    engine.running_job_ids = [3]
    window = make_window(qtbot, tmp_path, engine)
    window.ask_close_mode = lambda: None  # type: ignore[method-assign]
    window.close()
    qtbot.wait(100)
    assert window.isVisible()
    assert not [c for c in engine.calls if c[0] == "close"]


def test_pause_shortcut_pauses_the_queue_and_the_button_follows_the_engine(
        qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop) -> None:
    engine = FakeEngine()
    window = make_window(qtbot, tmp_path, engine)
    window.pause_action.trigger()
    qtbot.waitUntil(lambda: ("pause", None) in engine.calls)
    assert window.pause_action.isChecked()
    window.pause_action.trigger()
    qtbot.waitUntil(lambda: ("resume", None) in engine.calls)
    qtbot.waitUntil(lambda: not window.pause_action.isChecked())


def test_gallery_search_is_passed_to_the_engine_with_filters(
        qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop) -> None:
    engine = FakeEngine()
    window = make_window(qtbot, tmp_path, engine)
    window.gallery.favourites.setChecked(True)
    qtbot.keyClicks(window.gallery.search, "fox")
    qtbot.waitUntil(lambda: ("search_images", ("fox", {"favourite": True, "limit": 100_000}))
                    in engine.calls)
