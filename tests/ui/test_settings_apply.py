"""Saving the settings dialog in the running app: the file is written, the changed
provider is rebuilt (its forced-open breaker gone), and the window follows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import qasync
from pytestqt.qtbot import QtBot

from desktop_app.bootstrap import open_app
from desktop_app.config import load_settings
from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest
from desktop_app.resilience.breaker import BreakerState
from desktop_app.ui.app import build_window
from desktop_app.ui.main_window import CloseMode, MainWindow
from desktop_app.ui.settings_dialog import SettingsDialog
from desktop_app.ui.settings_pages import LocalPage
from tests.fakes.keyring_memory import InMemoryKeyring
from tests.fakes.scripted_provider import ScriptedProvider
from tests.ui.conftest import EngineMaker, drive


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
        qtbot: QtBot, tmp_path: Path, scripted_engines: EngineMaker) -> None:
    from PySide6.QtCore import QSettings

    gates = [asyncio.Event(), asyncio.Event()]  # each job's image is done when its gate opens
    local = ScriptedProvider("local", script=list(gates))
    engine = scripted_engines(local)
    window = MainWindow(engine, QSettings(str(tmp_path / "w.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    assert not window.isActiveWindow()  # offscreen, never activated: "in the background"
    drive(qtbot, engine.start())
    for gate, ran_s in zip(gates, (2.0, 30.0), strict=True):
        job = drive(qtbot, engine.submit(GenerationRequest(f"ran {ran_s:g} s", width=64,
                                                           height=64)))
        qtbot.waitUntil(lambda: engine.running_job_ids == [job.id])  # noqa: B023
        row = window.queue.model.job_row(job.id)
        assert row is not None and row.started_at is not None
        row.started_at -= ran_s  # as if it had been running that long
        gate.set()
        qtbot.waitUntil(lambda: (r := window.queue.model.job_row(job.id)) is not None  # noqa: B023
                        and r.state is JobState.SUCCEEDED, timeout=10_000)
    assert window.notifications == [("Image ready", "ran 30 s")]  # the short one stays quiet
    window.ask_close_mode = lambda: CloseMode.QUIT  # type: ignore[method-assign]
    with qtbot.waitSignal(window.shutdown_finished, timeout=10_000):
        window.close()
