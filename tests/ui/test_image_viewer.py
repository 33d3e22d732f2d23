"""The viewer in the centre of the window: zoom, pan, compare with the source, and
the mask overlay, on real widgets over a real engine."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import qasync
from PIL import Image
from PySide6.QtCore import QBuffer, QIODevice, QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from tests.ui.conftest import drive
from tests.ui.real_desk import Desk, close_desk, drag_stroke, drop_file, open_desk, picture_png

BLUE, YELLOW, ORANGE = (30, 90, 200), (240, 200, 40), (200, 80, 40)


@pytest.fixture
def desk(qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop) -> Iterator[Desk]:
    opened = open_desk(qtbot, tmp_path)
    yield opened
    close_desk(qtbot, opened)


def drop_picture(qtbot: QtBot, desk: Desk, width: int, height: int,
                 target: str = "viewer") -> None:
    path = desk.folder / f"photo-{width}x{height}.png"
    path.write_bytes(picture_png(width, height))
    widget = desk.window.viewer.canvas.viewport() if target == "viewer" else desk.window
    drop_file(widget, path)
    qtbot.waitUntil(lambda: desk.window.viewer.editing_source, timeout=5_000)


def colours_on_screen(desk: Desk) -> set[tuple[int, int, int]]:
    """Every colour (to the nearest 10) the viewer's canvas shows now."""
    QApplication.processEvents()
    shot = desk.window.viewer.canvas.viewport().grab().toImage()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    shot.save(buffer, "PNG")  # type: ignore[call-overload]
    with Image.open(io.BytesIO(bytes(buffer.data().data()))) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 22) or []
    return {tuple(c // 10 * 10 for c in colour)  # type: ignore[misc, union-attr]
            for _, colour in colours}


def near(colour: tuple[int, int, int], seen: set[tuple[int, int, int]]) -> bool:
    return any(all(abs(a - b) <= 20 for a, b in zip(colour, c, strict=True)) for c in seen)


def wheel(desk: Desk, notches: int) -> None:
    port = desk.window.viewer.canvas.viewport()
    centre = QPointF(port.rect().center())
    event = QWheelEvent(centre, QPointF(port.mapToGlobal(centre.toPoint())), QPoint(0, 0),
                        QPoint(0, 120 * notches), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(port, event)


def test_fit_100_percent_and_the_wheel_change_the_view_scale(qtbot: QtBot, desk: Desk) -> None:
    drop_picture(qtbot, desk, 96, 64)
    viewer = desk.window.viewer
    canvas = viewer.canvas
    fitted = canvas.zoom
    assert fitted > 1.5  # a small picture fills the large viewer
    viewer.actual_button.click()
    assert canvas.zoom == pytest.approx(1.0)
    assert viewer.zoom_label.text() == "100 %"
    wheel(desk, 1)
    assert canvas.zoom == pytest.approx(1.25)
    wheel(desk, -2)
    assert canvas.zoom == pytest.approx(0.8)
    viewer.fit_button.click()
    assert canvas.zoom == pytest.approx(fitted)


def test_dragging_with_the_move_tool_pans_a_large_image(qtbot: QtBot, desk: Desk) -> None:
    drop_picture(qtbot, desk, 1600, 1200)
    viewer = desk.window.viewer
    viewer.actual_button.click()
    bar = viewer.canvas.horizontalScrollBar()
    assert bar.maximum() > 0
    before = bar.value()
    centre = viewer.canvas.mapToScene(viewer.canvas.viewport().rect().center())
    drag_stroke(viewer.canvas, [(centre.x(), centre.y()), (centre.x() - 150, centre.y())])
    assert bar.value() != before
    assert not viewer.mask_painted()  # moving never paints


def test_a_file_dropped_anywhere_on_the_window_becomes_the_source(
        qtbot: QtBot, desk: Desk) -> None:
    drop_picture(qtbot, desk, 96, 64, target="window")
    assert desk.window.editor.source_tools.source is not None
    assert desk.window.viewer.canvas.image_size == (96, 64)


def test_the_mask_shows_as_a_tinted_overlay_over_the_picture(qtbot: QtBot, desk: Desk) -> None:
    drop_picture(qtbot, desk, 96, 64)
    viewer = desk.window.viewer
    before = colours_on_screen(desk)
    assert near(BLUE, before) and near(YELLOW, before)
    viewer.brush_button.click()
    viewer.brush_size.setValue(30)
    drag_stroke(viewer.canvas, [(10, 32), (30, 32)])
    after = colours_on_screen(desk)
    tinted = after - before
    assert tinted, "nothing changed on screen where the mask was painted"
    assert near(YELLOW, after)  # the unpainted part still shows as it is
    viewer.clear_mask_button.click()
    assert not viewer.mask_painted()


def test_compare_shows_the_source_beside_the_result(qtbot: QtBot, desk: Desk) -> None:
    window = desk.window
    drive(qtbot, desk.engine.start())
    window.editor.prompt.setPlainText("a harbour at noon")
    window.editor.width_box.setValue(64)
    window.editor.height_box.setValue(64)
    window.editor.generate_button.click()
    qtbot.waitUntil(lambda: window.gallery.current_record() is not None, timeout=10_000)
    source = window.gallery.current_record()
    assert source is not None
    window.gallery.use_as_source_requested.emit(source)
    tools = window.editor.source_tools
    qtbot.waitUntil(lambda: tools.source is not None, timeout=5_000)
    tools.vary_subtle.click()

    def result_shown() -> bool:
        current = window.gallery.current_record()
        return current is not None and current.source_image_id == source.id
    qtbot.waitUntil(result_shown, timeout=10_000)
    viewer = window.viewer
    qtbot.waitUntil(viewer.compare_button.isEnabled, timeout=5_000)
    only_result = colours_on_screen(desk)
    assert near(ORANGE, only_result) and not near(BLUE, only_result)
    viewer.compare_button.click()
    both = colours_on_screen(desk)
    assert near(ORANGE, both) and near(BLUE, both) and near(YELLOW, both)
    assert viewer.canvas.source_item.isVisible()
    viewer.compare_button.click()
    assert not near(BLUE, colours_on_screen(desk))
