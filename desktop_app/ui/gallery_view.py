"""The gallery panel: search and filters over an icon-mode list, plus the image actions."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, QPoint, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QMessageBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.image_work import RequestKind
from desktop_app.ui.gallery_model import GalleryModel, SortOrder
from desktop_app.ui.tasks import spawn

if TYPE_CHECKING:
    from desktop_app.engine.engine import Engine
    from desktop_app.store.gallery import ImageRecord

ICON = 160
GALLERY_LIMIT = 100_000  # the store pages by 200 unless told; the view itself is lazy
DATES = [("Any time", None), ("Today", 1), ("Last 7 days", 7), ("Last 30 days", 30)]
STYLE_TOKEN = re.compile(r'style:(?:"([^"]*)"|(\S+))', re.IGNORECASE)
KINDS = [("All kinds", None), *((kind.label, kind.value) for kind in RequestKind),
         ("Grids", "grid")]


@dataclasses.dataclass(frozen=True)
class GalleryFilter:
    text: str = ""
    provider: str | None = None
    model: str | None = None
    favourites: bool = False
    days: int | None = None
    kind: str | None = None  # RequestKind value, or "grid"
    made_from: int | None = None  # the gallery image the results were made from
    style: str | None = None  # "style:Name" typed in the search box

    @property
    def active(self) -> bool:
        return bool(self.text or self.provider or self.model or self.favourites or self.days
                    or self.kind or self.made_from or self.style)

    def search_kwargs(self, now: float) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.provider:
            kwargs["provider"] = self.provider
        if self.model:
            kwargs["model"] = self.model
        if self.favourites:
            kwargs["favourites_only"] = True
        if self.days:
            kwargs["since"] = now - self.days * 86400
        if self.kind:
            kwargs["kind"] = self.kind
        if self.made_from is not None:
            kwargs["source_image_id"] = self.made_from
        if self.style:
            kwargs["style"] = self.style
        return kwargs

    @classmethod
    def parse_search(cls, typed: str) -> tuple[str, str | None]:
        """The words to search for, and a style named as ``style:Name`` (quotes allow
        spaces: ``style:"Film grain"``)."""
        match = STYLE_TOKEN.search(typed)
        if match is None:
            return typed.strip(), None
        style = (match.group(1) or match.group(2) or "").strip()
        rest = (typed[:match.start()] + typed[match.end():]).strip()
        return rest, style or None


def make_list_view(model: GalleryModel, parent: QWidget | None = None) -> QListView:
    """Icon mode with uniform sizes: the view only asks for the thumbnails it shows."""
    view = QListView(parent)
    view.setObjectName("galleryView")
    view.setViewMode(QListView.ViewMode.IconMode)
    view.setUniformItemSizes(True)
    view.setIconSize(QSize(ICON, ICON))
    view.setGridSize(QSize(ICON + 12, ICON + 12))
    view.setResizeMode(QListView.ResizeMode.Adjust)
    view.setMovement(QListView.Movement.Static)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.setDragEnabled(True)
    view.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
    view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    view.verticalScrollBar().setSingleStep(ICON // 4)
    view.setModel(model)
    return view


class GalleryView(QWidget):
    image_selected = Signal(object)  # ImageRecord or None
    reuse_requested = Signal(object)  # ImageRecord
    use_as_source_requested = Signal(object)  # ImageRecord

    def __init__(self, engine: Engine | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine: Engine = engine  # type: ignore[assignment]  # set by MainWindow.attach
        self.model = GalleryModel(parent=self)
        self.search = QLineEdit(self)
        self.search.setObjectName("gallerySearch")
        self.search.setPlaceholderText("Search prompts…  style:Name finds a style  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.provider = QComboBox(self)
        self.model_filter = QComboBox(self)
        for combo, everything in ((self.provider, "All providers"),
                                  (self.model_filter, "All models")):
            combo.addItem(everything, None)
        self.favourites = QCheckBox("★ only", self)
        self.kind = QComboBox(self)
        self.kind.setObjectName("galleryKind")
        self.kind.setAccessibleName("Kind of job")
        for text, value in KINDS:
            self.kind.addItem(text, value)
        self.made_from: int | None = None  # lineage: only results made from this image
        self.lineage = QToolButton(self)
        self.lineage.setObjectName("galleryLineage")
        self.lineage.setAccessibleName("Stop showing only results of one image")
        self.lineage.clicked.connect(lambda: self.show_made_from(None))
        self.lineage.hide()
        self.date = QComboBox(self)
        for text, days in DATES:
            self.date.addItem(text, days)
        self.sort = QComboBox(self)
        for order in SortOrder:
            self.sort.addItem(order.value, order)
        self.count = QLabel(self)
        for combo in (self.provider, self.model_filter, self.date, self.sort):
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        bar = QHBoxLayout()
        bar.addWidget(self.search, 1)
        bar.addWidget(self.sort)
        bar.addWidget(self.count)
        filters = QHBoxLayout()
        for widget in (self.provider, self.model_filter, self.date, self.kind,
                       self.favourites, self.lineage):
            filters.addWidget(widget)
        filters.addStretch(1)
        self.view = make_list_view(self.model, self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addLayout(filters)
        layout.addWidget(self.view)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(200)
        self._debounce.timeout.connect(self.refresh)
        self.search.textChanged.connect(self._debounce.start)
        for combo in (self.provider, self.model_filter, self.date, self.kind):
            combo.currentIndexChanged.connect(self.refresh)
        self.favourites.toggled.connect(self.refresh)
        self.sort.currentIndexChanged.connect(
            lambda _i: self.model.set_sort_order(self.sort.currentData()))
        self.view.selectionModel().currentChanged.connect(self._on_current)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.activated.connect(lambda _i: self.open_selected())
        delete = QAction("Delete", self.view)
        delete.setShortcut(QKeySequence.StandardKey.Delete)
        delete.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        delete.triggered.connect(self.delete_selected)
        self.view.addAction(delete)
        self.model.rowsInserted.connect(self._update_count)
        self.model.rowsRemoved.connect(self._update_count)
        self.model.modelReset.connect(self._update_count)

    def stop(self) -> None:
        """The window is closing: a search typed just before runs no more."""
        self._debounce.stop()

    # -- loading -----------------------------------------------------------------

    def filter(self) -> GalleryFilter:
        text, style = GalleryFilter.parse_search(self.search.text())
        return GalleryFilter(text=text, style=style,
                             provider=self.provider.currentData(),
                             model=self.model_filter.currentData(),
                             favourites=self.favourites.isChecked(),
                             days=self.date.currentData(), kind=self.kind.currentData(),
                             made_from=self.made_from)

    def show_made_from(self, image_id: int | None) -> None:
        """Only the results made from gallery image ``image_id`` (None: all again)."""
        self.made_from = image_id
        self.lineage.setText(f"Made from #{image_id} ✕" if image_id is not None else "")
        self.lineage.setVisible(image_id is not None)
        self.refresh()

    def refresh(self) -> None:
        current = self.filter()
        spawn(self.engine.search_images(current.text, limit=GALLERY_LIMIT,
                                        **current.search_kwargs(time.time())),
              lambda records: self._loaded(records, current))

    def _loaded(self, records: list[ImageRecord], asked: GalleryFilter) -> None:
        if asked != self.filter():
            return  # the filters changed while the search ran; a newer search follows
        self.model.set_records(records)
        if not asked.active:
            self._offer_choices(records)

    def _offer_choices(self, records: Iterable[ImageRecord]) -> None:
        records = list(records)
        for combo, values in ((self.provider, {r.provider for r in records}),
                              (self.model_filter, {r.model for r in records})):
            known = {combo.itemData(i) for i in range(1, combo.count())}
            for value in sorted(v for v in values - known if v):
                combo.addItem(value, value)

    def add_images(self, image_ids: Iterable[int], select: bool = True) -> None:
        """New images from a finished job: fetched and shown at once (or re-filtered);
        with ``select``, the first becomes the current image (and fills the detail pane)."""
        if self.filter().active:
            self.refresh()
            return

        async def fetch() -> list[ImageRecord]:
            records = [await self.engine.image(image_id) for image_id in image_ids]
            return [r for r in records if r is not None]

        def add(records: list[ImageRecord]) -> None:
            for record in records:
                self.model.add(record)
            self._offer_choices(records)
            if select and records:
                self.select_image(records[0].id)
        spawn(fetch(), add)

    def _update_count(self) -> None:
        n = self.model.rowCount()
        self.count.setText(f"{n:,} image{'s' if n != 1 else ''}")

    # -- selection and actions ---------------------------------------------------

    def selected_records(self) -> list[ImageRecord]:
        rows = sorted({i.row() for i in self.view.selectionModel().selectedIndexes()})
        if not rows and self.view.currentIndex().isValid():
            rows = [self.view.currentIndex().row()]
        return [self.model.record(r) for r in rows]

    def current_record(self) -> ImageRecord | None:
        index = self.view.currentIndex()
        return self.model.record(index.row()) if index.isValid() else None

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.image_selected.emit(self.model.record(current.row()) if current.isValid() else None)

    def select_image(self, image_id: int) -> None:
        row = self.model.row_of(image_id)
        if row is not None:
            self.view.setCurrentIndex(self.model.index(row))

    def _context_menu(self, pos: QPoint) -> None:
        record = self.current_record()
        if record is None:
            return
        menu = QMenu(self)
        menu.addAction("Open", lambda: self.open_image(record))
        menu.addAction("Show in folder", lambda: self.reveal_image(record))
        menu.addAction("Copy prompt", lambda: self.copy_prompt(record))
        menu.addAction("Reuse parameters", lambda: self.reuse_requested.emit(record))
        menu.addAction("Use as source", lambda: self.use_as_source_requested.emit(record))
        menu.addAction("Show what was made from this", lambda: self.show_made_from(record.id))
        menu.addAction("Unfavourite" if record.favourite else "Favourite",
                       lambda: self.set_favourite(record, not record.favourite))
        menu.addSeparator()
        menu.addAction("Delete…", self.delete_selected)
        menu.popup(self.view.viewport().mapToGlobal(pos))

    def open_selected(self) -> None:
        record = self.current_record()
        if record is not None:
            self.open_image(record)

    def open_image(self, record: ImageRecord) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(record.path)))

    def reveal_image(self, record: ImageRecord) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(record.path).parent)))

    def copy_prompt(self, record: ImageRecord) -> None:
        QGuiApplication.clipboard().setText(record.prompt)

    def set_favourite(self, record: ImageRecord, favourite: bool) -> None:
        async def change() -> ImageRecord | None:
            await self.engine.set_favourite(record.id, favourite)
            return await self.engine.image(record.id)

        def changed(updated: ImageRecord | None) -> None:
            if updated is None:
                return
            if self.favourites.isChecked() and not updated.favourite:
                self.model.remove(updated.id)
            else:
                self.model.update(updated)
            if self.current_record() is not None and self.current_record().id == updated.id:  # type: ignore[union-attr]
                self.image_selected.emit(updated)
        spawn(change(), changed)

    def confirm_delete(self, records: list[ImageRecord]) -> bool:
        what = "this image" if len(records) == 1 else f"these {len(records)} images"
        answer = QMessageBox.question(
            self, "Delete images",
            f"Delete {what}? The file{'s' if len(records) > 1 else ''} and "
            "the gallery entry are removed; this cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def delete_selected(self) -> None:
        records = self.selected_records()
        if records:
            self.delete_images(records)

    def delete_images(self, records: list[ImageRecord]) -> None:
        if not self.confirm_delete(records):
            return
        for record in records:
            spawn(self._delete(record.id))

    async def _delete(self, image_id: int) -> None:
        await self.engine.delete_image(image_id)
        self._deleted(image_id)

    def _deleted(self, image_id: int) -> None:
        self.model.remove(image_id)
        if self.current_record() is None:
            self.image_selected.emit(None)
