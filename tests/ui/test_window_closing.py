"""A closed window stops refreshing: its timers stop when the user quits, not when
the widget is finally deleted (which, for a window left behind, may come after
its event loop is gone: a status refresh then failed with "no current event loop"
in whichever test ran next)."""

from __future__ import annotations

from pathlib import Path

import qasync
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from desktop_app.engine.events import ProviderStateChanged
from desktop_app.ui.main_window import MainWindow
from tests.ui.fake_engine import FakeEngine


def status_fetches(engine: FakeEngine) -> int:
    return sum(1 for name, _ in engine.calls if name == "provider_statuses")


def test_a_status_refresh_pending_at_close_never_runs(
        qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop) -> None:
    engine = FakeEngine()
    window = MainWindow(engine, QSettings(str(tmp_path / "w.ini"),  # type: ignore[arg-type]
                                          QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    engine.hub.emit(ProviderStateChanged("openai", "open", "429"))  # a refresh is now due
    window.close()
    qtbot.waitUntil(lambda: ("close", False) in engine.calls)
    before = status_fetches(engine)
    engine.hub.emit(ProviderStateChanged("openai", "closed", ""))
    qtbot.wait(1_300)  # past the debounce and a tick of the countdown timer
    assert status_fetches(engine) == before == 0
    assert not window.providers._ticker.isActive()
    assert not window.queue._ticker.isActive()


def test_a_window_left_open_after_its_loop_closed_stays_quiet(
        qtbot: QtBot, tmp_path: Path) -> None:
    # the order-dependent failure: a window closed while its loop still ran, whose
    # widget lives on into the next test, which has no event loop at all
    from PySide6.QtWidgets import QApplication

    from tests.ui.qt_loop import qasync_loop

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    engine = FakeEngine()
    with qasync_loop(app):
        window = MainWindow(engine, QSettings(str(tmp_path / "w.ini"),  # type: ignore[arg-type]
                                              QSettings.Format.IniFormat))
        window.show()
        engine.hub.emit(ProviderStateChanged("local", "open", "crash"))
        window.close()
        qtbot.waitUntil(lambda: ("close", False) in engine.calls)
    engine.hub.emit(ProviderStateChanged("local", "closed", ""))
    with qtbot.captureExceptions() as errors:
        qtbot.wait(1_300)
    assert errors == []
    assert status_fetches(engine) == 0
    window.deleteLater()
