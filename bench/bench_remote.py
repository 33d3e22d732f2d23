"""Remote GPU workers through BullMQ on a local redis-server (issue 8), tiny model, CPU.

(a) throughput with 1, 2 and 4 worker processes (torch_threads=1 each) serving a
    burst of jobs submitted at once through the provider; ratio to one worker;
(b) added latency per job: the same job one at a time through the remote provider
    (one warm worker) vs the in-process local provider (warm);
(c) following progress: delay from a worker's ``job.updateProgress`` to the desktop,
    through BullMQ's event stream (QueueEvents) vs polling the job every 100 ms;
(d) moving a result: base64 in the job's return value vs raw bytes in a result hash
    (what ships) vs a shared folder, for incompressible PNGs of 0.2, 0.8 and 3 MB,
    and the Redis memory each leaves behind after 20 jobs.

    .venv/bin/python bench/bench_remote.py
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import median, percentile, record
from bullmq import Queue, QueueEvents, Worker

from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import CancelToken
from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider
from desktop_app.providers.remote_bullmq import RemoteConfig, RemoteProvider
from desktop_app.providers.remote_bullmq import results as transport
from desktop_app.providers.remote_bullmq.connection import client as redis_client
from desktop_app.providers.remote_bullmq.protocol import Keys, Transport

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "bench password"
BURST, SIZE, STEPS = 16, 64, 20
LATENCY_ROUNDS = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    conf = folder / "redis.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {folder}\nappendonly yes\n"
                    f'appendfsync everysec\nsave ""\nrequirepass "{PASSWORD}"\n')
    server = subprocess.Popen(["redis-server", str(conf)], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    return server, f"redis://127.0.0.1:{port}/0"


def start_worker(url: str, queue: str, data: Path, name: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "IMAGEDESK_REMOTE_PASSWORD": PASSWORD, "PYTHONPATH": str(REPO),
           "TRANSFORMERS_VERBOSITY": "error"}
    return subprocess.Popen(
        [sys.executable, "-m", "desktop_app.providers.remote_bullmq.worker", "--redis", url,
         "--queue", queue, "--data-dir", str(data), "--name", name, "--torch-threads", "1",
         "--heartbeat-s", "0.5"], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


async def wait_ready(remote: RemoteProvider, count: int) -> None:
    while True:
        health = await remote.health()
        if int(health.details.get("workers_ready", "0")) >= count:
            return
        await asyncio.sleep(0.3)


def job(seed: int, steps: int = STEPS) -> GenerationRequest:
    return GenerationRequest(prompt="a lighthouse at dusk", width=SIZE, height=SIZE,
                             steps=steps, seed=seed)


async def throughput(url: str, data: Path) -> dict[int, float]:
    rates: dict[int, float] = {}
    for count in (1, 2, 4):
        queue = f"tp{count}"
        remote = RemoteProvider(RemoteConfig(redis_url=url, queue=queue, health_cache_s=0),
                                lambda: PASSWORD)
        workers = [start_worker(url, queue, data / f"w{i}", f"w{i}") for i in range(count)]
        try:
            await wait_ready(remote, count)
            started = time.perf_counter()
            await asyncio.gather(*(remote.generate(job(i), lambda _: None, CancelToken())
                                   for i in range(BURST)))
            rates[count] = BURST / (time.perf_counter() - started)
        finally:
            await remote.close()
            for worker in workers:
                stop_worker(worker)
    return rates


async def latency(url: str, data: Path) -> tuple[list[float], list[float]]:
    local = LocalDiffusionProvider(LocalDiffusionConfig(data_dir=data / "w0", torch_threads=1,
                                                        preview_every=0))
    remote = RemoteProvider(RemoteConfig(redis_url=url, queue="lat", health_cache_s=0),
                            lambda: PASSWORD)
    worker = start_worker(url, "lat", data / "w0", "lat")
    local_s: list[float] = []
    remote_s: list[float] = []
    try:
        await local.generate(job(0, 4), lambda _: None, CancelToken())  # warm
        await wait_ready(remote, 1)
        await remote.generate(job(0, 4), lambda _: None, CancelToken())  # warm the path
        for i in range(LATENCY_ROUNDS):
            for provider, times in ((local, local_s), (remote, remote_s)):
                started = time.perf_counter()
                await provider.generate(job(i, 4), lambda _: None, CancelToken())
                times.append(time.perf_counter() - started)
    finally:
        await local.close()
        await remote.close()
        stop_worker(worker)
    return local_s, remote_s


async def progress_delay(url: str) -> tuple[list[float], list[float], int]:
    """Seconds from updateProgress to the desktop seeing it: events vs 100 ms polling."""
    conn = redis_client(url, PASSWORD)
    queue = Queue("prog", {"connection": conn})

    async def processor(job_: object, token: str) -> str:
        for step in range(20):
            await job_.updateProgress({"sent": time.time(), "step": step})  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)
        return "done"

    worker = Worker("prog", processor, {"connection": redis_client(url, PASSWORD)})
    events = QueueEvents("prog", {"connection": redis_client(url, PASSWORD)})
    via_events: list[float] = []
    events.on("progress", lambda args, _id: via_events.append(time.time() - args["data"]["sent"]))
    await asyncio.sleep(0.3)
    polled: list[float] = []
    polls = 0
    for _ in range(5):
        added = await queue.add("p", {}, {"removeOnComplete": True})
        last_step = -1
        while True:
            fetched = await queue.getJob(added.id)
            polls += 1
            if fetched is None or fetched.finishedOn:
                break
            data = fetched.progress
            if isinstance(data, dict) and data["step"] != last_step:
                last_step = data["step"]
                polled.append(time.time() - data["sent"])
            await asyncio.sleep(0.1)
    await worker.close()
    await events.close()
    await queue.close()
    return via_events, polled, polls


def noise_png(side: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, "PNG")
    return buffer.getvalue()


async def transports(url: str, folder: Path) -> list[str]:
    lines = []
    text = redis_client(url, PASSWORD)
    blobs = redis_client(url, PASSWORD, decode=False)
    keys = Keys("tr")
    for side in (256, 512, 1024):
        data = noise_png(side)
        image = GeneratedImage(data, "png", side, side, "local", "bench", 1)
        inline: list[float] = []
        blob: list[float] = []
        files: list[float] = []
        for _ in range(10):
            started = time.perf_counter()
            value = json.dumps({"images": [base64.b64encode(data).decode()]})
            await text.set("tr:inline", value)
            stored = await text.get("tr:inline")
            assert stored is not None
            back = json.loads(stored)
            assert base64.b64decode(back["images"][0]) == data
            inline.append(time.perf_counter() - started)
            for kind, times in ((Transport.REDIS, blob), (Transport.FOLDER, files)):
                started = time.perf_counter()
                how, where, entries = await transport.store(
                    [image], keys=keys, job_id="j", token="t", transport=kind, blobs=blobs,
                    folder=folder, ttl_s=60, max_bytes=2**30)
                from desktop_app.providers.remote_bullmq.protocol import ResultManifest
                manifest = ResultManifest(how, where, entries, "w", "m", 0.0)
                got = await transport.fetch(manifest, blobs=blobs, folder=folder)
                assert got == [data]
                times.append(time.perf_counter() - started)
        lines.append(
            f"{len(data) / 2**20:.2f} MB PNG ({side} px noise): base64 return value "
            f"{median(inline) * 1000:.1f} ms ({len(value) / 2**20:.2f} MB in Redis, copied "
            f"into the event stream too), result hash {median(blob) * 1000:.1f} ms, shared "
            f"folder {median(files) * 1000:.1f} ms (fsync) — median of 10 write+read")
    # What a real queue keeps: 20 jobs whose return value inlines a 0.8 MB image.
    conn = redis_client(url, PASSWORD)
    queue = Queue("mem", {"connection": conn})
    image_b64 = base64.b64encode(noise_png(512)).decode()

    async def inline_processor(job_: object, token: str) -> dict[str, str]:
        return {"image": image_b64}

    before = (await text.info("memory"))["used_memory"]
    worker = Worker("mem", inline_processor, {"connection": redis_client(url, PASSWORD)})
    for _ in range(20):
        await queue.add("m", {}, {"removeOnComplete": True})
    while (await queue.getJobCounts("completed", "waiting", "active"))["waiting"] or \
            (await queue.getJobCounts("active"))["active"]:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    after = (await text.info("memory"))["used_memory"]
    lines.append(f"20 jobs returning a base64 0.8 MB image with removeOnComplete=true still "
                 f"hold {(after - before) / 2**20:.1f} MB of Redis memory (the event stream "
                 "keeps every return value until trimmed at ~10,000 events); the result hash is "
                 "deleted as the desktop reads it (asserted by the tests)")
    await worker.close()
    await queue.close()
    for client in (text, blobs):
        await client.aclose()
    return lines


async def main() -> None:
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server, url = start_redis(root)
        try:
            rates = await throughput(url, root / "data")
            local_s, remote_s = await latency(url, root / "data")
            via_events, polled, polls = await progress_delay(url)
            moved = await transports(url, root / "shared")
        finally:
            server.terminate()
            server.wait(10)
    one = rates[1]
    added = [r - x for r, x in zip(remote_s, local_s, strict=True)]
    record("bench_remote.py — remote workers through BullMQ on Redis (issue 8)", [
        f"throughput, {BURST} jobs of {SIZE} px / {STEPS} steps submitted at once, "
        f"torch_threads=1 per worker, 2-core machine: "
        + ", ".join(f"{n} worker(s) {r:.2f} jobs/s ({r / one:.2f}x)" for n, r in rates.items()),
        f"one job at a time ({SIZE} px / 4 steps, warm): in-process local median "
        f"{median(local_s) * 1000:.0f} ms, remote median {median(remote_s) * 1000:.0f} ms; "
        f"added per job median {median(added) * 1000:.0f} ms, p95 "
        f"{percentile(added, 95) * 1000:.0f} ms ({LATENCY_ROUNDS} rounds)",
        f"progress delay, updateProgress -> desktop: event stream (QueueEvents) median "
        f"{median(via_events) * 1000:.1f} ms, p95 {percentile(via_events, 95) * 1000:.1f} ms; "
        f"polling every 100 ms median {median(polled) * 1000:.1f} ms, p95 "
        f"{percentile(polled, 95) * 1000:.1f} ms, {polls} job reads for 5 one-second jobs, "
        f"and it saw {len(polled)} of 100 steps (events: {len(via_events)})",
        *moved,
    ])


if __name__ == "__main__":
    asyncio.run(main())
