"""``run_app()``: the GUI entry point (``python -m desktop_app`` with no arguments).

One qasync loop runs Qt and the engine on the main thread. Startup is kept
light so the window paints fast: nothing here imports torch (the local
provider starts its worker process lazily, on the first local job), and the
engine is built in a worker thread while the window already answers
(``ui/startup.py``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QWidget

from desktop_app.domain.errors import ImageDeskError
from desktop_app.paths import AppPaths
from desktop_app.store.styles import StyleLibrary
from desktop_app.ui import tasks
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.model_defaults import model_choices
from desktop_app.ui.resources import app_icon, style_sheet
from desktop_app.ui.startup import (
    Opener,
    StartingWindow,
    keep_early_requests,
    open_context,
    open_off_thread,
)

if TYPE_CHECKING:
    from desktop_app.api.window_serving import WindowApi
    from desktop_app.bootstrap import AppContext
    from desktop_app.config import Settings

log = logging.getLogger(__name__)


def make_application(argv: Sequence[str] | None = None) -> QApplication:
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(
        list(argv if argv is not None else sys.argv))
    app.setApplicationName("ImageDesk")
    app.setOrganizationName("ImageDesk")
    app.setDesktopFileName("imagedesk")
    app.setWindowIcon(app_icon())
    app.setStyleSheet(style_sheet())  # palette-based: follows the system light/dark palette
    app.setQuitOnLastWindowClosed(False)  # the window's shutdown decides when we are done
    return app


def window_settings(paths: AppPaths) -> QSettings:
    """Window layout and prompt history: ``window.ini`` in the config folder."""
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    return QSettings(str(paths.config_dir / "window.ini"), QSettings.Format.IniFormat)


def offer_library_models(ctx: AppContext, window: MainWindow) -> None:
    """The editor's Model list from the library's checkpoints, scanned in worker threads
    (hashes only where already known); the profile's last choice is chosen again."""
    from desktop_app.providers import registry

    remembered = window.window_settings.value("editor/model", None)
    editor = window.editor
    editor.model.currentIndexChanged.connect(
        lambda _i: window.window_settings.setValue("editor/model", editor.model.currentData()))

    async def scan() -> tuple[object, str]:
        library = await registry.local_model_library(
            ctx.paths.models_dir, ctx.settings.local.model_folders, hashed=False)
        family = await asyncio.to_thread(registry.local_model_family, ctx.settings.local.model)
        return library, family

    def offer(found: tuple[object, str]) -> None:
        models, defaults = model_choices(*found)
        editor.set_models(models, remembered if isinstance(remembered, str) else None,
                          defaults)
        entries = getattr(found[0], "entries", ())
        editor.set_loras(e.name for e in entries if e.kind == "lora" and e.loadable)

    tasks.spawn(scan(), offer)


def build_window(ctx: AppContext, window: MainWindow | None = None) -> MainWindow:
    """The main window (a new one, or ``window`` shown earlier) wired to the app
    context, settings dialog included."""
    shown = window or MainWindow(None, window_settings(ctx.paths), icon=app_icon())
    api = serve_api(ctx, shown)

    def open_settings(parent: QWidget) -> None:
        from desktop_app.bootstrap import run_connection_test
        from desktop_app.ui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(
            ctx.settings, ctx.keys, save=save, parent=parent,
            on_key_changed=ctx.key_cache.clear,
            on_api_token_changed=token_changed,
            test_connection=lambda name, s, key: run_connection_test(ctx, name, s, key))
        dialog.open()

    def token_changed(token: str) -> None:  # Settings → General → New token
        tasks.spawn(api.token_changed(token))

    def save(new: Settings) -> None:
        from desktop_app.bootstrap import apply_settings

        # apply_settings writes the file, then rebuilds the providers whose settings changed
        tasks.spawn(apply_settings(ctx, new), lambda _r: shown.settings_applied(new))
        tasks.spawn(api.follow(new))  # "Serve the API while ImageDesk is open"

    shown.attach(ctx.engine, open_settings)
    shown.editor.style_library = StyleLibrary(ctx.paths.styles_path)
    offer_library_models(ctx, shown)
    shown.use_settings(ctx.settings)  # settings problems show in its banner, every start
    return shown


def serve_api(ctx: AppContext, window: MainWindow) -> WindowApi:
    """The "Serve the API while ImageDesk is open" setting: the window owns the
    queue, so it serves the API itself; messages go to the status bar."""
    from desktop_app.api.window_serving import WindowApi

    api = WindowApi(ctx, lambda text: window.statusBar().showMessage(text, 10_000))
    window.api = api  # type: ignore[attr-defined]  # what tests and Settings reach
    tasks.spawn(api.follow(ctx.settings))
    return api


async def _run(window: StartingWindow, env: Mapping[str, str] = os.environ,
               opener: Opener = open_context) -> None:
    finished = asyncio.Event()
    window.shutdown_finished.connect(finished.set)
    await asyncio.sleep(0.03)  # let the window paint before the engine's imports run
    ctx = await open_off_thread(env, opener)  # the window answers meanwhile
    if finished.is_set():  # closed while starting: keep the requests made, run nothing
        await keep_early_requests(ctx, window)
    else:
        from desktop_app.bootstrap import warm_keys

        build_window(ctx, window)
        await warm_keys(ctx)  # keyring reads off the UI thread, once
        await ctx.engine.start()
        window.load()
        if ctx.settings.local.warm_on_start:
            warm_local_model(ctx, window)
    await finished.wait()
    api = getattr(window, "api", None)
    if api is not None:
        await api.stop()


def warm_local_model(ctx: AppContext, window: MainWindow) -> None:
    """The "warm on start" setting: start the GPU worker and load the model now, shown
    in the status bar, so the first Generate starts denoising without a load."""
    bar = window.statusBar()
    bar.showMessage("Local model: starting the GPU worker…")

    async def run() -> None:
        try:
            took = await ctx.engine.warm_up(
                lambda message: bar.showMessage(f"Local model: {message}…"))
        except ImageDeskError as error:
            bar.showMessage(f"Local model not loaded: {error.message}", 30_000)
        else:
            if took is None:
                bar.clearMessage()
            else:
                bar.showMessage(f"Local model ready (loaded in {took:.1f} s)", 10_000)

    tasks.spawn(run())


def run_app(argv: Sequence[str] | None = None) -> int:
    import qasync

    app = make_application(argv)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    # the window paints first; the engine is built and attached right after
    window = StartingWindow(None, window_settings(AppPaths.discover(os.environ).ensure()),
                            icon=app_icon())
    window.show()
    with loop:
        loop.run_until_complete(_run(window))
    return 0
