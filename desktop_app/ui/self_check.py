"""The self-test's window check: open the main window as ``run_app`` does, let it
paint, grab it and close it. Lives in ``ui/`` because it drives Qt and qasync."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import qasync

from desktop_app.bootstrap import open_app
from desktop_app.ui import tasks
from desktop_app.ui.app import build_window, make_application
from desktop_app.ui.main_window import CloseMode


def open_and_grab_window(env: Mapping[str, str], timeout_s: float) -> tuple[str, list[str]]:
    """(what was painted, start-up warnings); raises when the window cannot paint."""
    app = make_application(["imagedesk", "--self-test"])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    ctx = open_app(env)
    window = build_window(ctx)

    async def exercise() -> str:
        await ctx.engine.start()
        window.load()
        # Awaiting lets the qasync loop run Qt's events and the window's load tasks
        # (calling processEvents from inside a task would re-enter the loop).
        deadline = time.monotonic() + 10.0
        await asyncio.sleep(0.1)
        while tasks.pending() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        pixmap = window.grab()
        if pixmap.isNull() or pixmap.width() < 1 or pixmap.height() < 1:
            raise RuntimeError("the window painted nothing")
        image = pixmap.toImage()
        colours = {image.pixel(x * image.width() // 17, y * image.height() // 17)
                   for x in range(1, 17) for y in range(1, 17)}
        if len(colours) < 2:
            raise RuntimeError("the window painted one flat colour")
        await window.shutdown(CloseMode.QUIT)
        return f"painted {pixmap.width()}x{pixmap.height()} on {app.platformName()}"

    with loop:
        detail = loop.run_until_complete(asyncio.wait_for(exercise(), timeout_s))
    return detail, list(ctx.warnings)
