"""The full path through the real window, the real engine and the built-in tiny model on CPU.

One window and engine are shared by the tests of this module (each real
diffusion job costs a worker spawn of several seconds); the failover test
builds its own, with the local model pointed at a missing file and the fake
OpenAI server serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import qasync
from PySide6.QtCore import QEventLoop, QSettings, Qt
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from desktop_app.bootstrap import AppContext, open_app
from desktop_app.domain.job import JobState
from desktop_app.store.gallery import ImageRecord
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.queue_model import Column
from tests.fakes.fake_openai import FakeOpenAI
from tests.ui.qt_loop import qasync_loop

pytestmark = pytest.mark.slow
T = TypeVar("T")
KEY = "sk-test" + "Zz09" * 10
# A real diffusion job on the CPU (the first also starts the worker and builds the tiny
# model): 95 s measured beside two CPU hogs on a shared 2-core machine, so its waits get
# what the per-test timeout (300 s) leaves for setup and teardown, not a guess near that.
REAL_JOB_MS = 240_000


def spin_result(coro: Coroutine[Any, Any, T]) -> T:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    return spin(app, coro, 10)


def spin(app: QApplication, coro: Coroutine[Any, Any, T], timeout_s: float = 60) -> T:
    """Run ``coro`` to completion from a fixture (where no qtbot is available)."""
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_event_loop()
    deadline = loop.time() + timeout_s
    while not task.done():
        if loop.time() > deadline:
            task.cancel()
            raise TimeoutError(f"{coro} did not finish in {timeout_s} s")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    return task.result()


@pytest.fixture(scope="module")
def module_loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    # same pattern as conftest's ``loop`` (never loop.stop()), for the whole module
    with qasync_loop(qapp) as event_loop:
        yield event_loop


def start_window(qapp: QApplication, home: Path, **env: str) -> tuple[AppContext, MainWindow]:
    environment = {"IMAGEDESK_HOME": str(home), "IMAGEDESK_LOCAL__MODEL": "builtin:tiny",
                   "IMAGEDESK_LOCAL__DEVICE": "cpu", "IMAGEDESK_LOCAL__ALLOW_CPU": "true",
                   **env}
    ctx = open_app(environment)
    settings = QSettings(str(home / "window.ini"), QSettings.Format.IniFormat)
    window = MainWindow(ctx.engine, settings)
    window.show()
    spin(qapp, ctx.engine.start())
    window.load()
    return ctx, window


def stop_window(qapp: QApplication, ctx: AppContext, window: MainWindow) -> None:
    spin(qapp, ctx.engine.close())
    window.signals.detach()
    window._shut_down = True  # the engine is closed already; let the window go
    window.close()
    window.deleteLater()
    qapp.processEvents()


@pytest.fixture(scope="module")
def app_window(qapp: QApplication, module_loop: qasync.QEventLoop,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[MainWindow]:
    ctx, window = start_window(qapp, tmp_path_factory.mktemp("home"))
    yield window
    stop_window(qapp, ctx, window)


def type_request(window: MainWindow, prompt: str, steps: int, seed: int | None = 42) -> None:
    editor = window.editor
    editor.prompt.setPlainText(prompt)
    editor.width_box.setValue(256)
    editor.height_box.setValue(256)
    editor.steps.setValue(steps)
    if seed is not None:
        editor.seed.setText(str(seed))
        editor.seed_lock.setChecked(True)


def watch_row(window: MainWindow) -> list[tuple[str, str]]:
    """Every (state, progress text) the newest queue row shows, in order."""
    model = window.queue.model
    seen: list[tuple[str, str]] = []

    def record(*_args: object) -> None:
        last = model.rowCount() - 1
        if last >= 0:
            shown = (model.index(last, Column.STATE).data(),
                     model.index(last, Column.PROGRESS).data())
            if not seen or seen[-1] != shown:
                seen.append(shown)
    model.dataChanged.connect(record)
    model.rowsInserted.connect(record)
    model.modelReset.connect(record)
    return seen


def newest_state(window: MainWindow) -> str | None:
    model = window.queue.model
    return model.row(model.rowCount() - 1).state.value if model.rowCount() else None


def test_generate_shows_progress_then_the_image_in_the_gallery_with_its_parameters(
        qtbot: QtBot, app_window: MainWindow) -> None:
    window = app_window
    before = window.gallery.model.rowCount()
    seen = watch_row(window)
    type_request(window, "a lighthouse at dusk, oil painting", steps=8)
    qtbot.mouseClick(window.editor.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: newest_state(window) in ("succeeded", "failed"), timeout=REAL_JOB_MS)
    assert newest_state(window) == "succeeded", window.queue.model.row(0).details()

    states = [state for state, _ in seen]
    assert states[0] == "queued"
    assert states.index("running") < states.index("succeeded")
    steps = [int(p.split("/")[0]) for s, p in seen if s == "running" and "/" in p]
    assert len(set(steps)) >= 3 and steps == sorted(steps)  # the bar moved forward

    qtbot.waitUntil(lambda: window.gallery.model.rowCount() == before + 1, timeout=10_000)
    record = window.gallery.model.record(0)
    assert record.prompt == "a lighthouse at dusk, oil painting"
    assert (record.width, record.height, record.seed, record.steps) == (256, 256, 42, 8)
    assert Path(record.path).exists()
    qtbot.waitUntil(lambda: window.detail.record is not None
                    and window.detail.record.id == record.id, timeout=5_000)
    details = window.detail.info.toPlainText()
    assert "a lighthouse at dusk" in details and "42" in details and "256×256" in details
    qtbot.waitUntil(lambda: window.gallery.model.thumbnails.cached(record.id), timeout=10_000)


def generate_image(qtbot: QtBot, window: MainWindow, prompt: str, steps: int,
                   seed: int) -> ImageRecord:
    """This test's own image, made through the editor and shown in the detail pane (so
    that no test depends on an image an earlier test made)."""
    type_request(window, prompt, steps=steps, seed=seed)
    window.editor.generate()
    gallery = window.gallery.model

    def made() -> ImageRecord | None:
        return next((gallery.record(r) for r in range(gallery.rowCount())
                     if gallery.record(r).prompt == prompt), None)

    qtbot.waitUntil(lambda: made() is not None, timeout=REAL_JOB_MS)
    record = made()
    assert record is not None
    qtbot.waitUntil(lambda: window.detail.record is not None
                    and window.detail.record.id == record.id, timeout=10_000)
    return record


def test_a_generated_png_recalls_its_own_parameters(
        qtbot: QtBot, app_window: MainWindow) -> None:
    window = app_window
    record = generate_image(qtbot, window, "a quiet harbour at dawn", steps=6, seed=11)
    editor = window.editor
    editor.prompt.setPlainText("something else")
    editor.steps.setValue(30)
    editor.seed.clear()
    assert editor.recall_from_file(Path(record.path))
    assert editor.prompt.toPlainText() == record.prompt
    assert (editor.steps.value(), editor.seed.text()) == (6, "11")
    assert (editor.width_box.value(), editor.height_box.value()) == (256, 256)


def test_reuse_from_the_gallery_fills_the_editor(
        qtbot: QtBot, app_window: MainWindow) -> None:
    window = app_window
    generate_image(qtbot, window, "a windmill in a tulip field", steps=4, seed=5)
    window.editor.prompt.setPlainText("x")
    window.editor.steps.setValue(30)
    window.detail.buttons["reuse"].click()
    assert window.editor.prompt.toPlainText() == "a windmill in a tulip field"
    assert window.editor.steps.value() == 4


def test_delete_asks_first_then_removes_the_file_and_the_entry(
        qtbot: QtBot, app_window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    window = app_window
    gallery = window.gallery
    record = generate_image(qtbot, window, "a paper boat on a pond", steps=4, seed=3)
    answers = iter([QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Yes])
    asked: list[str] = []

    def question(_parent: object, _title: str, text: str, *_a: object) -> object:
        asked.append(text)
        return next(answers)
    monkeypatch.setattr(QMessageBox, "question", question)
    gallery.delete_images([record])  # answered Cancel: decided here, nothing runs later
    assert Path(record.path).exists() and gallery.model.row_of(record.id) is not None
    window.detail.buttons["delete"].click()
    qtbot.waitUntil(lambda: gallery.model.row_of(record.id) is None, timeout=5_000)
    assert len(asked) == 2 and "cannot be undone" in asked[0]
    assert not Path(record.path).exists()
    found = spin_result(window.engine.image(record.id))
    assert found is None
    # the pane shows the next image (earlier tests' images may be there), never the deleted one
    assert window.detail.record is None or window.detail.record.id != record.id


def test_cancel_mid_run_stops_the_job_and_adds_no_image(
        qtbot: QtBot, app_window: MainWindow) -> None:
    window = app_window
    images = window.gallery.model.rowCount()
    type_request(window, "a very slow painting of a harbour", steps=150, seed=7)
    window.editor.generate()
    model = window.queue.model
    qtbot.waitUntil(lambda: newest_state(window) == "running"
                    and model.row(model.rowCount() - 1).step >= 2, timeout=REAL_JOB_MS)
    window.queue.table.selectRow(model.rowCount() - 1)
    assert window.queue.cancel_action.isEnabled()
    window.queue.cancel_action.trigger()
    qtbot.waitUntil(lambda: newest_state(window) == "cancelled", timeout=30_000)
    row = model.row(model.rowCount() - 1)
    assert row.step < 150
    assert window.queue.retry_action.isEnabled()
    # the gallery adds only a succeeded job's images, and the store holds none of this one
    job = spin_result(window.engine.job(row.id))
    assert job is not None and job.state is JobState.CANCELLED and job.image_ids == []
    assert window.gallery.model.rowCount() == images


@pytest.fixture
def failover_window(qapp: QApplication, module_loop: qasync.QEventLoop,
                    tmp_path: Path) -> Iterator[tuple[MainWindow, FakeOpenAI]]:
    with FakeOpenAI(api_key=KEY) as server:
        # A missing model file is refused before the local worker starts: this test no
        # longer waits on a torch import in a child process, which took minutes on a
        # loaded machine and ran past the job wait twice.
        ctx, window = start_window(
            qapp, tmp_path / "home",
            IMAGEDESK_LOCAL__MODEL=str(tmp_path / "missing" / "model.safetensors"),
            IMAGEDESK_ROUTING__CPU_AFTER_CLOUD="false", OPENAI_API_KEY=KEY,
            IMAGEDESK_OPENAI__BASE_URL=server.base_url)
        yield window, server
        stop_window(qapp, ctx, window)


def test_failover_to_the_cloud_is_visible_in_the_badge(
        qtbot: QtBot, failover_window: tuple[MainWindow, FakeOpenAI]) -> None:
    window, server = failover_window
    type_request(window, "a red fox in the snow", steps=4)
    window.editor.generate()
    qtbot.waitUntil(lambda: newest_state(window) in ("succeeded", "failed"), timeout=REAL_JOB_MS)
    model = window.queue.model
    row = model.row(model.rowCount() - 1)
    assert row.state is JobState.SUCCEEDED, row.details()
    badge = model.index(model.rowCount() - 1, Column.PROVIDER).data()
    assert badge.startswith("routed to openai: local")
    assert "Misconfigured" in row.details()
    assert len(server.image_requests()) == 1
    qtbot.waitUntil(lambda: window.gallery.model.rowCount() == 1, timeout=10_000)
    assert window.gallery.model.record(0).provider == "openai"
    # the status bar shows local as misconfigured, with the reason in its tooltip
    window.providers.refresh()
    qtbot.waitUntil(lambda: "local" in window.providers.indicators
                    and window.providers.indicators["local"].light.label == "misconfigured",
                    timeout=10_000)
