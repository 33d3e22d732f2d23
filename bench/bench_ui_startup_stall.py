"""GUI-thread stalls from launch to ready (issue 17.9): how long the window fails
to answer while the engine is built, against an empty Qt window's start-up.

Each round launches a fresh interpreter (fresh IMAGEDESK_HOME, offscreen) with a
5 ms precise Qt timer on the GUI thread; a tick's lateness is how much later
than 5 ms after the previous one it fired, i.e. how long the GUI thread could not
answer. Counted from the end of the window's first frame (before it nothing is on
screen; drawing that frame is reported on its own) until ready (engine attached
and started, window filled, no task pending) plus 0.3 s. Three kinds of round,
interleaved:

- app: ``desktop_app.ui.app.run_app`` itself (the engine built off the GUI thread);
- inline: the same steps with ``open_app`` called on the GUI thread, as before
  issue 17.9, for comparison;
- empty: a bare QMainWindow on a qasync loop kept up as long as an app round: the
  floor that the machine's scheduling and Qt alone give;
- busy: the same with a thread computing in pure Python meanwhile (and the GIL
  switch interval run_app builds with): the floor for any work in a second
  thread of the process, which shares the GIL, whatever that work is.

Target: worst lateness < 25 ms (as during a generation, bench_ui_stall.py).
Run: .venv/bin/python bench/bench_ui_startup_stall.py
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import median, percentile, record

ROUNDS = 5
TICK_MS = 5
SETTLE_S = 0.3
CHILD = textwrap.dedent("""
    import time
    started = time.time()
    import asyncio, json, os, sys
    mode, stay_s = sys.argv[1], float(sys.argv[2])
    import qasync
    from PySide6.QtCore import QEvent, QObject, Qt, QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow, QWidget
    from desktop_app.ui import tasks
    from desktop_app.ui.app import make_application

    app = make_application([])
    ticks, marks = [], {}

    def tick():
        ticks.append(time.perf_counter())
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    timer.start()

    def settle_then_close(window):
        marks["ready"] = time.perf_counter()
        def check():
            if tasks.pending():
                QTimer.singleShot(10, check)
                return
            marks.setdefault("idle", time.perf_counter())
            QTimer.singleShot(int(SETTLE_S * 1000), lambda: finish(window))
        check()

    def finish(window):
        marks["end"] = time.perf_counter()
        timer.stop()
        window.close()

    class FirstPaint(QObject):
        def eventFilter(self, watched, event):
            if (event.type() == QEvent.Type.Paint and "paint" not in marks
                    and isinstance(watched, QWidget) and watched.window().isWindow()
                    and isinstance(watched.window(), QMainWindow)):
                marks["paint"] = time.perf_counter()
                marks["paint_wall"] = time.time()
                window = watched.window()
                ready = getattr(window, "ready", None)
                if ready is not None:
                    ready.connect(lambda: settle_then_close(window))
                elif mode in ("empty", "busy"):
                    QTimer.singleShot(int(stay_s * 1000), lambda: finish(window))
            return False
    spy = FirstPaint()
    app.installEventFilter(spy)

    if mode == "app":
        from desktop_app.ui.app import run_app
        run_app([])
    elif mode == "inline":
        # run_app's steps before issue 17.9: the engine built on the GUI thread
        from desktop_app.paths import AppPaths
        from desktop_app.ui.app import build_window, window_settings
        from desktop_app.ui.startup import StartingWindow
        from desktop_app.ui.resources import app_icon
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        window = StartingWindow(None, window_settings(AppPaths.discover(os.environ).ensure()),
                                icon=app_icon())
        window.show()
        async def main():
            finished = asyncio.Event()
            window.shutdown_finished.connect(finished.set)
            await asyncio.sleep(0.03)
            from desktop_app.bootstrap import open_app, warm_keys
            ctx = open_app(os.environ)
            build_window(ctx, window)
            await warm_keys(ctx)
            await ctx.engine.start()
            window.load()
            await finished.wait()
        with loop:
            loop.run_until_complete(main())
    else:
        if mode == "busy":  # a thread that only computes, for as long: the GIL floor
            import threading
            from desktop_app.ui.startup import BUILD_SWITCH_S
            sys.setswitchinterval(BUILD_SWITCH_S)  # as while run_app builds
            def compute():
                while "end" not in marks:
                    sum(range(1000))
            threading.Thread(target=compute, daemon=True).start()
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        window = QMainWindow()
        window.resize(1360, 860)
        window.show()
        closed = loop.create_future()
        class Closed(QObject):
            def eventFilter(self, watched, event):
                if watched is window and event.type() == QEvent.Type.Close and not closed.done():
                    closed.set_result(None)
                return False
        closing = Closed()
        window.installEventFilter(closing)
        with loop:
            loop.run_until_complete(closed)

    t0, t1 = marks["paint"], marks["end"]
    inside = [t for t in ticks if t0 <= t <= t1]
    late = [max(0.0, (b - a) * 1000 - TICK_MS) for a, b in zip(inside, inside[1:])]
    print(json.dumps({
        "late": late, "first_frame_ms": (inside[0] - t0) * 1000, "paint_wall": marks["paint_wall"],
        "ready_s": marks.get("ready", t1) - t0, "idle_s": marks.get("idle", t1) - t0,
        "span_s": t1 - t0, "torch": "torch" in sys.modules}), flush=True)
    os._exit(0)
