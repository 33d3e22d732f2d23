"""A real window on a real Engine over a temporary SQLite store, with scripted
providers (no model, no network): what the viewer and source-tool tests drive."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QEvent, QMimeData, QPointF, QSettings, Qt, QThreadPool, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QMouseEvent
from PySide6.QtWidgets import QApplication, QGraphicsView, QWidget
from pytestqt.qtbot import QtBot

from desktop_app.domain.image_work import RequestKind
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.engine import Engine
from desktop_app.providers.base import CancelToken, Capabilities, ProgressCallback, SizeRule
from desktop_app.store.input_images import InputImages
from desktop_app.store.styles import StyleLibrary
from desktop_app.ui.main_window import CloseMode, MainWindow
from tests.fakes.scripted_engine import engine_in, slot_for
from tests.fakes.scripted_provider import ScriptedProvider
from tests.ui.conftest import drive

EVERY_KIND = frozenset(RequestKind)


class KindPainter(ScriptedProvider):
    """Serves every kind of job at once: a text-to-image job gets ``picture_png``
    (blue left, yellow right), work on an image a plain orange picture, so a test
    can tell a source from its result on screen."""

    async def generate(self, request: GenerationRequest, progress: ProgressCallback,
                       cancel: CancelToken) -> list[GeneratedImage]:
        images = await super().generate(request, progress, cancel)
        if request.kind is not RequestKind.TEXT_TO_IMAGE:
            return images
        return [dataclasses.replace(i, data=picture_png(i.width, i.height)) for i in images]


def scripted(name: str = "local") -> ScriptedProvider:
    """A local provider that serves every kind of job, instantly."""
    return KindPainter(name, caps=Capabilities(
        sizes=SizeRule(multiple_of=8, min_side=64, max_side=2048), max_images_per_call=4,
        supports_seed=True, supports_negative_prompt=True, supports_steps=True,
        supports_guidance=True, kinds=EVERY_KIND))


def picture_png(width: int = 96, height: int = 64) -> bytes:
    """A picture with a left/right split, so a viewer test can tell its halves apart."""
    image = Image.new("RGB", (width, height), (30, 90, 200))
    image.paste((240, 200, 40), (width // 2, 0, width, height))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclasses.dataclass
class Desk:
    window: MainWindow
    engine: Engine
    provider: ScriptedProvider
    folder: Path
    inputs: InputImages


def open_desk(qtbot: QtBot, folder: Path, provider: ScriptedProvider | None = None,
              styles: StyleLibrary | None = None) -> Desk:
    provider = provider or scripted()
    inputs = InputImages(folder / "inputs")
    engine = engine_in(folder, [slot_for(provider, concurrency=1)], inputs=inputs,
                       styles=styles)
    window = MainWindow(engine, QSettings(str(folder / "window.ini"),
                                          QSettings.Format.IniFormat))
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    return Desk(window, engine, provider, folder, inputs)


def close_desk(qtbot: QtBot, desk: Desk) -> None:
    window = desk.window
    QThreadPool.globalInstance().waitForDone(10_000)  # thumbnails still decoding
    if not window._shut_down:
        window.ask_close_mode = lambda: CloseMode.QUIT  # type: ignore[method-assign]
        with qtbot.waitSignal(window.shutdown_finished, timeout=10_000):
            window.close()
    drive(qtbot, desk.engine.close())
    window.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)



def drop_file(target: QWidget, path: Path) -> None:
    """Drag ``path`` from a file manager and drop it on ``target``, as Qt delivers it."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    centre = target.rect().center()
    copy = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(centre, copy, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted(), "the drop target refused the file"
    drop = QDropEvent(QPointF(centre), copy, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, drop)


def mouse(target: QWidget, kind: QEvent.Type, at: QPointF, held: bool) -> None:
    button = Qt.MouseButton.LeftButton
    event = QMouseEvent(kind, at, target.mapToGlobal(at), button if kind != QEvent.Type.MouseMove
                        else Qt.MouseButton.NoButton, button if held else Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, event)


def drag_stroke(canvas: QGraphicsView, points: list[tuple[float, float]]) -> None:
    """Press, move through ``points`` (image pixels) and release, with the left button."""
    port = canvas.viewport()
    at = [QPointF(canvas.mapFromScene(QPointF(x, y))) for x, y in points]
    mouse(port, QEvent.Type.MouseButtonPress, at[0], True)
    for point in at[1:]:
        mouse(port, QEvent.Type.MouseMove, point, True)
    mouse(port, QEvent.Type.MouseButtonRelease, at[-1], False)
