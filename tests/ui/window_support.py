"""A real window on a real engine for a profile in a temporary folder, built the way
the app builds it (``build_window``: settings dialog, settings applied live)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop_app.bootstrap import AppContext, open_app
from desktop_app.paths import AppPaths
from desktop_app.ui.app import build_window
from desktop_app.ui.main_window import CloseMode, MainWindow
from desktop_app.ui.settings_dialog import SettingsDialog
from desktop_app.ui.theme import apply_theme
from tests.ui.conftest import drive


def write_settings(home: Path, data: dict[str, Any]) -> Path:
    path = AppPaths.discover({"IMAGEDESK_HOME": str(home)}).ensure().settings_path
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


class Windows:
    """Opens windows for a test and closes their engines (and the theme) after it."""

    def __init__(self, qtbot: QtBot) -> None:
        self.qtbot = qtbot
        self.opened: list[tuple[AppContext, MainWindow]] = []

    def open(self, home: Path, settings: dict[str, Any] | None = None,
             **env: str) -> tuple[AppContext, MainWindow]:
        if settings is not None:
            write_settings(home, settings)
        ctx = open_app({"IMAGEDESK_HOME": str(home), **env})
        window = build_window(ctx)
        self.opened.append((ctx, window))
        return ctx, window

    def settings_dialog(self, window: MainWindow) -> SettingsDialog:
        window.settings_action.trigger()
        dialogs = [d for d in window.findChildren(SettingsDialog) if d.isVisible()]
        assert len(dialogs) == 1
        return dialogs[0]

    def close(self) -> None:
        """Quit each window as a user would (which closes its engine), then delete it."""
        for ctx, window in self.opened:
            if not window._shut_down:
                window.ask_close_mode = lambda: CloseMode.QUIT  # type: ignore[method-assign]
                with self.qtbot.waitSignal(window.shutdown_finished, timeout=10_000):
                    window.close()
            drive(self.qtbot, ctx.engine.close())
            # deleted here, on the GUI thread: left to Python's cycle collector (the
            # settings closures hold the window), it could die in a store thread
            # ("Timers cannot be stopped from another thread")
            window.deleteLater()
            QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        apply_theme("system")
