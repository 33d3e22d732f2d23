"""Saving the settings dialog in the running app: the file is written, the changed
provider is rebuilt (its forced-open breaker gone), and the window follows."""

from __future__ import annotations

from pathlib import Path

import qasync
from pytestqt.qtbot import QtBot

from desktop_app.bootstrap import open_app
from desktop_app.config import load_settings
from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.events import JobAdded, JobFinished, JobStarted
from desktop_app.resilience.breaker import BreakerState
from desktop_app.ui.app import build_window
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.settings_dialog import SettingsDialog
from desktop_app.ui.settings_pages import LocalPage
from tests.fakes.keyring_memory import InMemoryKeyring
from tests.ui.conftest import drive
from tests.ui.fake_engine import FakeEngine


def test_saving_a_fixed_model_rebuilds_local_and_clears_its_forced_open_breaker(
        qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop,
        memory_keyring: InMemoryKeyring) -> None:
    ctx = open_app({"IMAGEDESK_HOME": str(tmp_path),
                    "IMAGEDESK_LOCAL__MODEL": str(tmp_path / "missing.safetensors")})
    window = build_window(ctx)
    qtbot.addWidget(window)
    ctx.engine.slot("local").breaker.force_open("the model file does not exist")
    assert ctx.engine.slot("local").breaker.snapshot().state is BreakerState.FORCED_OPEN
    window.settings_action.trigger()
    [dialog] = window.findChildren(SettingsDialog)
    local = dialog.pages["local"]
    assert isinstance(local, LocalPage)
    local.source.setCurrentIndex(0)  # the built-in test model
    dialog.save()
    qtbot.waitUntil(lambda: ctx.settings.local.model == "builtin:tiny", timeout=5_000)
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == "Settings saved.")
    assert load_settings(ctx.paths.settings_path, env={}).settings.local.model == "builtin:tiny"
    assert ctx.engine.slot("local").breaker.snapshot().state is BreakerState.CLOSED
    drive(qtbot, ctx.engine.close())


def test_a_long_job_finishing_in_the_background_notifies(
        qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop) -> None:
    from PySide6.QtCore import QSettings

    engine = FakeEngine()
    window = MainWindow(engine, QSettings(str(tmp_path / "w.ini"),  # type: ignore[arg-type]
                                          QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    assert not window.isActiveWindow()  # offscreen, never activated: "in the background"
    for job_id, ran_s in ((1, 2.0), (2, 30.0)):
        engine.hub.emit(JobAdded(job_id, GenerationRequest(f"prompt {job_id}")))
        engine.hub.emit(JobStarted(job_id))
        row = window.queue.model.job_row(job_id)
        assert row is not None and row.started_at is not None
        row.started_at -= ran_s
        engine.hub.emit(JobFinished(job_id, JobState.SUCCEEDED, "local", (job_id,)))
    assert window.notifications == [("Image ready", "prompt 2")]  # the short one stays quiet
