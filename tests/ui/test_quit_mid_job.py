"""Quitting while the local GPU worker generates (issue 12.11): the window closes at
once, the job goes back to the queue, and the worker process is gone. The real
window, the real engine and the built-in tiny model on CPU; the quit time itself
is measured in bench/bench_quit.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psutil
import pytest
import qasync
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop_app.domain.request import GenerationRequest, RouteMode, RoutingPolicy
from desktop_app.ui.main_window import CloseMode
from tests.ui.conftest import drive
from tests.ui.test_app_flow import start_window

pytestmark = pytest.mark.slow


def job_state(home: Path, job_id: int) -> str:
    with sqlite3.connect(home / "data" / "imagedesk.sqlite3", timeout=5) as conn:
        return str(conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()[0])


def test_quit_mid_job_closes_the_window_at_once_requeues_the_job_and_stops_the_worker(
        qapp: QApplication, qtbot: QtBot, loop: qasync.QEventLoop, tmp_path: Path) -> None:
    ctx, window = start_window(qapp, tmp_path)
    local = next(s.provider for s in ctx.engine.slots if s.name == "local")
    job = drive(qtbot, ctx.engine.submit(GenerationRequest(
        prompt="a slow lighthouse", width=256, height=256, steps=150, n=2,
        policy=RoutingPolicy(mode=RouteMode.LOCAL_ONLY))))
    qtbot.waitUntil(lambda: local.worker_pid is not None  # type: ignore[attr-defined]
                    and job.id in ctx.engine.running_job_ids, timeout=120_000)
    worker = psutil.Process(local.worker_pid)  # type: ignore[attr-defined]
    window.ask_close_mode = lambda: CloseMode.QUIT  # type: ignore[method-assign]  # "Quit now"

    with qtbot.waitSignal(window.shutdown_finished, timeout=30_000):
        window.close()
        assert not window.isVisible()  # at once, before the worker has stopped

    assert job_state(tmp_path, job.id) == "queued"  # nothing lost: it runs on next start
    assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE
