"""The gallery as a list model: one item per image, thumbnails loaded lazily.

The view asks for decorations of the items in view only (uniform item sizes),
so a 10,000-image gallery costs the thumbnails on screen, not all of them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QUrl,
)

from desktop_app.ui.thumbnails import ThumbnailCache

if TYPE_CHECKING:
    from desktop_app.store.gallery import ImageRecord

Index = QModelIndex | QPersistentModelIndex
RECORD_ROLE = Qt.ItemDataRole.UserRole + 1
IMAGE_ID_ROLE = Qt.ItemDataRole.UserRole + 2


class SortOrder(enum.Enum):
    NEWEST = "Newest first"
    OLDEST = "Oldest first"
    PROMPT = "Prompt A–Z"
    COST = "Most expensive"


SORT_KEYS: dict[SortOrder, tuple[Callable[[ImageRecord], Any], bool]] = {
    SortOrder.NEWEST: (lambda r: (r.created_at, r.id), True),
    SortOrder.OLDEST: (lambda r: (r.created_at, r.id), False),
    SortOrder.PROMPT: (lambda r: r.prompt.casefold(), False),
    SortOrder.COST: (lambda r: r.cost_usd or 0.0, True),
}


class GalleryModel(QAbstractListModel):
    def __init__(self, thumbnails: ThumbnailCache | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails or ThumbnailCache(parent=self)
        self.thumbnails.ready.connect(self._on_thumbnail)
        self._records: list[ImageRecord] = []
        self._rows: dict[int, int] = {}
        self.sort_order = SortOrder.NEWEST

    # -- reading -----------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._records)

    def record(self, row: int) -> ImageRecord:
        return self._records[row]

    def records(self) -> list[ImageRecord]:
        return list(self._records)

    def row_of(self, image_id: int) -> int | None:
        return self._rows.get(image_id)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._records):
            return None
        r = self._records[index.row()]
        if role == Qt.ItemDataRole.DecorationRole:
            path = r.thumb_path if r.thumb_path and Path(r.thumb_path).exists() else r.path
            return self.thumbnails.pixmap(r.id, Path(path)) or self.thumbnails.placeholder
        if role == Qt.ItemDataRole.ToolTipRole:
            star = "★ " if r.favourite else ""
            return f"{star}{r.prompt}\n{r.width}×{r.height} · {r.provider} · seed {r.seed}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return r.prompt
        if role == RECORD_ROLE:
            return r
        if role == IMAGE_ID_ROLE:
            return r.id
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        """Dragging items out hands other apps the image files themselves."""
        mime = QMimeData()
        rows = sorted({i.row() for i in indexes if i.isValid()})
        mime.setUrls([QUrl.fromLocalFile(str(self._records[row].path)) for row in rows])
        if rows:
            mime.setText(self._records[rows[0]].prompt)
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    # -- changing ----------------------------------------------------------------

    def set_records(self, records: Sequence[ImageRecord]) -> None:
        self.beginResetModel()
        self._records = self._sorted(records)
        self._reindex()
        self.endResetModel()

    def set_sort_order(self, order: SortOrder) -> None:
        if order is not self.sort_order:
            self.sort_order = order
            self.set_records(self._records)

    def add(self, record: ImageRecord) -> None:
        """Insert a new image where the sort order puts it (or update it if known)."""
        if record.id in self._rows:
            self.update(record)
            return
        key, reverse = SORT_KEYS[self.sort_order]
        position = len(self._records)
        for i, existing in enumerate(self._records):
            if (key(record) > key(existing)) if reverse else (key(record) < key(existing)):
                position = i
                break
        self.beginInsertRows(QModelIndex(), position, position)
        self._records.insert(position, record)
        self._reindex()
        self.endInsertRows()

    def update(self, record: ImageRecord) -> None:
        row = self._rows.get(record.id)
        if row is not None:
            self._records[row] = record
            index = self.index(row)
            self.dataChanged.emit(index, index)

    def remove(self, image_id: int) -> None:
        row = self._rows.get(image_id)
        if row is None:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._records[row]
        self._reindex()
        self.endRemoveRows()
        self.thumbnails.forget(image_id)

    def _sorted(self, records: Sequence[ImageRecord]) -> list[ImageRecord]:
        key, reverse = SORT_KEYS[self.sort_order]
        return sorted(records, key=key, reverse=reverse)

    def _reindex(self) -> None:
        self._rows = {r.id: i for i, r in enumerate(self._records)}

    def _on_thumbnail(self, image_id: int) -> None:
        row = self._rows.get(image_id)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])
