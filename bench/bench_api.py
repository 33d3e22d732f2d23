"""The local HTTP API's overhead per request over ``Engine.submit`` directly, on an
instant provider (target < 2 ms median), and its throughput with 16 clients (issue 16).

Both paths run the same engine on a temporary store: submit, wait, read the image
files. The API path adds HTTP on 127.0.0.1 (aiohttp client and server on one loop,
as a tool on the same machine would call it), the guard, JSON and base64."""

from __future__ import annotations

import asyncio
import io
import random
import tempfile
import time
from pathlib import Path

import aiohttp
from _harness import median, percentile, record
from PIL import Image

from desktop_app.api.server import ApiServer
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.engine import Engine
from desktop_app.engine.saving import ImageSaver
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import (
    CancelToken,
    Capabilities,
    Health,
    HealthState,
    ProgressCallback,
    ProviderKind,
    SizeRule,
)
from desktop_app.resilience.breaker import BreakerConfig, CircuitBreaker
from desktop_app.resilience.clock import SystemClock
from desktop_app.resilience.cooldown import CooldownGate
from desktop_app.resilience.retry import RetryPolicy
from desktop_app.store.database import open_database
from desktop_app.store.gallery import Gallery
from desktop_app.store.jobs import JobQueue
from desktop_app.store.metrics import MetricsStore

ROUNDS = 200
CLIENTS = 16
PER_CLIENT = 20
TOKEN = "bench-token-0123456789abcdef"


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 40, 200)).save(out, format="PNG")
    return out.getvalue()


PNG = _png()


class InstantProvider:
    name = "instant"
    kind = ProviderKind.LOCAL

    def capabilities(self) -> Capabilities:
        return Capabilities(sizes=SizeRule(), max_images_per_call=4, supports_seed=True)

    async def health(self) -> Health:
        return Health(HealthState.READY)

    async def generate(self, request: GenerationRequest, progress: ProgressCallback,
                       cancel: CancelToken) -> list[GeneratedImage]:
        return [GeneratedImage(data=PNG, format="png", width=64, height=64,
                               provider=self.name, model="none", seed=request.seed or 0)]

    async def close(self) -> None:
        pass


def _engine(folder: Path) -> Engine:
    clock = SystemClock()
    provider = InstantProvider()
    slot = ProviderSlot(provider=provider,  # type: ignore[arg-type]
                        breaker=CircuitBreaker(provider.name, BreakerConfig.local_gpu(), clock),
                        gate=CooldownGate(clock), retry=RetryPolicy(max_attempts=1),
                        priority=0, concurrency=16)
    conn = open_database(folder / "imagedesk.sqlite3")
    return Engine(queue=JobQueue(conn), gallery=Gallery(conn), metrics_store=MetricsStore(conn),
                  saver=ImageSaver(folder / "gallery", folder / "thumbs"), slots=[slot],
                  rng=random.Random(1))


async def _direct(engine: Engine) -> float:
    start = time.perf_counter()
    job = await engine.submit(GenerationRequest(prompt="a bench", width=64, height=64))
    done = await engine.wait_for(job.id)
    for record_ in await engine.images_of(done):
        await asyncio.to_thread(record_.path.read_bytes)
    return time.perf_counter() - start


async def _through_api(session: aiohttp.ClientSession, url: str) -> float:
    start = time.perf_counter()
    async with session.post(url + "/v1/images/generations",
                            json={"prompt": "a bench", "size": "64x64"},
                            headers={"Authorization": f"Bearer {TOKEN}"}) as reply:
        await reply.read()
        assert reply.status == 200, reply.status
    return time.perf_counter() - start


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = _engine(Path(folder))
        await engine.start()
        server = ApiServer(engine, TOKEN, port=0)
        await server.start()
        async with aiohttp.ClientSession() as session:
            for _ in range(20):  # warm up both paths
                await _direct(engine)
                await _through_api(session, server.url)
            direct, api = [], []
            for _ in range(ROUNDS):  # interleaved, so load on the machine hits both alike
                direct.append(await _direct(engine))
                api.append(await _through_api(session, server.url))

            async def client() -> list[float]:
                async with aiohttp.ClientSession() as own:
                    return [await _through_api(own, server.url) for _ in range(PER_CLIENT)]

            start = time.perf_counter()
            results = await asyncio.gather(*(client() for _ in range(CLIENTS)))
            took = time.perf_counter() - start
        await server.stop()
        await engine.close()
    answered = sum(len(r) for r in results)
    overhead = median(api) - median(direct)
    lines = [
        f"Engine.submit directly (submit, wait, read the image): median "
        f"{median(direct) * 1e3:.2f} ms, p95 {percentile(direct, 95) * 1e3:.2f} ms",
        f"POST /v1/images/generations (64x64, b64_json): median {median(api) * 1e3:.2f} ms, "
        f"p95 {percentile(api, 95) * 1e3:.2f} ms",
        f"API overhead per request: **{overhead * 1e3:.2f} ms** median (target < 2 ms); "
        f"API / direct: {median(api) / median(direct):.2f}x",
        f"{CLIENTS} clients x {PER_CLIENT} requests: {answered} of {CLIENTS * PER_CLIENT} "
        f"answered in {took:.2f} s, {answered / took:.0f} requests/s",
    ]
    for line in lines:
        print(line)
    record("Local API overhead (bench/bench_api.py)", lines)


if __name__ == "__main__":
    asyncio.run(main())
