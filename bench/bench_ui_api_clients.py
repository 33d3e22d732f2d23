"""The window stays responsive while 32 API clients generate at once (issue 16): the
real window serves the API itself ("Serve the API while ImageDesk is open"), the
built-in tiny model runs every job on the CPU, and 32 clients in another process
post OpenAI-dialect generations together. A 60 Hz Qt timer on the GUI thread records
how late each tick fires, during the burst and, as a baseline in the same run, for
as long again with the window idle. Also counted: requests answered and jobs lost.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_ui_api_clients.py
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import qasync
from _harness import median, percentile, record
from bench_ui_stall import Ticker

from desktop_app.bootstrap import open_app
from desktop_app.ui.app import build_window, make_application

CLIENTS = 32
TOKEN = "bench-token-0123456789abcdef"

CLIENT = textwrap.dedent("""
    import asyncio, json, sys
    import aiohttp

    async def one(session, url, i):
        body = {"prompt": f"a lighthouse, client {i}", "size": "64x64", "model": "local"}
        async with session.post(url, json=body, headers={"Authorization": "Bearer " + sys.argv[2]},
                                timeout=aiohttp.ClientTimeout(total=600)) as reply:
            data = await reply.json()
            return reply.status == 200 and len(data.get("data", [])) == 1

    async def main():
        url = sys.argv[1] + "/v1/images/generations"
        async with aiohttp.ClientSession() as session:
            done = await asyncio.gather(*(one(session, url, i) for i in range(int(sys.argv[3]))),
                                        return_exceptions=True)
        print(json.dumps({"answered": sum(d is True for d in done)}))

    asyncio.run(main())
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(window: object, ctx: object, port: int) -> tuple[list[float], list[float],
                                                                float, int, int]:
    from desktop_app.bootstrap import warm_keys

    engine = ctx.engine  # type: ignore[attr-defined]
    await warm_keys(ctx)  # type: ignore[arg-type]  # as the app starts: keyring off the loop
    await engine.start()
    window.load()  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):  # the window starts serving on its own
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                break
        except OSError:
            await asyncio.sleep(0.05)
    busy = Ticker()
    busy.start()
    started = time.perf_counter()
    clients = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, url, TOKEN, str(CLIENTS), stdout=subprocess.PIPE)
    out, _ = await clients.communicate()
    elapsed = time.perf_counter() - started
    busy.stop()
    answered = int(json.loads(out)["answered"])
    idle = Ticker()
    idle.start()
    await asyncio.sleep(elapsed)
    idle.stop()
    jobs = await engine.jobs()
    lost = CLIENTS - sum(1 for job in jobs if job.request.origin == "api"
                         and job.state.value == "succeeded")
    await engine.close()
    return busy.lateness_ms, idle.lateness_ms, elapsed, answered, lost


def main() -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        os.environ.update(IMAGEDESK_HOME=home, IMAGEDESK_LOCAL__MODEL="builtin:tiny",
                          IMAGEDESK_LOCAL__DEVICE="cpu", IMAGEDESK_UI__SERVE_API="true",
                          IMAGEDESK_UI__API_PORT=str(port), IMAGEDESK_API_TOKEN=TOKEN)
        app = make_application([])
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        ctx = open_app(os.environ)
        window = build_window(ctx)
        window.show()
        with loop:
            busy, idle, elapsed, answered, lost = loop.run_until_complete(
                run(window, ctx, port))
    load = os.getloadavg()
    lines = [
        f"{CLIENTS} clients at once (OpenAI dialect, 64 px, tiny model on CPU): {answered}/"
        f"{CLIENTS} answered in {elapsed:.1f} s, {lost} jobs lost",
        f"GUI-thread 60 Hz timer lateness during the burst over {len(busy)} ticks: worst "
        f"{max(busy):.1f} ms, p99 {percentile(busy, 99):.1f} ms, median {median(busy):.1f} ms",
        f"the same window idle for as long (baseline, same run) over {len(idle)} ticks: "
        f"worst {max(idle):.1f} ms, p99 {percentile(idle, 99):.1f} ms; p99 ratio "
        f"{percentile(busy, 99) / max(0.1, percentile(idle, 99)):.2f}",
        f"load average at the end (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}",
    ]
    record("UI: the window while 32 API clients generate (bench/bench_ui_api_clients.py)",
           lines)


if __name__ == "__main__":
    main()
