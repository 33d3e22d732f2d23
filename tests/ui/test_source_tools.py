"""Work on an image from the window: drop or pick a source, then Generate, Vary,
Upscale, paint a mask or extend the canvas; the queued job (in the real engine's
store) is of the kind and with the parts the user chose."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import qasync
from PIL import Image
from pytestqt.qtbot import QtBot

from desktop_app.domain.image_work import ImageToImage, Inpaint, Outpaint, Padding, Upscale
from desktop_app.domain.job import Job
from desktop_app.store.gallery import ImageRecord
from desktop_app.ui import tasks
from tests.ui.conftest import drive
from tests.ui.real_desk import Desk, close_desk, drag_stroke, drop_file, open_desk, picture_png

PROMPT = "the same scene in autumn"


@pytest.fixture
def desk(qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop) -> Iterator[Desk]:
    opened = open_desk(qtbot, tmp_path)
    yield opened
    close_desk(qtbot, opened)


def dropped_source(qtbot: QtBot, desk: Desk, width: int = 96, height: int = 64) -> Path:
    """A PNG dropped on the viewer; returns its file once it is the editor's source."""
    path = desk.folder / "photo.png"
    path.write_bytes(picture_png(width, height))
    drop_file(desk.window.viewer.canvas.viewport(), path)
    qtbot.waitUntil(lambda: desk.window.editor.source_tools.source is not None, timeout=5_000)
    desk.window.editor.prompt.setPlainText(PROMPT)
    return path


def queued(qtbot: QtBot, desk: Desk, count: int = 1) -> list[Job]:
    def stored() -> list[Job]:
        return drive(qtbot, desk.engine.jobs())
    qtbot.waitUntil(lambda: tasks.pending() == 0 and len(stored()) >= count, timeout=5_000)
    return stored()


def test_dropping_a_png_queues_image_to_image_with_its_hash_and_the_slider_strength(
        qtbot: QtBot, desk: Desk) -> None:
    path = dropped_source(qtbot, desk)
    editor = desk.window.editor
    tools = editor.source_tools
    assert tools.kind_label.text() == "Generate will queue: Image to image"
    assert desk.window.viewer.editing_source  # the dropped picture is on the canvas
    tools.strength.setValue(45)
    editor.generate_button.click()
    [job] = queued(qtbot, desk)
    work = job.request.work
    assert isinstance(work, ImageToImage)
    assert work.source.sha256 == desk.inputs.add_file(path).sha256  # the same stored picture
    assert work.strength == 0.45
    assert (job.request.width, job.request.height) == (96, 64)
    assert job.request.prompt == PROMPT


def stored_mask(desk: Desk, job: Job) -> Image.Image:
    work = job.request.work
    assert isinstance(work, Inpaint)
    return Image.open(io.BytesIO(desk.inputs.read(work.mask))).convert("L")


def test_a_brush_stroke_queues_inpaint_whose_mask_is_white_under_the_stroke_only(
        qtbot: QtBot, desk: Desk) -> None:
    dropped_source(qtbot, desk)
    viewer, tools = desk.window.viewer, desk.window.editor.source_tools
    viewer.brush_button.click()
    viewer.brush_size.setValue(8)
    drag_stroke(viewer.canvas, [(20, 32), (40, 32), (60, 32)])
    assert tools.kind_label.text() == "Generate will queue: Inpaint"
    desk.window.editor.generate_button.click()
    [job] = queued(qtbot, desk)
    mask = stored_mask(desk, job)
    assert mask.size == (96, 64)
    assert mask.getpixel((40, 32)) == 255 and mask.getpixel((22, 32)) == 255
    assert mask.getpixel((40, 10)) == 0 and mask.getpixel((90, 60)) == 0
    assert mask.getpixel((5, 32)) == 0  # past the stroke's end


def test_the_eraser_takes_painted_parts_out_of_the_mask(qtbot: QtBot, desk: Desk) -> None:
    dropped_source(qtbot, desk)
    viewer = desk.window.viewer
    viewer.brush_size.setValue(8)
    viewer.brush_button.click()
    drag_stroke(viewer.canvas, [(10, 32), (80, 32)])
    viewer.eraser_button.click()
    viewer.brush_size.setValue(16)
    drag_stroke(viewer.canvas, [(10, 32), (40, 32)])
    desk.window.editor.generate_button.click()
    [job] = queued(qtbot, desk)
    mask = stored_mask(desk, job)
    assert mask.getpixel((25, 32)) == 0  # erased
    assert mask.getpixel((70, 32)) == 255  # still painted
    drag_stroke(viewer.canvas, [(40, 32), (90, 32)])  # erase the rest
    assert desk.window.editor.source_tools.kind_label.text() == \
        "Generate will queue: Image to image"


