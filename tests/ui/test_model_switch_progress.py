"""Switching models is seen (issue 14.3): a job naming another model than the one the
GPU worker holds reloads it, one model at a time, and while it loads the faces say
so — the events, the queue row, the line under Generate and the CLI's progress line
name the model being loaded, before the first step.

The real window, engine and GPU worker on CPU, with two tiny models: the built-in
one and a copy of it written at test time (another folder, so another model).
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop_app.bootstrap import AppContext
from desktop_app.cli.output import ProgressPrinter
from desktop_app.engine.events import Event, JobProgress
from desktop_app.ui.main_window import MainWindow
from tests.ui.qt_loop import qasync_loop
from tests.ui.test_app_flow import newest_state, spin, start_window, stop_window, watch_row

pytestmark = pytest.mark.slow


class Terminal(io.StringIO):
    """What the CLI draws on a terminal (its progress line is drawn only there)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def desk(qapp: QApplication, tmp_path: Path) -> Iterator[tuple[AppContext, MainWindow]]:
    with qasync_loop(qapp):
        ctx, window = start_window(qapp, tmp_path / "home")
        yield ctx, window
        stop_window(qapp, ctx, window)


def generate(qtbot: QtBot, window: MainWindow, prompt: str) -> None:
    editor = window.editor
    editor.prompt.setPlainText(prompt)
    editor.width_box.setValue(64)
    editor.height_box.setValue(64)
    editor.steps.setValue(2)
    editor.generate()
    qtbot.waitUntil(lambda: newest_state(window) in ("succeeded", "failed")
                    and window.queue.model.row(window.queue.model.rowCount() - 1).prompt
                    == prompt, timeout=180_000)
    assert newest_state(window) == "succeeded", window.queue.model.row(0).details()


def test_a_job_on_another_model_shows_it_loading_before_its_first_step(
        qtbot: QtBot, qapp: QApplication, desk: tuple[AppContext, MainWindow],
        tmp_path: Path) -> None:
    ctx, window = desk
    generate(qtbot, window, "a lighthouse")  # the built-in tiny model, now resident
    [built] = (tmp_path / "home").rglob("builtin-tiny")
    other = shutil.copytree(built, tmp_path / "tiny-b")
    window.editor.set_models([("tiny-b", str(other), None)])  # as the library fills it
    window.editor.model.setCurrentIndex(window.editor.model.findData(str(other)))

    events: list[Event] = []
    status_lines: list[str] = []
    terminal = Terminal()
    printer = ProgressPrinter(0, terminal)

    def record(event: Event) -> None:  # subscribed after the window: sees what it shows
        events.append(event)
        if isinstance(event, JobProgress):
            printer.job_id = event.job_id
            printer(event)
            status_lines.append(window.editor.status.text())
    unsubscribe = ctx.engine.hub.subscribe(record)
    rows = watch_row(window)
    try:
        generate(qtbot, window, "a lighthouse, on the other model")
    finally:
        unsubscribe()
    printer.done()

    progress = [e for e in events if isinstance(e, JobProgress)]
    messages = [e.message for e in progress if not e.total]
    first_step = next(i for i, e in enumerate(progress) if e.total)
    loading = [i for i, e in enumerate(progress) if "Loading model tiny-b" in e.message]
    assert loading and max(loading) < first_step, messages
    assert "Loading model tiny-b… unloading Built-in test model (random weights) first" in messages
    assert [m for m in messages if m.startswith("Loading model tiny-b… ")][1:] == [
        "Loading model tiny-b… 1 of 3: reading the weights",
        "Loading model tiny-b… 2 of 3: placing it on the CPU",
        "Loading model tiny-b… 3 of 3: checking its hash"]
    # the queue row's Progress cell and the line under Generate said it too
    assert ("running", "Loading model tiny-b… 1 of 3: reading the weights") in rows
    assert "Running on local: Loading model tiny-b… 1 of 3: reading the weights" in status_lines
    assert "Loading model tiny-b… 1 of 3: reading the weights on local" in terminal.getvalue()
    # one model resident: the built-in one was freed when tiny-b loaded
    [local] = [s.provider for s in ctx.engine.slots if s.provider.name == "local"]
    health = spin(qapp, local.health())
    assert health.details["loaded_model"] == "tiny-b"
    assert health.details["models_in_memory"] == "1"
