"""Start-up that keeps the window live: the engine is built off the GUI thread.

``run_app`` shows a ``StartingWindow`` first and then builds the app context
(settings, store, providers: a second of imports here, several on a slow disk)
in a worker thread, so the window keeps painting and taking keys meanwhile. A
Generate pressed before the engine is attached (the button, the toolbar or
Ctrl+Enter) waits and is submitted once, as soon as it attaches; the controls
that would reach the engine at once (Pause, the gallery, Import, Settings) are
greyed until then.

The garbage collector is off while the context is built and everything built is
frozen afterwards (``gc.freeze``): a collection holds the GIL for its whole run,
and the ones the imports set off stalled the window for 25 to 70 ms
(docs/ARCHITECTURE.md, "Library behaviour we rely on"). Measured by
``bench/bench_ui_startup_stall.py``.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal

from desktop_app.ui.main_window import MainWindow

if TYPE_CHECKING:
    from PySide6.QtCore import QSettings
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QWidget

    from desktop_app.bootstrap import AppContext
    from desktop_app.domain.request import GenerationRequest
    from desktop_app.engine.engine import Engine

Opener = Callable[[Mapping[str, str]], "AppContext"]
# While the build thread runs, the GUI thread waits at most this long for the GIL
# each time a Qt event calls into Python (the default is 5 ms).
BUILD_SWITCH_S = 0.001
WAITING_MESSAGE = "Starting… your request is queued as soon as the engine is ready."


def open_context(env: Mapping[str, str]) -> AppContext:
    """The heavy imports and ``open_app`` (blocking: run it in a worker thread)."""
    from desktop_app.bootstrap import open_app

    return open_app(env)


async def open_off_thread(env: Mapping[str, str], opener: Opener = open_context) -> AppContext:
    """``opener(env)`` in a worker thread, with the garbage collector held off and
    a short GIL switch interval meanwhile; what it built is frozen out of later
    collections."""
    collecting, switch_s = gc.isenabled(), sys.getswitchinterval()
    gc.disable()
    sys.setswitchinterval(BUILD_SWITCH_S)
    try:
        return await asyncio.to_thread(opener, env)
    finally:
        sys.setswitchinterval(switch_s)
        # Left in the young generation, the build's objects would all be scanned
        # by the next collection (the same stall, only later): freeze them.
        gc.freeze()
        if collecting:
            gc.enable()


class StartingWindow(MainWindow):
    """The main window shown before its engine exists: Generate is enabled from
    the first frame, and a request made before ``attach`` waits for it."""

    ready = Signal()  # the engine is attached and started, and the window is filling

    def __init__(self, engine: Engine | None, window_settings: QSettings, *,
                 icon: QIcon | None = None) -> None:
        super().__init__(engine, window_settings, icon=icon)
        self._attached = asyncio.Event()
        self.waiting_requests = 0  # Generates pressed before the engine attached, not in yet
        self._all_in = asyncio.Event()
        self._all_in.set()
        if self.engine is None:
            self.editor.generate_button.setEnabled(True)
            self._set_engine_controls(False)
        else:
            self._attached.set()

    def _set_engine_controls(self, enabled: bool) -> None:
        """What reaches the engine at once (the queue and its Pause / Clear, the
        gallery and its search, the provider lights, Import, Settings) waits,
        greyed, until it is attached; typing and Generate do not."""
        for part in (self.queue, self.gallery, self.providers, self.pause_action,
                     self.queue.clear_action, self.import_action, self.settings_action):
            part.setEnabled(enabled)

    def attach(self, engine: Engine,
               open_settings: Callable[[QWidget], None] | None = None) -> None:
        super().attach(engine, open_settings)
        if not self._attached.is_set():
            self._set_engine_controls(True)
            self._attached.set()

    async def _submit(self, request: GenerationRequest) -> object:
        if not self._attached.is_set():
            self.waiting_requests += 1
            self._all_in.clear()
            self.statusBar().showMessage(WAITING_MESSAGE)
            try:
                await self._attached.wait()
                return await super()._submit(request)
            finally:
                self.waiting_requests -= 1
                if not self.waiting_requests:
                    self._all_in.set()
        return await super()._submit(request)

    def load(self) -> None:
        super().load()
        self.ready.emit()

    async def requests_in(self) -> None:
        """Wait until every request made before ``attach`` has been submitted."""
        await self._all_in.wait()


async def keep_early_requests(ctx: AppContext, window: StartingWindow) -> None:
    """The window was closed before the engine attached: store the requests
    Generate made meanwhile (they run on the next start), then close the engine."""
    try:
        if window.waiting_requests:
            window.attach(ctx.engine)
            await window.requests_in()
    finally:
        await ctx.engine.close()
