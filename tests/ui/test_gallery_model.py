from __future__ import annotations

import functools
import threading
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QMimeData, Qt, QThreadPool
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import QApplication
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from desktop_app.store.gallery import ImageRecord
from desktop_app.ui import thumbnails as thumbnails_module
from desktop_app.ui.gallery_model import IMAGE_ID_ROLE, GalleryModel, SortOrder
from desktop_app.ui.gallery_view import make_list_view
from desktop_app.ui.thumbnails import ThumbnailCache


def image_file(folder: Path, name: str, size: tuple[int, int] = (400, 300)) -> Path:
    image = QImage(*size, QImage.Format.Format_RGB32)
    image.fill(QColor(30, 120, 200))
    path = folder / name
    assert image.save(str(path))
    return path


def record(image_id: int, path: Path, created: float, prompt: str = "p",
           cost: float = 0.0) -> ImageRecord:
    return ImageRecord(id=image_id, path=path, prompt=prompt, width=400, height=300,
                       created_at=created, provider="local", model="builtin:tiny",
                       cost_usd=cost)


def test_gallery_model_passes_the_model_tester(
        qtmodeltester: ModelTester, qapp: QApplication, tmp_path: Path) -> None:
    path = image_file(tmp_path, "a.png")
    model = GalleryModel()
    qtmodeltester.check(model, force_py=True)
    model.set_records([record(i, path, float(i)) for i in range(1, 6)])
    model.add(record(9, path, 100.0))
    model.remove(3)
    model.set_sort_order(SortOrder.OLDEST)
    qtmodeltester.check(model, force_py=True)
    assert [model.record(r).id for r in range(model.rowCount())] == [1, 2, 4, 5, 9]


def test_new_images_are_inserted_where_the_sort_order_puts_them(
        qapp: QApplication, tmp_path: Path) -> None:
    path = image_file(tmp_path, "a.png")
    model = GalleryModel()
    model.set_records([record(1, path, 10.0), record(2, path, 30.0)])
    model.add(record(3, path, 20.0))
    assert [model.record(r).id for r in range(3)] == [2, 3, 1]
    model.set_sort_order(SortOrder.COST)
    model.add(record(4, path, 5.0, cost=0.04))
    assert model.record(0).id == 4


def test_thumbnails_load_off_the_gui_thread_and_are_scaled_to_the_icon(
        qtbot: QtBot, tmp_path: Path) -> None:
    path = image_file(tmp_path, "big.png", (800, 400))
    thumbnails = ThumbnailCache(size=160, capacity=2)
    model = GalleryModel(thumbnails)
    big_id = 1_764_500_000_123_456  # the store's ids are time-ordered 64-bit numbers
    model.set_records([record(big_id, path, 1.0)])
    index = model.index(0)
    first = index.data(Qt.ItemDataRole.DecorationRole)
    assert (first.width(), first.height()) == (160, 160)  # the placeholder: nothing decoded yet
    assert not thumbnails.cached(big_id)
    with qtbot.waitSignal(model.dataChanged, timeout=5_000):
        pass
    pixmap = index.data(Qt.ItemDataRole.DecorationRole)
    assert isinstance(pixmap, QPixmap)
    assert (pixmap.width(), pixmap.height()) == (160, 80)


def test_the_thumbnail_cache_keeps_only_the_most_recent(qtbot: QtBot, tmp_path: Path) -> None:
    paths = [image_file(tmp_path, f"{i}.png") for i in range(3)]
    cache = ThumbnailCache(size=32, capacity=2)
    for key, path in enumerate(paths):
        cache.pixmap(key, path)
        qtbot.waitUntil(functools.partial(cache.cached, key), timeout=5_000)
    assert [cache.cached(k) for k in range(3)] == [False, True, True]


def test_an_unreadable_file_gets_a_broken_placeholder(qtbot: QtBot, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    cache = ThumbnailCache(size=32)
    cache.pixmap(1, bad)
    qtbot.waitUntil(lambda: cache.cached(1), timeout=5_000)
    assert cache.pixmap(1, bad) is cache.broken


def test_dragging_images_out_hands_over_their_files(qapp: QApplication, tmp_path: Path) -> None:
    path = image_file(tmp_path, "a.png")
    model = GalleryModel()
    model.set_records([record(1, path, 1.0, prompt="a fox")])
    mime = model.mimeData([model.index(0)])
    assert isinstance(mime, QMimeData)
    assert [u.toLocalFile() for u in mime.urls()] == [str(path)]
    assert mime.text() == "a fox"
    assert model.flags(model.index(0)) & Qt.ItemFlag.ItemIsDragEnabled


def test_the_icon_view_asks_only_for_the_items_it_shows(qtbot: QtBot, tmp_path: Path) -> None:
    path = image_file(tmp_path, "a.png")
    asked: set[int] = set()

    class Counting(GalleryModel):
        def data(self, index, role=Qt.ItemDataRole.DisplayRole):  # type: ignore[no-untyped-def]
            if role == Qt.ItemDataRole.DecorationRole:
                asked.add(index.row())
            return super().data(index, role)

    model = Counting()
    model.set_records([record(i, path, float(-i)) for i in range(1, 5001)])
    view = make_list_view(model)
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: len(asked) > 0, timeout=5_000)  # the first paint has happened
    assert len(asked) < 100  # a screenful, not 5,000
    assert model.index(0).data(IMAGE_ID_ROLE) == 1


def test_closing_a_pane_while_its_thumbnails_decode_drops_them_and_later_panes_still_load(
        qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A pane closed while its decodes run used to free the object the pool threads
    # were emitting on, and the process died at random (no pytest summary at all).
    path = image_file(tmp_path, "a.png")
    release = threading.Event()
    decode = thumbnails_module.decode_scaled

    def held_decode(file: Path, size: int) -> QImage:
        release.wait(10)
        return decode(file, size)

    monkeypatch.setattr(thumbnails_module, "decode_scaled", held_decode)
    pool = QThreadPool()
    closed = ThumbnailCache(size=32, pool=pool)
    for key in range(8):
        closed.pixmap(key, path)
    shiboken6.delete(closed)  # the pane and its cache are gone; 8 decodes are not
    release.set()
    assert pool.waitForDone(10_000)
    fresh = ThumbnailCache(size=32, pool=pool)
    fresh.pixmap(1, path)
    qtbot.waitUntil(lambda: fresh.cached(1), timeout=5_000)
    assert fresh.pending == 0
