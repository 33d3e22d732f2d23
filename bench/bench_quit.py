"""Quit mid-job (issue 12.11): from Ctrl+Q ("Quit now") to the window hidden, to the
engine closed (job back in the queue), and to the GPU worker process gone. The real
window, engine and the built-in tiny model on CPU, once on a quiet machine and once
with CPU burners on every core (a "busy machine"). Target: the window goes at once;
the whole shutdown is bounded by the worker's stop grace (2 s) plus a little.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_quit.py
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil
import qasync
from _harness import record

from desktop_app.bootstrap import open_app
from desktop_app.domain.request import GenerationRequest, RouteMode, RoutingPolicy
from desktop_app.ui.app import build_window, make_application
from desktop_app.ui.main_window import CloseMode


def burn() -> None:  # a CPU burner for the busy-machine round
    while True:
        pass


async def one_quit(home: Path) -> tuple[float, float, float]:
    env = {"IMAGEDESK_HOME": str(home), "IMAGEDESK_LOCAL__MODEL": "builtin:tiny",
           "IMAGEDESK_LOCAL__DEVICE": "cpu"}
    ctx = open_app(env)
    window = build_window(ctx)
    window.show()
    await ctx.engine.start()
    window.load()
    local = next(s.provider for s in ctx.engine.slots if s.name == "local")
    job = await ctx.engine.submit(GenerationRequest(
        prompt="a slow lighthouse", width=256, height=256, steps=150, n=4,
        policy=RoutingPolicy(mode=RouteMode.LOCAL_ONLY)))
    while getattr(local, "worker_pid", None) is None or job.id not in ctx.engine.running_job_ids:
        await asyncio.sleep(0.05)
    await asyncio.sleep(3.0)  # well into the denoising
    worker = psutil.Process(local.worker_pid)  # type: ignore[attr-defined]
    finished = asyncio.Event()
    window.shutdown_finished.connect(finished.set)
    window.ask_close_mode = lambda: CloseMode.QUIT  # type: ignore[method-assign]
    started = time.perf_counter()
    window.close()
    hidden = time.perf_counter() - started
    await finished.wait()
    closed = time.perf_counter() - started
    while worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE:
        await asyncio.sleep(0.01)
    gone = time.perf_counter() - started
    return hidden, closed, gone


def main() -> None:
    app = make_application([])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    lines = []
    with loop, tempfile.TemporaryDirectory() as tmp:
        for label in ("quiet machine", "busy machine"):
            burners = []
            if label == "busy machine":
                burners = [multiprocessing.Process(target=burn, daemon=True)
                           for _ in range(os.cpu_count() or 2)]
                for b in burners:
                    b.start()
            try:
                hidden, closed, gone = loop.run_until_complete(one_quit(Path(tmp) / label))
            finally:
                for b in burners:
                    b.kill()
                    b.join()
            lines.append(f"{label}: quit mid-job (256 px, 150 steps) -> window hidden "
                         f"{hidden * 1000:.0f} ms, engine closed and job requeued "
                         f"{closed:.2f} s, GPU worker gone {gone:.2f} s")
    record("Quit mid-job (bench/bench_quit.py)", lines)


if __name__ == "__main__":
    main()
