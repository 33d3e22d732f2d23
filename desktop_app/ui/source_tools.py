"""The editor's source-image section: which image the next job works on, how
strongly, and which kind of job Generate will queue.

Generate queues, with a source set: Inpaint when a mask is painted on the
viewer, else Outpaint when an "Extend" side is above zero, else Image to image.
"Vary" and "Upscale 2×" queue at once. Without a source it is Text to image.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.image_work import (
    MAX_PADDING,
    ImageRef,
    ImageToImage,
    ImageWork,
    Inpaint,
    Outpaint,
    Padding,
    RequestKind,
    Upscale,
)

SUBTLE, STRONG = 0.3, 0.7  # "Vary": how far from the source the variation may go
DEFAULT_STRENGTH = 0.75
UPSCALE = 2.0
THUMB = 96
Action = Literal["generate", "vary", "upscale"]
StoreImage = Callable[[bytes, Literal["source", "mask"]], Awaitable[ImageRef]]
MaskSource = Callable[[], bytes | None]


class SourceTools(QGroupBox):
    changed = Signal()  # the kind Generate will queue may have changed
    vary_requested = Signal(float)  # strength
    upscale_requested = Signal()
    padding_changed = Signal(dict)  # {"left": px, ...}: the viewer outlines the new canvas
    clear_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Source image", parent)
        self.setObjectName("sourceTools")
        self.source: ImageRef | None = None
        self.source_path: Path | None = None
        self.mask_png: MaskSource = lambda: None  # the viewer's, set by the window
        self.mask_painted: Callable[[], bool] = lambda: False  # likewise
        self.store_image: StoreImage | None = None  # the engine's, set by the window
        self.thumbnail = QLabel(self)
        self.thumbnail.setFixedSize(THUMB, THUMB)
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumbnail.setAccessibleName("Source image thumbnail")
        self.name = QLabel(self)
        self.name.setWordWrap(True)
        self.hint = QLabel("Drop an image on the viewer, or choose “Use as source” on a "
                           "gallery image, to vary, repaint, extend or enlarge it.", self)
        self.hint.setWordWrap(True)
        self.kind_label = QLabel(self)
        self.kind_label.setObjectName("jobKind")
        self.kind_label.setAccessibleName("Kind of job")
        self.strength = QSlider(Qt.Orientation.Horizontal, self)
        self.strength.setObjectName("strength")
        self.strength.setAccessibleName("Strength")
        self.strength.setRange(1, 100)
        self.strength.setToolTip("How far the result may move from the source: low keeps "
                                 "most of it, 100 % repaints it entirely")
        self.strength_value = QLabel(self)
        self.vary_subtle = QPushButton("Vary (subtle)", self)
        self.vary_strong = QPushButton("Vary (strong)", self)
        self.upscale = QPushButton("Upscale 2×", self)
        self.clear = QPushButton("Clear source", self)
        for button, name, tip in (
            (self.vary_subtle, "Vary subtly", f"Queue a close variation (strength {SUBTLE:g})"),
            (self.vary_strong, "Vary strongly", f"Queue a looser variation (strength {STRONG:g})"),
            (self.upscale, "Upscale two times", "Queue the source enlarged twice, with detail"),
            (self.clear, "Clear source", "Back to text to image"),
        ):
            button.setAccessibleName(name)
            button.setToolTip(tip)
        self.extend: dict[str, QSpinBox] = {}
        extend_row = QGridLayout()
        for i, side in enumerate(("left", "top", "right", "bottom")):
            box = QSpinBox(self)
            box.setObjectName(f"extend_{side}")
            box.setAccessibleName(f"Extend {side}")
            box.setRange(0, MAX_PADDING)
            box.setSingleStep(64)
            box.setSuffix(" px")
            box.valueChanged.connect(self._update)
            self.extend[side] = box
            extend_row.addWidget(QLabel(side.capitalize(), self), i // 2, (i % 2) * 2)
            extend_row.addWidget(box, i // 2, (i % 2) * 2 + 1)

        head = QHBoxLayout()
        head.addWidget(self.thumbnail)
        head.addWidget(self.name, 1)
        strength_row = QHBoxLayout()
        strength_row.addWidget(QLabel("Strength", self))
        strength_row.addWidget(self.strength, 1)
        strength_row.addWidget(self.strength_value)
        buttons = QHBoxLayout()
        for button in (self.vary_subtle, self.vary_strong, self.upscale):
            buttons.addWidget(button)
        self.details = QWidget(self)
        details = QVBoxLayout(self.details)
        details.setContentsMargins(0, 0, 0, 0)
        details.addLayout(head)
        details.addLayout(strength_row)
        details.addLayout(buttons)
        details.addWidget(QLabel("Extend the canvas (outpaint):", self))
        details.addLayout(extend_row)
        details.addWidget(self.clear)
        layout = QVBoxLayout(self)
        layout.addWidget(self.hint)
        layout.addWidget(self.details)
        layout.addWidget(self.kind_label)

        self.strength.valueChanged.connect(self._update)
        self.vary_subtle.clicked.connect(lambda: self.vary_requested.emit(SUBTLE))
        self.vary_strong.clicked.connect(lambda: self.vary_requested.emit(STRONG))
        self.upscale.clicked.connect(self.upscale_requested)
        self.clear.clicked.connect(self.clear_requested)
        self.set_strength(DEFAULT_STRENGTH)
        self.set_source(None)

    def focus_order(self) -> list[QWidget]:
        return [self.strength, self.vary_subtle, self.vary_strong, self.upscale,
                *self.extend.values(), self.clear]

    # -- state -------------------------------------------------------------------

    def set_source(self, ref: ImageRef | None, path: Path | None = None) -> None:
        self.source, self.source_path = ref, path if ref is not None else None
        self.details.setVisible(ref is not None)
        self.hint.setVisible(ref is None)
        if ref is not None:
            pixmap = QPixmap(str(path)) if path is not None else QPixmap()
            if not pixmap.isNull():
                self.thumbnail.setPixmap(pixmap.scaled(
                    THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation))
            name = path.name if path is not None else "the dropped image"
            origin = "from the gallery" if ref.gallery_id is not None else "a dropped file"
            self.name.setText(f"{name}\n{origin} · {ref.width}×{ref.height}")
            self.name.setToolTip(str(path) if path is not None else "")
        else:
            self.thumbnail.clear()
            for box in self.extend.values():
                box.setValue(0)
        self._update()

    def set_strength(self, value: float) -> None:
        self.strength.setValue(round(value * 100))

    def strength_value_f(self) -> float:
        return self.strength.value() / 100

    def padding(self) -> Padding | None:
        values = {side: box.value() for side, box in self.extend.items()}
        return Padding(**values) if any(values.values()) else None

    def kind(self) -> RequestKind:
        """The kind of job Generate queues now."""
        if self.source is None:
            return RequestKind.TEXT_TO_IMAGE
        if self.mask_painted():
            return RequestKind.INPAINT
        if self.padding() is not None:
            return RequestKind.OUTPAINT
        return RequestKind.IMAGE_TO_IMAGE

    def _update(self) -> None:
        self.strength_value.setText(f"{self.strength_value_f():.2f}")
        kind = self.kind()
        text = f"Generate will queue: {kind.label}"
        padding = self.padding()
        if kind is RequestKind.OUTPAINT and self.source is not None and padding is not None:
            width = self.source.width + padding.left + padding.right
            height = self.source.height + padding.top + padding.bottom
            text += f" → {width}×{height}"
        self.kind_label.setText(text)
        self.padding_changed.emit({side: box.value() for side, box in self.extend.items()})
        self.changed.emit()

    def mask_edited(self) -> None:
        self._update()

    # -- building the work -------------------------------------------------------

    async def work(self, action: Action) -> ImageWork | None:
        """The image work for ``action`` (None: text to image); a painted mask is
        stored first. Raises ``InvalidRequest`` with the field to fix."""
        source = self.source
        if source is None:
            return None
        strength = self.strength_value_f()
        if action == "upscale":
            return Upscale(source, UPSCALE)
        if action == "vary":
            return ImageToImage(source, strength)
        mask = self.mask_png()
        if mask is not None:
            assert self.store_image is not None, "the window sets store_image"
            ref = await self.store_image(mask, "mask")
            return Inpaint(source, ref, strength)
        padding = self.padding()
        if padding is not None:
            return Outpaint(source, padding)
        return ImageToImage(source, strength)