def test_extending_the_canvas_queues_outpaint_with_that_padding_and_size(
        qtbot: QtBot, desk: Desk) -> None:
    dropped_source(qtbot, desk)
    tools = desk.window.editor.source_tools
    tools.extend["right"].setValue(128)
    tools.extend["top"].setValue(64)
    assert tools.kind_label.text() == "Generate will queue: Outpaint → 224×128"
    desk.window.editor.generate_button.click()
    [job] = queued(qtbot, desk)
    assert isinstance(job.request.work, Outpaint)
    assert job.request.work.padding == Padding(left=0, top=64, right=128, bottom=0)
    assert (job.request.width, job.request.height) == (224, 128)


def test_vary_subtle_and_strong_queue_image_to_image_at_their_strengths(
        qtbot: QtBot, desk: Desk) -> None:
    dropped_source(qtbot, desk)
    tools = desk.window.editor.source_tools
    tools.vary_subtle.click()
    queued(qtbot, desk, 1)
    tools.vary_strong.click()
    jobs = queued(qtbot, desk, 2)
    works = sorted((j.id, j.request.work) for j in jobs)
    strengths = [w.strength for _, w in works if isinstance(w, ImageToImage)]
    assert strengths == [0.3, 0.7]
    assert tools.strength.value() == 70  # the slider shows the strength last used


def test_upscale_2x_queues_an_upscale_by_two(qtbot: QtBot, desk: Desk) -> None:
    dropped_source(qtbot, desk)
    desk.window.editor.source_tools.upscale.click()
    [job] = queued(qtbot, desk)
    assert isinstance(job.request.work, Upscale)
    assert job.request.work.scale == 2.0
    assert (job.request.width, job.request.height) == (192, 128)


def test_clear_source_returns_generate_to_text_to_image(qtbot: QtBot, desk: Desk) -> None:
    dropped_source(qtbot, desk)
    tools = desk.window.editor.source_tools
    tools.clear.click()
    assert tools.kind_label.text() == "Generate will queue: Text to image"
    assert not desk.window.viewer.brush_button.isEnabled()
    editor = desk.window.editor
    editor.width_box.setValue(64)
    editor.height_box.setValue(64)
    editor.generate_button.click()
    [job] = queued(qtbot, desk)
    assert job.request.work is None


def made_and_used_as_source(qtbot: QtBot, desk: Desk) -> ImageRecord:
    """Generate a picture in the window and make it the source of the next job."""
    window = desk.window
    drive(qtbot, desk.engine.start())
    window.editor.prompt.setPlainText("a harbour at noon")
    window.editor.width_box.setValue(64)
    window.editor.height_box.setValue(64)
    window.editor.generate_button.click()
    qtbot.waitUntil(lambda: window.detail.record is not None, timeout=10_000)
    record = window.detail.record
    assert record is not None
    window.detail.buttons["source"].click()
    tools = window.editor.source_tools
    qtbot.waitUntil(lambda: tools.source is not None, timeout=5_000)
    return record


def test_use_as_source_on_a_gallery_image_keeps_its_lineage(qtbot: QtBot, desk: Desk) -> None:
    record = made_and_used_as_source(qtbot, desk)
    tools = desk.window.editor.source_tools
    assert tools.source is not None and tools.source.gallery_id == record.id
    assert Path(record.path).name in tools.name.text()
    assert "from the gallery" in tools.name.text()
    assert not tools.thumbnail.pixmap().isNull()


