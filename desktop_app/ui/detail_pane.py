"""The selected image at full size with every parameter, its provenance and cost."""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop_app.ui.thumbnails import ThumbnailCache

if TYPE_CHECKING:
    from desktop_app.store.gallery import ImageRecord

PREVIEW_SIZE = 512


class DetailPane(QWidget):
    open_requested = Signal(object)  # ImageRecord
    reveal_requested = Signal(object)
    copy_requested = Signal(object)
    reuse_requested = Signal(object)
    favourite_requested = Signal(object, bool)
    delete_requested = Signal(object)
    use_as_source_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None, *, preview: bool = True) -> None:
        """``preview=False``: the image itself is shown elsewhere (the window's viewer)."""
        super().__init__(parent)
        self.record: ImageRecord | None = None
        self._preview = preview
        self._images = ThumbnailCache(size=PREVIEW_SIZE, capacity=6, parent=self)
        self._images.ready.connect(self._on_image)
        self.image = QLabel(self)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(160, 160)
        self.image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.info = QTextBrowser(self)
        self.info.setObjectName("imageDetails")
        self.info.setOpenLinks(False)
        self.info.setMinimumHeight(120)
        buttons = QGridLayout()
        buttons.setSpacing(4)
        self.buttons: dict[str, QPushButton] = {}
        for key, text, signal in (
            ("open", "Open", self.open_requested), ("reveal", "Show in folder",
                                                    self.reveal_requested),
            ("copy", "Copy prompt", self.copy_requested), ("reuse", "Reuse",
                                                           self.reuse_requested),
            ("delete", "Delete…", self.delete_requested),
            ("source", "Use as source", self.use_as_source_requested),
        ):
            button = QPushButton(text, self)
            button.clicked.connect(lambda _=False, s=signal: self._emit(s))
            self.buttons[key] = button
        self.favourite = QPushButton("☆ Favourite", self)
        self.favourite.setCheckable(True)
        self.favourite.clicked.connect(self._toggle_favourite)
        order = [self.buttons["open"], self.buttons["reveal"], self.buttons["copy"],
                 self.buttons["reuse"], self.favourite, self.buttons["delete"],
                 self.buttons["source"]]
        for i, button in enumerate(order):
            buttons.addWidget(button, i // 3, i % 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.image, 3)
        self.image.setVisible(preview)
        layout.addLayout(buttons)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.info)
        layout.addWidget(scroll, 2)
        self.show_record(None)

    def show_record(self, record: ImageRecord | None) -> None:
        self.record = record
        for button in [*self.buttons.values(), self.favourite]:
            button.setEnabled(record is not None)
        if record is None:
            self.image.clear()
            self.image.setText("Select an image to see its details.")
            self.info.clear()
            self.favourite.setChecked(False)
            return
        self.favourite.setChecked(bool(record.favourite))
        self.favourite.setText("★ Favourite" if record.favourite else "☆ Favourite")
        pixmap = self._images.pixmap(record.id, Path(record.path)) if self._preview else None
        if not self._preview:
            pass
        elif pixmap is not None:
            self._set_pixmap(record.id)
        else:
            self.image.setText("Loading…")
        self.info.setHtml(describe(record))

    def _on_image(self, image_id: int) -> None:
        if self.record is not None and self.record.id == image_id:
            self._set_pixmap(image_id)

    def _set_pixmap(self, image_id: int) -> None:
        pixmap = self._images.pixmap(image_id, None)
        if pixmap is not None:
            self.image.setPixmap(pixmap)

    def _emit(self, signal: Signal) -> None:
        if self.record is not None:
            signal.emit(self.record)  # type: ignore[attr-defined]

    def _toggle_favourite(self, checked: bool) -> None:
        if self.record is not None:
            self.favourite_requested.emit(self.record, checked)


def describe(r: ImageRecord) -> str:
    """Every parameter, provenance and cost of an image, as rich text."""
    created = dt.datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d %H:%M:%S")
    rows = [
        ("Prompt", r.prompt), ("Negative prompt", r.negative_prompt or "—"),
        ("Size", f"{r.width}×{r.height}"), ("Seed", "—" if r.seed is None else str(r.seed)),
        ("Steps", "—" if r.steps is None else str(r.steps)),
        ("Guidance", "—" if r.guidance is None else f"{r.guidance:g}"),
        ("Provider", r.provider), ("Model", r.model),
        ("Cost", f"${r.cost_usd:.4f}" if r.cost_usd else "free"),
        ("Created", created), ("Format", str(r.format)), ("File", str(r.path)),
    ]
    provenance = r.provenance or {}
    for key, value in provenance.items():
        if key in ("prompt", "negative_prompt"):
            continue
        text = value if isinstance(value, str) else json.dumps(value, indent=1, default=str)
        rows.append((key.replace("_", " ").capitalize(), text))
    body = "".join(
        f"<tr><td valign='top'><b>{html.escape(k)}</b></td>"
        f"<td style='white-space:pre-wrap'>{html.escape(v)}</td></tr>"
        for k, v in rows)
    return f"<table cellspacing='4'>{body}</table>"