""").replace("TICK_MS", str(TICK_MS)).replace("SETTLE_S", str(SETTLE_S))


@dataclasses.dataclass
class Round:
    late: list[float]  # ms, one per tick from the first tick after the first frame to the end
    first_frame_ms: float  # the first paint's start to the next tick: drawing the first frame
    paint_after_launch_s: float
    ready_s: float  # first paint to ready
    idle_s: float  # first paint to no task pending
    span_s: float  # first paint to the end
    torch: bool


def one_round(mode: str, stay_s: float = 0.0) -> Round:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "IMAGEDESK_HOME": home,
               "IMAGEDESK_LOCAL__MODEL": "builtin:tiny"}
        launched = time.time()
        out = subprocess.run([sys.executable, "-c", CHILD, mode, str(stay_s)],
                             capture_output=True, text=True, env=env, timeout=120,
                             cwd=Path(__file__).resolve().parents[1])
    if out.returncode != 0:
        raise SystemExit(f"{mode} round failed:\n{out.stderr[-3000:]}")
    got = json.loads(out.stdout.strip().splitlines()[-1])
    return Round(late=got["late"], first_frame_ms=got["first_frame_ms"],
                 paint_after_launch_s=got["paint_wall"] - launched,
                 ready_s=got["ready_s"], idle_s=got["idle_s"], span_s=got["span_s"],
                 torch=got["torch"])


def summary(rounds: list[Round]) -> dict[str, float]:
    worst = [max(r.late) for r in rounds]
    every = [x for r in rounds for x in r.late]
    return {"worst": max(worst), "median_worst": median(worst),
            "p99": percentile(every, 99), "ticks": len(every),
            "over_25": sum(1 for x in every if x >= 25),
            "first_frame_ms": median([r.first_frame_ms for r in rounds]),
            "first_frame_worst_ms": max(r.first_frame_ms for r in rounds),
            "paint_ms": median([r.paint_after_launch_s * 1000 for r in rounds]),
            "ready_ms": median([r.ready_s * 1000 for r in rounds]),
            "idle_ms": median([r.idle_s * 1000 for r in rounds])}


def main() -> None:
    one_round("app")  # warms the OS file cache
    runs: dict[str, list[Round]] = {"app": [], "inline": [], "empty": [], "busy": []}
    for _ in range(ROUNDS):
        runs["app"].append(one_round("app"))
        runs["inline"].append(one_round("inline"))
        runs["empty"].append(one_round("empty", runs["app"][-1].span_s))
        runs["busy"].append(one_round("busy", runs["app"][-1].span_s))
    app, inline, empty, busy = (summary(runs[k]) for k in ("app", "inline", "empty", "busy"))
    load = os.getloadavg()[0]
    record("UI: GUI-thread stalls from launch to ready (bench/bench_ui_startup_stall.py)", [
        f"lateness of a {TICK_MS} ms GUI-thread timer from the first frame to ready + "
        f"{SETTLE_S} s, {ROUNDS} fresh processes each, interleaved; 1-minute load average "
        f"{load:.1f} on {os.cpu_count()} cores at the end"
        + (" (the machine was shared with other work: floors and spreads are noisy)"
           if load > 0.7 * (os.cpu_count() or 1) else ""),
        f"run_app (engine built off the GUI thread): worst stall **{app['worst']:.1f} ms** "
        f"(median of the rounds' worst {app['median_worst']:.1f} ms), p99 {app['p99']:.1f} ms, "
        f"{app['over_25']:.0f} of {app['ticks']:.0f} ticks >= 25 ms late (target worst < 25 ms)",
        f"empty Qt window kept up as long: worst {empty['worst']:.1f} ms (median of worst "
        f"{empty['median_worst']:.1f} ms), p99 {empty['p99']:.1f} ms; run_app / empty window, "
        f"worst stall: {app['worst'] / max(empty['worst'], 0.1):.2f}x, median of worst: "
        f"{app['median_worst'] / max(empty['median_worst'], 0.1):.2f}x",
        f"empty window and a thread computing in pure Python as long: worst "
        f"{busy['worst']:.1f} ms (median of worst {busy['median_worst']:.1f} ms), p99 "
        f"{busy['p99']:.1f} ms; run_app / that, worst stall: "
        f"{app['worst'] / max(busy['worst'], 0.1):.2f}x, median of worst: "
        f"{app['median_worst'] / max(busy['median_worst'], 0.1):.2f}x",
        f"for comparison, engine built on the GUI thread (before issue 17.9): worst stall "
        f"{inline['worst']:.1f} ms (median of worst {inline['median_worst']:.1f} ms)",
        f"drawing the first frame (first paint to the next tick, not in the figures above): "
        f"run_app median {app['first_frame_ms']:.1f} ms, worst "
        f"{app['first_frame_worst_ms']:.1f} ms; empty window median "
        f"{empty['first_frame_ms']:.1f} ms",
        f"launch to first paint: run_app median {app['paint_ms']:.0f} ms, empty window "
        f"{empty['paint_ms']:.0f} ms ({app['paint_ms'] / empty['paint_ms']:.2f}x); first paint to "
        f"ready: run_app {app['ready_ms']:.0f} ms, GUI-thread build {inline['ready_ms']:.0f} ms; "
        f"to nothing pending: {app['idle_ms']:.0f} ms",
        f"torch imported by the end: {any(r.torch for r in runs['app'])}",
    ])


if __name__ == "__main__":
    main()