def test_the_gallery_filters_by_kind_and_shows_what_was_made_from_an_image(
        qtbot: QtBot, desk: Desk) -> None:
    window = desk.window
    first = made_and_used_as_source(qtbot, desk)
    window.editor.prompt.setPlainText(PROMPT)
    window.editor.generate_button.click()
    gallery = window.gallery
    qtbot.waitUntil(lambda: gallery.model.rowCount() == 2, timeout=10_000)

    def shown() -> list[str]:
        return [gallery.model.record(i).kind for i in range(gallery.model.rowCount())]

    gallery.kind.setCurrentIndex(gallery.kind.findData("img2img"))
    qtbot.waitUntil(lambda: shown() == ["img2img"], timeout=5_000)
    gallery.kind.setCurrentIndex(0)
    qtbot.waitUntil(lambda: len(shown()) == 2, timeout=5_000)
    gallery.show_made_from(first.id)  # the context menu's "Show what was made from this"
    qtbot.waitUntil(lambda: shown() == ["img2img"], timeout=5_000)
    assert gallery.model.record(0).source_image_id == first.id
    assert gallery.lineage.isVisibleTo(gallery) and f"#{first.id}" in gallery.lineage.text()
    gallery.lineage.click()
    qtbot.waitUntil(lambda: len(shown()) == 2, timeout=5_000)


def test_typing_style_name_in_the_gallery_search_finds_images_made_with_it(
        qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop) -> None:
    from desktop_app.domain.styles import Style
    from desktop_app.store.styles import StyleLibrary
    from desktop_app.ui.gallery_view import GalleryFilter

    assert GalleryFilter.parse_search('fox style:"Film grain" snow') == ("fox  snow",
                                                                          "Film grain")
    assert GalleryFilter.parse_search("STYLE:Painted") == ("", "Painted")
    library = StyleLibrary(tmp_path / "styles.csv")
    library.save(Style("Painted", "oil painting of {prompt}"))
    desk = open_desk(qtbot, tmp_path, styles=library)
    try:
        search_by_style(qtbot, desk)
    finally:
        close_desk(qtbot, desk)


def search_by_style(qtbot: QtBot, desk: Desk) -> None:
    drive(qtbot, desk.engine.start())
    editor = desk.window.editor
    editor.width_box.setValue(64)
    editor.height_box.setValue(64)
    for styles in ("Painted", ""):
        editor.prompt.setPlainText("a harbour")
        editor.styles.setText(styles)
        editor.generate_button.click()
        qtbot.waitUntil(lambda: tasks.pending() == 0, timeout=5_000)
    gallery = desk.window.gallery
    qtbot.waitUntil(lambda: gallery.model.rowCount() == 2, timeout=10_000)
    gallery.search.setText("harbour style:Painted")
    qtbot.waitUntil(lambda: gallery.model.rowCount() == 1, timeout=5_000)
    assert gallery.model.record(0).provenance["styles"] == ["Painted"]


def test_reusing_a_variation_brings_back_its_source_and_strength(
        qtbot: QtBot, desk: Desk) -> None:
    window = desk.window
    first = made_and_used_as_source(qtbot, desk)
    tools = window.editor.source_tools
    tools.vary_subtle.click()  # image to image at 0.3
    gallery = window.gallery
    qtbot.waitUntil(lambda: gallery.model.rowCount() == 2, timeout=10_000)
    variation = next(gallery.model.record(i) for i in range(2)
                     if gallery.model.record(i).kind == "img2img")
    tools.clear.click()
    tools.set_strength(0.75)
    assert tools.source is None
    window.reuse(variation)
    qtbot.waitUntil(lambda: tools.source is not None, timeout=5_000)
    assert tools.source is not None and tools.source.gallery_id == first.id
    assert tools.strength_value_f() == pytest.approx(0.3)
    assert window.editor.prompt.toPlainText() == variation.prompt


def test_dragging_an_edge_with_extend_sets_the_outpaint_and_outlines_the_canvas(
        qtbot: QtBot, desk: Desk) -> None:
    dropped_source(qtbot, desk)  # 96 x 64
    viewer = desk.window.viewer
    tools = desk.window.editor.source_tools
    viewer.extend_button.click()
    drag_stroke(viewer.canvas, [(94, 30), (120, 30), (160, 31)])  # the right edge, +64
    assert tools.extend["right"].value() == 64 and tools.extend["left"].value() == 0
    drag_stroke(viewer.canvas, [(40, 1), (40, -30)])  # the top edge, +32 (to the 8 px)
    assert tools.extend["top"].value() == 32
    outline = viewer.canvas.canvas_item
    assert outline.isVisible()
    assert (outline.rect().width(), outline.rect().height()) == (96 + 64, 64 + 32)
    desk.window.editor.generate_button.click()
    [job] = queued(qtbot, desk)
    assert job.request.work == Outpaint(job.request.work.source, Padding(0, 32, 64, 0))  # type: ignore[union-attr]
    assert (job.request.width, job.request.height) == (160, 96)
