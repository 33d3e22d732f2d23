"""The editor walks in reading order, names every control, and its status line and
the queue's Progress column say what became of the job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import qasync
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractScrollArea, QAbstractSpinBox, QScrollBar, QWidget
from pytestqt.qtbot import QtBot

from desktop_app.domain.errors import OutOfMemory
from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.events import JobAdded, JobFinished
from desktop_app.ui.queue_model import Column, QueueModel
from tests.ui.conftest import drive
from tests.ui.real_desk import Desk, close_desk, open_desk, scripted


@pytest.fixture
def desk(qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop) -> Iterator[Desk]:
    opened = open_desk(qtbot, tmp_path)
    yield opened
    close_desk(qtbot, opened)


def takes_tab(widget: QWidget) -> bool:
    return (widget.isVisible() and widget.isEnabled() and widget.focusProxy() is None
            and bool(widget.focusPolicy() & Qt.FocusPolicy.TabFocus))


def tab_walk(start: QWidget, count: int) -> list[QWidget]:
    """The widgets Tab visits from ``start``, as Qt's focus chain orders them."""
    seen, widget = [start], start
    while len(seen) < count:
        following = widget.nextInFocusChain()
        if following is None or following is start:
            break
        widget = following
        if widget is start:
            break
        if takes_tab(widget):
            seen.append(widget)
    return seen


def test_tab_walks_the_editor_top_to_bottom_before_leaving_it(desk: Desk) -> None:
    e = desk.window.editor
    expected = [e.prompt, e.negative, e.preset, e.width_box, e.height_box, e.steps,
                e.guidance, e.model, e.sampler, e.clip_skip, e.seed, e.seed_lock,
                e.seed_random, e.n, e.output_format, e.quality, e.mode, e.allow_fallback,
                e.allow_adaptation, e.allow_refusal_failover]
    walked = tab_walk(e.prompt, 60)
    names = [w.accessibleName() or w.objectName() for w in walked]
    assert walked[:len(expected)] == expected, names
    # the source tools, then Generate, all before anything outside the editor
    generate_at = walked.index(e.generate_button)
    assert all(e.isAncestorOf(w) for w in walked[:generate_at + 1]), names


def test_every_control_of_the_editor_and_viewer_has_an_accessible_name(desk: Desk) -> None:
    window = desk.window
    panels: list[QWidget] = [window.editor]
    viewer = getattr(window, "viewer", None)
    if viewer is not None:
        panels.append(viewer)
    unnamed = [f"{type(w).__name__} {w.objectName()!r}"
               for panel in panels for w in panel.findChildren(QWidget)
               if w.focusPolicy() != Qt.FocusPolicy.NoFocus and w.focusProxy() is None
               and w.isVisibleTo(window) and not w.accessibleName()
               and not _inner_part(w)]
    assert unnamed == []


def _inner_part(widget: QWidget) -> bool:
    """A spin box's line edit or a scroll area's viewport: named through its owner."""
    parent = widget.parentWidget()
    return isinstance(parent, QAbstractSpinBox) or isinstance(widget, QScrollBar) or (
        isinstance(parent, QAbstractScrollArea) and widget is parent.viewport())


def test_the_line_under_generate_follows_the_job_to_done(qtbot: QtBot, desk: Desk) -> None:
    e = desk.window.editor
    drive(qtbot, desk.engine.start())
    e.prompt.setPlainText("a lighthouse at dusk")
    e.width_box.setValue(64)
    e.height_box.setValue(64)
    e.generate()
    qtbot.waitUntil(lambda: e.status.text().startswith("Done"), timeout=10_000)
    assert e.status.text() == "Done: 1 image from local."
    model = desk.window.queue.model
    assert model.index(0, Column.STATE).data() == "succeeded"
    assert model.index(0, Column.PROGRESS).data() == "1 image"


def test_the_line_under_generate_says_when_the_job_failed(
        qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop) -> None:
    provider = scripted()
    provider.script = [OutOfMemory("the GPU ran out of memory")]
    desk = open_desk(qtbot, tmp_path, provider)
    try:
        e = desk.window.editor
        drive(qtbot, desk.engine.start())
        e.prompt.setPlainText("a lighthouse at dusk")
        e.width_box.setValue(64)
        e.height_box.setValue(64)
        e.generate()
        qtbot.waitUntil(lambda: e.status.text().startswith("Failed"), timeout=10_000)
        assert "memory" in e.status.text()
        model = desk.window.queue.model
        assert model.index(0, Column.STATE).data() == "failed"
        assert model.index(0, Column.PROGRESS).data() == ""  # not "failed" a second time
    finally:
        close_desk(qtbot, desk)


def test_a_finished_jobs_progress_cell_counts_its_images_and_never_repeats_the_state(
        qtbot: QtBot) -> None:
    model = QueueModel()
    for job_id in (1, 2, 3):
        model.on_job_added(JobAdded(job_id, GenerationRequest("a fox")))
    model.on_job_finished(JobFinished(1, JobState.SUCCEEDED, "local", (10, 11)))
    model.on_job_finished(JobFinished(2, JobState.CANCELLED, None))
    model.on_job_finished(JobFinished(3, JobState.SUCCEEDED, "local", (12,)))
    shown = [(model.index(r, Column.STATE).data(), model.index(r, Column.PROGRESS).data())
             for r in range(3)]
    assert shown == [("succeeded", "2 images"), ("cancelled", ""), ("succeeded", "1 image")]
