"""The picture itself, large: zoom (fit, 100 %, wheel), pan by dragging, a mask
painted over it, and the source beside it for comparison.

Scene coordinates are the image's pixels: the image sits at (0, 0), so a point
under the cursor maps straight to a mask pixel. The mask is an 8-bit grey image
of the same size (white = repaint, the convention of ``domain/image_work.py``);
what the user sees is a semi-transparent overlay painted in step with it.
"""

from __future__ import annotations

import enum
from pathlib import Path

from PySide6.QtCore import QBuffer, QIODevice, QPointF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QImage,
    QImageReader,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QWidget,
)

OVERLAY = QColor(255, 40, 90, 120)  # where the mask says "repaint"
COMPARE_GAP = 24
ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.02, 32.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


class Tool(enum.Enum):
    PAN = "pan"
    BRUSH = "brush"
    ERASER = "eraser"
    EXTEND = "extend"  # drag an edge outward to extend the canvas (outpaint)


SIDES = ("left", "top", "right", "bottom")
PADDING_STEP = 8  # the padding a drag sets is a multiple of this


class ImageCanvas(QGraphicsView):
    """A QGraphicsView with the image, the mask overlay and the comparison source."""

    mask_changed = Signal()
    padding_dragged = Signal(str, int)  # side, pixels: an edge dragged with Extend
    file_dropped = Signal(object)  # Path of an image file dropped here
    zoom_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageCanvas")
        self.setAccessibleName("Image")
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setBackgroundBrush(QBrush(QColor(40, 40, 44)))
        self.setAcceptDrops(True)
        self.image_item = QGraphicsPixmapItem()
        self.overlay_item = QGraphicsPixmapItem()
        self.overlay_item.setZValue(1)
        self.source_item = QGraphicsPixmapItem()
        self.source_label = QGraphicsSimpleTextItem("Source")
        self.result_label = QGraphicsSimpleTextItem("Result")
        for label in (self.source_label, self.result_label):
            label.setBrush(QBrush(QColor(230, 230, 230)))
        for item in (self.image_item, self.overlay_item, self.source_item,
                     self.source_label, self.result_label):
            self._scene.addItem(item)
        self.image_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.source_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.canvas_item = QGraphicsRectItem()  # the extended canvas, while it is extended
        self.canvas_item.setPen(QPen(QColor(255, 200, 60), 0, Qt.PenStyle.DashLine))
        self.canvas_item.setZValue(2)
        self._scene.addItem(self.canvas_item)
        self.padding = dict.fromkeys(SIDES, 0)
        self._side: str | None = None  # the edge being dragged
        self.image_path: Path | None = None
        self.mask_image = QImage()
        self._overlay = QImage()
        self.tool = Tool.PAN
        self.brush_size = 32
        self.comparing = False
        self._last: QPointF | None = None
        self._fit = True
        self.set_tool(Tool.PAN)
        self._show_compare(False)

    # -- what is shown -----------------------------------------------------------

    def show_image(self, path: Path | None) -> bool:
        """Show the image at ``path`` (None: nothing); False if it cannot be read."""
        image = QImage()
        if path is not None:
            reader = QImageReader(str(path))
            reader.setAutoTransform(True)  # as the input store reads it (EXIF orientation)
            image = reader.read()
        self.image_path = path if not image.isNull() else None
        self.image_item.setPixmap(QPixmap.fromImage(image))
        self._update_scene_rect()
        if self._fit:
            self.fit()
        return not image.isNull()

    @property
    def image_size(self) -> tuple[int, int]:
        pixmap = self.image_item.pixmap()
        return pixmap.width(), pixmap.height()

    def set_source(self, path: Path | None) -> None:
        """The image the shown one was made from (None: it has none)."""
        pixmap = QPixmap(str(path)) if path is not None else QPixmap()
        self.source_item.setPixmap(pixmap)
        if pixmap.isNull():
            self.set_comparing(False)
        else:
            self._place_source()
            self._show_compare(self.comparing)

    @property
    def has_source(self) -> bool:
        return not self.source_item.pixmap().isNull()

    def set_comparing(self, on: bool) -> None:
        self.comparing = on and self.has_source
        self._place_source()
        self._show_compare(self.comparing)
        if self._fit:
            self.fit()

    def _place_source(self) -> None:
        source = self.source_item.pixmap()
        self.source_item.setPos(-(source.width() + COMPARE_GAP), 0)
        self.source_label.setPos(-(source.width() + COMPARE_GAP), -22)
        self.result_label.setPos(0, -22)

    def _show_compare(self, on: bool) -> None:
        for item in (self.source_item, self.source_label, self.result_label):
            item.setVisible(on)
        self._update_scene_rect()

    def _update_scene_rect(self) -> None:
        rect = self.image_item.sceneBoundingRect()
        if self.comparing:
            rect = rect.united(self.source_item.sceneBoundingRect()).adjusted(0, -24, 0, 0)
        self._scene.setSceneRect(rect)

    # -- zoom and pan ------------------------------------------------------------

    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        """The whole picture (both, when comparing) in view; follows resizes."""
        self._fit = True
        rect = self._scene.sceneRect()
        if rect.isEmpty():
            return
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self.zoom_changed.emit(self.zoom)

    def actual_size(self) -> None:
        """One image pixel per screen pixel (100 %)."""
        self.set_zoom(1.0)

    def set_zoom(self, zoom: float) -> None:
        self._fit = False
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
        self.resetTransform()
        self.scale(zoom, zoom)
        self.zoom_changed.emit(self.zoom)

    def zoom_by(self, factor: float) -> None:
        self._fit = False
        target = max(MIN_ZOOM, min(MAX_ZOOM, self.zoom * factor))
        self.scale(target / self.zoom, target / self.zoom)
        self.zoom_changed.emit(self.zoom)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(ZOOM_STEP ** steps)
        event.accept()

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        if self._fit:
            self.fit()

    # -- the mask ----------------------------------------------------------------

    def set_tool(self, tool: Tool) -> None:
        self.tool = tool
        painting = tool is not Tool.PAN
        self.setDragMode(QGraphicsView.DragMode.NoDrag if painting
                         else QGraphicsView.DragMode.ScrollHandDrag)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if painting
                                  else Qt.CursorShape.OpenHandCursor)

    def start_mask(self) -> None:
        """An empty mask (all keep) the size of the shown image."""
        width, height = self.image_size
        self.mask_image = QImage(width, height, QImage.Format.Format_Grayscale8)
        self.mask_image.fill(0)
        self._overlay = QImage(width, height, QImage.Format.Format_ARGB32_Premultiplied)
        self._overlay.fill(Qt.GlobalColor.transparent)
        self.overlay_item.setPixmap(QPixmap.fromImage(self._overlay))
        self.mask_changed.emit()

    def clear_mask(self) -> None:
        if not self.mask_image.isNull():
            self.start_mask()

    def drop_mask(self) -> None:
        self.mask_image = QImage()
        self._overlay = QImage()
        self.overlay_item.setPixmap(QPixmap())
        self.mask_changed.emit()

    def mask_painted(self) -> bool:
        """Whether any pixel is marked for repainting."""
        if self.mask_image.isNull():
            return False
        return bool(bytes(self.mask_image.constBits()).strip(b"\0"))  # C speed, every stroke

    def mask_png(self) -> bytes | None:
        """The mask as an 8-bit grey PNG, or None when nothing is painted."""
        if not self.mask_painted():
            return None
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        self.mask_image.save(buffer, "PNG")  # type: ignore[call-overload]
        return bytes(buffer.data().data())

    def paint_stroke(self, start: QPointF, end: QPointF) -> None:
        """Paint (brush) or erase (eraser) a round stroke between two image points."""
        if self.mask_image.isNull() or self.tool is Tool.PAN:
            return
        erase = self.tool is Tool.ERASER
        marked = QColor(0, 0, 0) if erase else QColor(255, 255, 255)
        for target, colour in ((self.mask_image, marked), (self._overlay, OVERLAY)):
            painter = QPainter(target)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
            if target is self._overlay:
                painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
                if erase:
                    colour = QColor(Qt.GlobalColor.transparent)
            pen = QPen(colour, self.brush_size, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                       Qt.PenJoinStyle.RoundJoin)
            painter.setPen(pen)
            painter.drawLine(start, end)
            painter.end()
        self.overlay_item.setPixmap(QPixmap.fromImage(self._overlay))
        self.mask_changed.emit()

    def show_padding(self, padding: dict[str, int]) -> None:
        """Outline the canvas the next outpaint makes (nothing when there is no padding)."""
        self.padding = {side: max(0, int(padding.get(side, 0))) for side in SIDES}
        width, height = self.image_size
        p = self.padding
        self.canvas_item.setRect(-p["left"], -p["top"], width + p["left"] + p["right"],
                                 height + p["top"] + p["bottom"])
        self.canvas_item.setVisible(any(p.values()) and not self.image_item.pixmap().isNull())

    def _nearest_side(self, point: QPointF) -> str:
        width, height = self.image_size
        distances = {"left": abs(point.x()), "right": abs(width - point.x()),
                     "top": abs(point.y()), "bottom": abs(height - point.y())}
        return min(distances, key=lambda side: distances[side])

    def _drag_padding(self, point: QPointF) -> None:
        assert self._side is not None
        width, height = self.image_size
        beyond = {"left": -point.x(), "right": point.x() - width,
                  "top": -point.y(), "bottom": point.y() - height}[self._side]
        pixels = max(0, round(beyond / PADDING_STEP) * PADDING_STEP)
        if pixels != self.padding[self._side]:
            self.show_padding({**self.padding, self._side: pixels})
            self.padding_dragged.emit(self._side, pixels)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.tool is Tool.EXTEND and event.button() == Qt.MouseButton.LeftButton \
                and not self.image_item.pixmap().isNull():
            point = self.mapToScene(event.position().toPoint())
            self._side = self._nearest_side(point)
            event.accept()
            return
        if self.tool is not Tool.PAN and event.button() == Qt.MouseButton.LeftButton \
                and not self.mask_image.isNull():
            point = self.mapToScene(event.position().toPoint())
            self._last = point
            self.paint_stroke(point, point)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._side is not None:
            self._drag_padding(self.mapToScene(event.position().toPoint()))
            event.accept()
            return
        if self._last is not None:
            point = self.mapToScene(event.position().toPoint())
            self.paint_stroke(self._last, point)
            self._last = point
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._side is not None:
            self._drag_padding(self.mapToScene(event.position().toPoint()))
            self._side = None
            event.accept()
            return
        if self._last is not None:
            self._last = None
            event.accept()
            return
        super().mouseReleaseEvent(event)

    # -- dropping a file ---------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_image(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if dropped_image(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        path = dropped_image(event)
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.file_dropped.emit(path)



def dropped_image(event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> Path | None:
    """The image file a drag carries (PNG, JPEG, WebP), or None."""
    urls = event.mimeData().urls()
    if urls and urls[0].isLocalFile():
        path = Path(urls[0].toLocalFile())
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return path
    return None
