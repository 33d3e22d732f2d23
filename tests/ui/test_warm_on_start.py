"""The "warm on start" setting (issue 11.3): through the real startup path
(``ui.app._run``), offscreen, on the built-in tiny model. On: the GPU worker is up
and the model loaded before any job, and the status bar says so. Off: no worker."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import qasync
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop_app.paths import AppPaths
from desktop_app.ui import app
from desktop_app.ui.startup import StartingWindow
from tests.ui.conftest import drive

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("warm", [True, False])
def test_warm_on_start_loads_the_model_when_the_window_opens_and_off_starts_nothing(
        qapp: QApplication, qtbot: QtBot, loop: qasync.QEventLoop, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, warm: bool) -> None:
    for name, value in {"IMAGEDESK_HOME": str(tmp_path), "IMAGEDESK_LOCAL__MODEL": "builtin:tiny",
                        "IMAGEDESK_LOCAL__DEVICE": "cpu",
                        "IMAGEDESK_LOCAL__WARM_ON_START": str(warm).lower()}.items():
        monkeypatch.setenv(name, value)
    window = StartingWindow(None, app.window_settings(AppPaths.discover(os.environ).ensure()))
    window.show()
    ready: list[bool] = []  # the warm-up is started, or not, in the step that says ready
    window.ready.connect(lambda: ready.append(True))
    running = asyncio.ensure_future(app._run(window))
    try:
        qtbot.waitUntil(lambda: ready == [True], timeout=60_000)
        local = next(s.provider for s in window.engine.slots if s.name == "local")
        if warm:
            qtbot.waitUntil(lambda: "Local model ready" in window.statusBar().currentMessage(),
                            timeout=180_000)
            health = drive(qtbot, local.health())
            assert health.details["model_loaded"] == "yes"  # before any job
            assert local.worker_pid is not None  # type: ignore[attr-defined]
        else:
            assert local.worker_pid is None  # type: ignore[attr-defined]
            assert "Local model" not in window.statusBar().currentMessage()
    finally:
        window.close()
        qtbot.waitUntil(running.done, timeout=30_000)
