"""UI-thread stalls while a local generation runs: a 60 Hz Qt timer on the GUI
thread records how late each tick fires, from Generate until the image is in the
gallery. The real window, engine and the built-in tiny model on CPU (worker
spawn, model load, steps with previews, saving, thumbnail, gallery insert).
Targets (issue 6): worst < 25 ms, p99 < 17 ms.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_ui_stall.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import qasync
from _harness import median, percentile, record
from PySide6.QtCore import Qt, QTimer

from desktop_app.bootstrap import open_app
from desktop_app.domain.job import JobState
from desktop_app.ui.app import build_window, make_application

PERIOD_MS = 1000 / 60
SIZE, STEPS = 256, 20


class Ticker:
    def __init__(self) -> None:
        self.lateness_ms: list[float] = []
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(round(PERIOD_MS))
        self._timer.timeout.connect(self._tick)
        self._last = 0.0

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.lateness_ms.append(max(0.0, (now - self._last) * 1000 - round(PERIOD_MS)))
        self._last = now


async def one_job(window: object, label: str) -> tuple[list[float], float]:
    from desktop_app.ui.main_window import MainWindow

    assert isinstance(window, MainWindow)
    editor = window.editor
    editor.prompt.setPlainText(f"a lighthouse on a cliff at dusk, {label}")
    editor.width_box.setValue(SIZE)
    editor.height_box.setValue(SIZE)
    editor.steps.setValue(STEPS)
    images_before = window.gallery.model.rowCount()
    ticker = Ticker()
    ticker.start()
    started = time.perf_counter()
    editor.generate()
    model = window.queue.model
    while not (model.rowCount() and model.row(model.rowCount() - 1).state.finished
               and window.gallery.model.rowCount() > images_before):
        await asyncio.sleep(0.05)
        row = model.row(model.rowCount() - 1) if model.rowCount() else None
        if row is not None and row.state in (JobState.FAILED, JobState.CANCELLED):
            raise SystemExit(row.details())
    elapsed = time.perf_counter() - started
    await asyncio.sleep(0.3)  # thumbnail decode and paint of the new item
    ticker.stop()
    return ticker.lateness_ms, elapsed


async def run(window: object, ctx: object) -> list[tuple[str, list[float], float]]:
    await ctx.engine.start()  # type: ignore[attr-defined]
    window.load()  # type: ignore[attr-defined]
    await asyncio.sleep(0.5)
    results = []
    for label in ("cold (worker spawn + model load)", "warm"):
        late, elapsed = await one_job(window, label)
        results.append((label, late, elapsed))
    await ctx.engine.close()  # type: ignore[attr-defined]
    return results


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        os.environ.update(IMAGEDESK_HOME=home, IMAGEDESK_LOCAL__MODEL="builtin:tiny",
                          IMAGEDESK_LOCAL__DEVICE="cpu")
        app = make_application([])
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        ctx = open_app(os.environ)
        window = build_window(ctx)
        window.show()
        with loop:
            results = loop.run_until_complete(run(window, ctx))
    lines = []
    for label, late, elapsed in results:
        lines.append(
            f"{label} job, {SIZE} px, {STEPS} steps, Generate → image in gallery "
            f"{elapsed:.1f} s: 60 Hz timer lateness over {len(late)} ticks: worst "
            f"{max(late):.1f} ms, p99 {percentile(late, 99):.1f} ms, median "
            f"{median(late):.1f} ms (targets worst < 25 ms, p99 < 17 ms)")
    record("UI: GUI-thread stalls during a local generation (bench/bench_ui_stall.py)", lines)


if __name__ == "__main__":
    main()
