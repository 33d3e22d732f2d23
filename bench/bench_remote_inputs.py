"""Input images to remote workers (issue 13): the desktop's upload and the worker's
verified fetch of a job's source image, against the same-run baseline of moving
the same bytes as a result (``results.store`` + ``results.fetch``, what text jobs
already pay), through a Redis hash and through a shared folder, for incompressible
PNGs of 0.2, 0.8 and 3 MB. Also the Redis memory left after 20 jobs (inputs are
deleted by the desktop when the job ends).

    .venv/bin/python bench/bench_remote_inputs.py
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _harness import median, record
from bench_remote import PASSWORD, noise_png, start_redis

from desktop_app.domain.images import GeneratedImage
from desktop_app.providers.remote_bullmq import results
from desktop_app.providers.remote_bullmq.connection import client as redis_client
from desktop_app.providers.remote_bullmq.protocol import Keys, ResultManifest, Transport

ROUNDS = 20
SIDES = {"0.2 MB": 256, "0.8 MB": 512, "3 MB": 1024}


async def one_size(url: str, folder: Path, data: bytes) -> dict[str, float]:
    blobs = redis_client(url, PASSWORD, decode=False)
    keys = Keys("bench")
    sha = hashlib.sha256(data).hexdigest()
    image = GeneratedImage(data, "png", 1, 1, "local", "m", 1)
    timings: dict[str, list[float]] = {k: [] for k in (
        "inputs redis", "results redis", "inputs folder", "results folder")}
    try:
        for i in range(ROUNDS):
            for transport, where in ((Transport.REDIS, "redis"), (Transport.FOLDER, "folder")):
                start = time.perf_counter()
                manifest = await results.upload_inputs(
                    [(sha, data)], keys=keys, job_id=f"j{i}", transport=transport, blobs=blobs,
                    folder=folder, ttl_s=600, max_bytes=2**30)
                got = await results.fetch_inputs(manifest, blobs=blobs, folder=folder)
                await results.remove_inputs(manifest, blobs=blobs, folder=folder)
                timings[f"inputs {where}"].append(time.perf_counter() - start)
                assert got[sha] == data

                start = time.perf_counter()
                kind, location, entries = await results.store(
                    [image], keys=keys, job_id=f"j{i}", token="t", transport=transport,
                    blobs=blobs, folder=folder, ttl_s=600, max_bytes=2**30)
                back = await results.fetch(ResultManifest(kind, location, entries, "w", "m", 0.0),
                                           blobs=blobs, folder=folder)
                timings[f"results {where}"].append(time.perf_counter() - start)
                assert back == [data]
        info = await blobs.info("memory")
        timings["redis used MB after"] = [info["used_memory"] / 2**20]
    finally:
        await blobs.aclose()
    return {k: median(v) for k, v in timings.items()}


async def main() -> None:
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server, url = start_redis(root)
        try:
            for label, side in SIDES.items():
                data = noise_png(side)
                figures = await one_size(url, root / "shared", data)
                for where in ("redis", "folder"):
                    ours, base = figures[f"inputs {where}"], figures[f"results {where}"]
                    line = (f"{label} ({len(data) / 2**20:.2f} MiB) via {where}: input upload + "
                            f"verified fetch median {ours * 1000:.1f} ms vs moving the same "
                            f"bytes as a result {base * 1000:.1f} ms, ratio {ours / base:.2f} "
                            f"({ROUNDS} rounds)")
                    print(line)
                    lines.append(line)
                left = f"{label}: Redis used memory after {ROUNDS} jobs " \
                       f"{figures['redis used MB after']:.1f} MB (inputs deleted at job end)"
                print(left)
                lines.append(left)
        finally:
            server.terminate()
            server.wait(10)
    record("bench_remote_inputs.py — input images to remote workers (issue 13)", lines)


if __name__ == "__main__":
    asyncio.run(main())
