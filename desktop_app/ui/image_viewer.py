"""The viewer: the selected image large, with its zoom, compare and mask tools.

The picture a user came for is the centre of the window. Above it a row of
tools: fit / 100 % / the zoom figure, "Compare with source" (the image it was
made from, side by side), and — while the source image of the next job is shown —
a brush and an eraser with their size to paint the inpaint mask over it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.ui.image_canvas import ImageCanvas, Tool

MAX_BRUSH = 512


class ImageViewer(QWidget):
    """The canvas plus its toolbar; ``editing_source`` while the mask can be painted."""

    file_dropped = Signal(object)  # Path
    mask_changed = Signal()
    padding_dragged = Signal(str, int)  # side, pixels

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageViewer")
        self.canvas = ImageCanvas(self)
        self.source_path: Path | None = None  # the next job's source, when one is set
        self.shown_path: Path | None = None

        def tool_button(text: str, name: str, tip: str, checkable: bool = False) -> QToolButton:
            button = QToolButton(self)
            button.setText(text)
            button.setAccessibleName(name)
            button.setToolTip(tip)
            button.setCheckable(checkable)
            return button

        self.fit_button = tool_button("Fit", "Fit to window", "Show the whole image")
        self.actual_button = tool_button("100 %", "Actual size",
                                         "One image pixel per screen pixel")
        self.zoom_label = QLabel(self)
        self.zoom_label.setMinimumWidth(48)
        self.compare_button = tool_button("Compare with source", "Compare with source",
                                          "Show the image this one was made from beside it",
                                          checkable=True)
        self.source_button = tool_button("Show source", "Show the source image",
                                         "Show the next job's source image, to paint its mask")
        self.pan_button = tool_button("Move", "Move tool", "Drag to move the image", True)
        self.brush_button = tool_button("Brush", "Mask brush",
                                        "Paint where the next job should repaint", True)
        self.eraser_button = tool_button("Eraser", "Mask eraser",
                                         "Take parts out of the mask", True)
        self.extend_button = tool_button("Extend", "Extend the canvas",
                                         "Drag an edge of the source outward to outpaint "
                                         "there", True)
        self.tools = QButtonGroup(self)
        self.tools.setExclusive(True)
        for button in (self.pan_button, self.brush_button, self.eraser_button,
                       self.extend_button):
            self.tools.addButton(button)
        self.pan_button.setChecked(True)
        self.brush_size = QSpinBox(self)
        self.brush_size.setAccessibleName("Brush size")
        self.brush_size.setToolTip("Brush and eraser size, in image pixels")
        self.brush_size.setRange(1, MAX_BRUSH)
        self.brush_size.setSuffix(" px")
        self.brush_size.setValue(self.canvas.brush_size)
        self.clear_mask_button = tool_button("Clear mask", "Clear mask",
                                             "Remove everything painted on the mask")
        self.caption = QLabel(self)
        self.caption.setObjectName("viewerCaption")

        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        left: list[QWidget] = [self.fit_button, self.actual_button, self.zoom_label,
                               self.compare_button, self.source_button]
        right: list[QWidget] = [self.pan_button, self.brush_button, self.eraser_button,
                                self.brush_size, self.clear_mask_button, self.extend_button]
        for widget in left:
            bar.addWidget(widget)
        bar.addStretch(1)
        for widget in right:
            bar.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.caption)

        self.fit_button.clicked.connect(self.canvas.fit)
        self.actual_button.clicked.connect(self.canvas.actual_size)
        self.compare_button.toggled.connect(self.canvas.set_comparing)
        self.source_button.clicked.connect(self.show_source)
        for button, tool in ((self.pan_button, Tool.PAN), (self.brush_button, Tool.BRUSH),
                             (self.eraser_button, Tool.ERASER),
                             (self.extend_button, Tool.EXTEND)):
            button.toggled.connect(lambda on, t=tool: self._tool_toggled(on, t))
        self.brush_size.valueChanged.connect(self._set_brush_size)
        self.clear_mask_button.clicked.connect(self.canvas.clear_mask)
        self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        self.canvas.file_dropped.connect(self.file_dropped)
        self.canvas.mask_changed.connect(self.mask_changed)
        self.canvas.padding_dragged.connect(self.padding_dragged)
        self.show_image(None)

    def _tool_toggled(self, on: bool, tool: Tool) -> None:
        if on:
            self.canvas.set_tool(tool)

    def _set_brush_size(self, size: int) -> None:
        self.canvas.brush_size = size

    @property
    def editing_source(self) -> bool:
        return self.source_path is not None and self.shown_path == self.source_path

    def _update_tools(self) -> None:
        editing = self.editing_source
        for widget in (self.brush_button, self.eraser_button, self.brush_size,
                       self.clear_mask_button, self.extend_button):
            widget.setEnabled(editing)
        self.canvas.canvas_item.setVisible(editing and any(self.canvas.padding.values()))
        if not editing:
            self.pan_button.setChecked(True)
        self.canvas.overlay_item.setVisible(editing)
        self.source_button.setEnabled(self.source_path is not None and not editing)
        self.compare_button.setEnabled(self.canvas.has_source)
        if not self.canvas.has_source:
            self.compare_button.setChecked(False)

    # -- what is shown -----------------------------------------------------------

    def show_image(self, path: Path | None, source: Path | None = None,
                   caption: str = "") -> None:
        """Show ``path`` (a gallery image), and ``source``, the image it was made
        from, for comparison."""
        self.shown_path = path
        if path is None:
            self.canvas.show_image(None)
            self.caption.setText("Select an image, or drop one here to work on it.")
        elif not self.canvas.show_image(path):
            self.caption.setText(f"Cannot read {path.name}.")
        else:
            width, height = self.canvas.image_size
            self.caption.setText(caption or f"{path.name} · {width}×{height}")
        self.canvas.set_source(source)
        if self.compare_button.isChecked():
            self.canvas.set_comparing(True)
        self._update_tools()

    def set_source(self, path: Path | None, mask_size: tuple[int, int] | None = None) -> None:
        """The next job's source image (None: text to image again). A new source
        starts with an empty mask of its size."""
        self.source_path = path
        if path is None:
            self.canvas.drop_mask()
            self._update_tools()
            return
        self.show_source()
        self.canvas.start_mask()
        if mask_size is not None and mask_size != self.canvas.image_size:
            self.caption.setText("The image reads differently here; the mask is off.")
            self.canvas.drop_mask()

    def show_source(self) -> None:
        if self.source_path is None:
            return
        self.show_image(self.source_path, caption=f"Source of the next job: "
                        f"{self.source_path.name} — paint a mask with the brush to inpaint")

    def mask_png(self) -> bytes | None:
        return self.canvas.mask_png()

    def mask_painted(self) -> bool:
        return self.canvas.mask_painted()
