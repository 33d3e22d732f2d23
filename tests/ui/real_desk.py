"""A real window on a real Engine over a temporary SQLite store, with scripted
providers (no model, no network): what the viewer and source-tool tests drive."""

from __future__ import annotations

import dataclasses
import io
import random
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QEvent, QSettings, QThreadPool
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop_app.domain.image_work import RequestKind
from desktop_app.engine.engine import Engine
from desktop_app.engine.saving import ImageSaver
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import Capabilities, SizeRule
from desktop_app.resilience.breaker import BreakerConfig, CircuitBreaker
from desktop_app.resilience.clock import SystemClock
from desktop_app.resilience.cooldown import CooldownGate
from desktop_app.resilience.retry import RetryPolicy
from desktop_app.store.database import open_database
from desktop_app.store.gallery import Gallery
from desktop_app.store.input_images import InputImages
from desktop_app.store.jobs import JobQueue
from desktop_app.store.metrics import MetricsStore
from desktop_app.ui.main_window import CloseMode, MainWindow
from tests.fakes.scripted_provider import ScriptedProvider
from tests.ui.conftest import drive

EVERY_KIND = frozenset(RequestKind)


def scripted(name: str = "local") -> ScriptedProvider:
    """A local provider that serves every kind of job, instantly."""
    return ScriptedProvider(name, caps=Capabilities(
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


def _slot(provider: ScriptedProvider) -> ProviderSlot:
    clock = SystemClock()
    return ProviderSlot(provider=provider,
                        breaker=CircuitBreaker(provider.name, BreakerConfig.local_gpu(), clock),
                        gate=CooldownGate(clock), retry=RetryPolicy(max_attempts=1),
                        priority=0, concurrency=1)


def open_desk(qtbot: QtBot, folder: Path, provider: ScriptedProvider | None = None) -> Desk:
    provider = provider or scripted()
    conn = open_database(folder / "imagedesk.sqlite3")
    inputs = InputImages(folder / "inputs")
    engine = Engine(queue=JobQueue(conn), gallery=Gallery(conn), metrics_store=MetricsStore(conn),
                    saver=ImageSaver(folder / "gallery", folder / "thumbs"),
                    slots=[_slot(provider)], rng=random.Random(3), inputs=inputs)
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

