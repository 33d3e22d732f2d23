"""Qt + qasync fixtures for the UI tests (offscreen).

The loop fixture follows docs/ARCHITECTURE.md ("Library behaviour we rely on"):
it makes a qasync loop, sets it as the current *and running* loop, and on teardown
cancels its tasks, processes events, unsets the running loop and closes it. It never calls
``loop.stop()``: that calls ``QApplication.exit()`` while no ``exec()`` runs
and every later nested event loop (each ``qtbot.waitSignal``) returns at once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest
import qasync
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop_app.engine.engine import Engine
from tests.fakes.scripted_engine import scripted_engine
from tests.fakes.scripted_provider import ScriptedProvider
from tests.ui.qt_loop import qasync_loop

if TYPE_CHECKING:
    from tests.ui.window_support import Windows

T = TypeVar("T")
EngineMaker = Callable[..., Engine]


@pytest.fixture
def loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    with qasync_loop(qapp) as event_loop:
        yield event_loop


def drive(qtbot: QtBot, coro: Coroutine[Any, Any, T], timeout_ms: int = 10_000) -> T:
    """Run ``coro`` on the qasync loop, spinning Qt's event loop until it is done."""
    task = asyncio.ensure_future(coro)
    qtbot.waitUntil(task.done, timeout=timeout_ms)
    return task.result()


@pytest.fixture
def windows(qtbot: QtBot, loop: qasync.QEventLoop) -> Iterator[Windows]:
    """Real windows on real engines (``Windows.open``), closed after the test."""
    from tests.ui.window_support import Windows

    opened = Windows(qtbot)
    yield opened
    opened.close()


@pytest.fixture
def scripted_engines(qtbot: QtBot, loop: qasync.QEventLoop,
                     tmp_path: Path) -> Iterator[EngineMaker]:
    """Real engines, each on its own profile folder (``tmp_path / "engine-<n>"``), with the
    scripted providers given (by default one "local" that succeeds); any a test
    left open is closed after it."""
    made: list[Engine] = []

    def make(*providers: ScriptedProvider, folder: Path | None = None) -> Engine:
        """``folder`` opens an earlier engine's profile again, as the next start would."""
        engine = scripted_engine(folder or tmp_path / f"engine-{len(made)}",
                                 *(providers or (ScriptedProvider("local"),)))
        made.append(engine)
        return engine

    yield make
    for engine in made:
        drive(qtbot, engine.close())
