"""A closed window stops refreshing: its timers stop when the user quits, not when
the widget is finally deleted (which, for a window left behind, may come after
its event loop is gone: a status refresh then failed with "no current event loop"
in whichever test ran next)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from desktop_app.engine.engine import Engine, ProviderStatus
from desktop_app.engine.events import ProviderStateChanged
from desktop_app.ui.main_window import MainWindow
from tests.fakes.scripted_engine import scripted_engine
from tests.fakes.scripted_provider import ScriptedProvider
from tests.ui.conftest import EngineMaker


def count_status_fetches(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """One entry per time the window asks the (real) engine for the provider lights."""
    fetches: list[None] = []
    fetch = engine.provider_statuses

    async def counted() -> list[ProviderStatus]:
        fetches.append(None)
        return await fetch()
    monkeypatch.setattr(engine, "provider_statuses", counted)
    return fetches


def test_a_status_refresh_pending_at_close_never_runs(
        qtbot: QtBot, tmp_path: Path, scripted_engines: EngineMaker,
        monkeypatch: pytest.MonkeyPatch) -> None:
    engine = scripted_engines()
    fetches = count_status_fetches(engine, monkeypatch)
    window = MainWindow(engine, QSettings(str(tmp_path / "w.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    engine.hub.emit(ProviderStateChanged("local", "open", "crash"))  # a refresh is now due
    with qtbot.waitSignal(window.shutdown_finished, timeout=10_000):
        window.close()
    engine.hub.emit(ProviderStateChanged("local", "closed", ""))
    qtbot.wait(1_300)  # past the debounce and a tick of the countdown timer
    assert fetches == []
    assert not window.providers._ticker.isActive()
    assert not window.queue._ticker.isActive()


def test_a_window_left_open_after_its_loop_closed_stays_quiet(
        qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the order-dependent failure: a window closed while its loop still ran, whose
    # widget lives on into the next test, which has no event loop at all
    from PySide6.QtWidgets import QApplication

    from tests.ui.qt_loop import qasync_loop

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    engine = scripted_engine(tmp_path / "profile", ScriptedProvider("local"))
    fetches = count_status_fetches(engine, monkeypatch)
    with qasync_loop(app):
        window = MainWindow(engine, QSettings(str(tmp_path / "w.ini"),
                                              QSettings.Format.IniFormat))
        window.show()
        engine.hub.emit(ProviderStateChanged("local", "open", "crash"))
        with qtbot.waitSignal(window.shutdown_finished, timeout=10_000):
            window.close()  # which closes the engine too
    engine.hub.emit(ProviderStateChanged("local", "closed", ""))
    with qtbot.captureExceptions() as errors:
        qtbot.wait(1_300)
    assert errors == []
    assert fetches == []
    window.deleteLater()
