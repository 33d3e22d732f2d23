"""The cloud path under load (issue 4, item 4), with the real OpenAI provider and
SDK against the fake server on 127.0.0.1:

1. Failover latency: the server answers 503 (retries off: one attempt), and we
   time from the 503 leaving the server, and from the provider raising the
   mapped error, to the next provider's ``generate`` starting. ~200 jobs.
2. Throughput of N concurrent cloud jobs (N = 1, 4, 16, 64) against a server
   that answers at once with a small image, run four ways at the same
   concurrency: raw SDK calls, the provider alone, ``run_job`` (routing, breaker,
   gate, limiter, retry, metrics, events), and the whole ``Engine`` (SQLite
   queue, image files, gallery rows). The server runs in its own process so
   that it does not share the client's GIL.

Images are dall-e-2's 256x256, the smallest size any model accepts (gpt-image-2
takes at least 655,360 pixels): the fake server renders the size asked for.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fakes

import openai
from _harness import median, percentile, record

from desktop_app.domain.errors import JobFailed, ProviderError
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.engine import Engine
from desktop_app.engine.events import EventHub
from desktop_app.engine.failover import JobContext, run_job
from desktop_app.engine.metrics import Metrics
from desktop_app.engine.runner import RunnerSettings
from desktop_app.engine.saving import ImageSaver
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import (
    CancelToken,
    Capabilities,
    ConnectionOutcome,
    ConnectionReport,
    Health,
    HealthState,
    ImageProvider,
    ProgressCallback,
    ProviderKind,
    SizeRule,
)
from desktop_app.providers.openai_images import (
    OpenAIImagesConfig,
    OpenAIImagesProvider,
)
from desktop_app.resilience.breaker import BreakerConfig, CircuitBreaker
from desktop_app.resilience.clock import SystemClock
from desktop_app.resilience.cooldown import CooldownGate
from desktop_app.resilience.rate_limit import ProviderRateLimiter, RateSpec
from desktop_app.resilience.retry import RetryPolicy
from desktop_app.store.database import open_database
from desktop_app.store.gallery import Gallery
from desktop_app.store.jobs import JobQueue
from desktop_app.store.metrics import MetricsStore
from tests.fakes import fake_openai
from tests.fakes.fake_openai import FakeOpenAI, Fault, Reply

KEY = "sk-bench-NotARealKey000000"
MODEL, SIZE = "dall-e-2", 256
REQ = GenerationRequest(prompt="a lighthouse at dusk", width=SIZE, height=SIZE, seed=1)
FAILOVER_JOBS, FAILOVER_WARMUP = 200, 20
CONCURRENCY = (1, 4, 16, 64)
JOBS_PER_RUN = 256
REPEATS = 3
CLOCK = SystemClock()


# -- helpers ---------------------------------------------------------------------------


def make_openai(base_url: str) -> OpenAIImagesProvider:
    return OpenAIImagesProvider(OpenAIImagesConfig(model=MODEL, base_url=base_url,
                                                   timeout_s=30.0, deadline_s=60.0,
                                                   stream_previews=False), lambda: KEY)


def make_slot(provider: ImageProvider, priority: int, concurrency: int) -> ProviderSlot:
    return ProviderSlot(
        provider=provider, breaker=CircuitBreaker(provider.name, BreakerConfig.cloud(), CLOCK),
        gate=CooldownGate(CLOCK), retry=RetryPolicy(max_attempts=1), priority=priority,
        concurrency=concurrency,
        limiter=ProviderRateLimiter(provider.name, [RateSpec(10**9, 60)], clock=CLOCK))


def make_ctx(hub: EventHub, metrics: Metrics) -> JobContext:
    return JobContext(job_id=1, hub=hub, metrics=metrics, clock=CLOCK, rng=random.Random(1),
                      cancel=CancelToken(), deadline=CLOCK.monotonic() + 60)


class NextProvider:
    """The provider after the cloud: notes when it is asked, answers at once."""

    name = "local"
    kind = ProviderKind.LOCAL

    def __init__(self) -> None:
        self.started: list[float] = []

    def capabilities(self) -> Capabilities:
        return Capabilities(sizes=SizeRule(), max_images_per_call=4, supports_seed=True)

    async def health(self) -> Health:
        return Health(HealthState.READY)

    async def test_connection(self) -> ConnectionReport:
        return ConnectionReport(self.name, ConnectionOutcome.PASSED, "ready")

    async def generate(self, request: GenerationRequest, progress: ProgressCallback,
                       cancel: CancelToken) -> list[GeneratedImage]:
        self.started.append(time.perf_counter())
        return [GeneratedImage(data=b"\x89PNG", format="png", width=SIZE, height=SIZE,
                               provider=self.name, model="none")]

    async def close(self) -> None:
        pass


class TimedProvider:
    """Wraps the OpenAI provider and notes when its error leaves it."""

    def __init__(self, inner: OpenAIImagesProvider) -> None:
        self.inner = inner
        self.raised: list[float] = []
        self.name, self.kind = inner.name, inner.kind

    def capabilities(self) -> Capabilities:
        return self.inner.capabilities()

    async def health(self) -> Health:
        return await self.inner.health()

    async def test_connection(self) -> ConnectionReport:
        return ConnectionReport(self.name, ConnectionOutcome.PASSED, "ready")

    async def generate(self, request: GenerationRequest, progress: ProgressCallback,
                       cancel: CancelToken) -> list[GeneratedImage]:
        try:
            return await self.inner.generate(request, progress, cancel)
        except ProviderError:
            self.raised.append(time.perf_counter())
            raise

    async def close(self) -> None:
        await self.inner.close()


# -- 1. failover latency ---------------------------------------------------------------


async def failover_latency() -> list[str]:
    sent: list[float] = []
    original = fake_openai._Handler._fault_server_error

    def timed(handler: Any, reply: Reply, body: dict[str, Any]) -> None:
        original(handler, reply, body)  # the 503 is written and flushed
        sent.append(time.perf_counter())

    fake_openai._Handler._fault_server_error = timed  # type: ignore[method-assign,assignment]
    try:
        with FakeOpenAI(api_key=KEY) as server:
            server.default = Reply(Fault.SERVER_ERROR, status=503)
            cloud = TimedProvider(make_openai(server.base_url))
            local = NextProvider()
            slots = [make_slot(cloud, 0, 2), make_slot(local, 10, 1)]
            hub, metrics = EventHub(), Metrics()
            hub.subscribe(lambda event: None)
            job_start: list[float] = []
            for _ in range(FAILOVER_WARMUP + FAILOVER_JOBS):
                slots[0].breaker.reset("benchmark: measure every job's failover")
                job_start.append(time.perf_counter())
                outcome = await run_job(REQ, slots, make_ctx(hub, metrics))
                assert outcome.provider == "local", outcome.attempts
            await cloud.close()
    finally:
        fake_openai._Handler._fault_server_error = original  # type: ignore[method-assign]
    assert len(sent) == len(cloud.raised) == len(local.started) == len(job_start)
    keep = slice(FAILOVER_WARMUP, None)
    from_503 = [(n - s) * 1000 for s, n in zip(sent[keep], local.started[keep], strict=True)]
    from_raise = [(n - r) * 1000 for r, n in zip(cloud.raised[keep], local.started[keep],
                                                 strict=True)]
    whole = [(n - j) * 1000 for j, n in zip(job_start[keep], local.started[keep], strict=True)]

    def fig(values: list[float]) -> str:
        return f"median {median(values):.2f} ms, p95 {percentile(values, 95):.2f} ms"

    return [
        f"failover, 503 once per job, retries off ({FAILOVER_JOBS} jobs, run_job, real SDK "
        f"over loopback): from the 503 leaving the server to the next provider starting: "
        f"{fig(from_503)}",
        f"  of which from the provider raising Transient to the next provider starting "
        f"(engine: breaker, metrics, events, next candidate): {fig(from_raise)}",
        f"  from the job starting to the next provider starting (the whole failed cloud "
        f"call included): {fig(whole)}",
    ]


# -- 2. throughput -----------------------------------------------------------------------


def serve(conn: Connection) -> None:
    """Child process: a fake server answering every request with an image."""
    with FakeOpenAI(api_key=KEY) as server:
        conn.send(server.base_url)
        conn.recv()


async def workers(n: int, jobs: int, one: Callable[[], Awaitable[object]]) -> float:
    """Jobs per second with ``n`` workers, each running jobs one after another."""
    left = [jobs]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            await one()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(n)))
    return jobs / (time.perf_counter() - started)


async def raw_sdk(base_url: str, n: int) -> float:
    client = openai.AsyncOpenAI(api_key=KEY, base_url=base_url, max_retries=0, timeout=30.0)

    async def one() -> None:
        response = await client.images.generate(model=MODEL, prompt=REQ.prompt, n=1,
                                                size=f"{SIZE}x{SIZE}",
                                                response_format="b64_json")
        assert response.data and response.data[0].b64_json

    try:
        return await workers(n, JOBS_PER_RUN, one)
    finally:
        await client.close()


async def provider_only(base_url: str, n: int) -> float:
    provider = make_openai(base_url)

    async def one() -> None:
        images = await provider.generate(REQ, lambda update: None, CancelToken())
        assert len(images) == 1

    try:
        return await workers(n, JOBS_PER_RUN, one)
    finally:
        await provider.close()


async def through_run_job(base_url: str, n: int) -> float:
    provider = make_openai(base_url)
    slots = [make_slot(provider, 0, n)]
    hub, metrics = EventHub(), Metrics()
    hub.subscribe(lambda event: None)

    async def one() -> None:
        try:
            outcome = await run_job(REQ, slots, make_ctx(hub, metrics))
        except JobFailed as error:
            raise AssertionError(error.message) from None
        assert outcome.provider == "openai"

    try:
        return await workers(n, JOBS_PER_RUN, one)
    finally:
        await provider.close()


async def through_engine(base_url: str, n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        conn = open_database(folder / "imagedesk.sqlite3")
        engine = Engine(queue=JobQueue(conn), gallery=Gallery(conn),
                        metrics_store=MetricsStore(conn),
                        saver=ImageSaver(folder / "gallery", folder / "thumbs"),
                        slots=[make_slot(make_openai(base_url), 0, n)], clock=CLOCK,
                        runner_settings=RunnerSettings(job_deadline_s=60, max_parallel_jobs=n))
        try:
            await engine.pause()
            for _ in range(JOBS_PER_RUN):
                await engine.submit(REQ)
            started = time.perf_counter()
            await engine.resume()
            await engine.run_until_idle()
            rate = JOBS_PER_RUN / (time.perf_counter() - started)
            counts = await engine.job_counts()
            assert sum(counts.values()) == JOBS_PER_RUN, counts
            done = [s for s, c in counts.items() if c and s.value != "succeeded"]
            assert not done, counts
        finally:
            await engine.close()
            conn.close()
    return rate


WAYS: dict[str, Callable[[str, int], Awaitable[float]]] = {
    "raw SDK": raw_sdk,
    "provider": provider_only,
    "run_job": through_run_job,
    "Engine": through_engine,
}


async def throughput(base_url: str) -> list[str]:
    for way in WAYS.values():  # warm-up: imports, connection pools, price table
        await way(base_url, 4)
    lines = [f"throughput, {JOBS_PER_RUN} jobs per run, fake server in its own process "
             f"answering at once with a {SIZE}x{SIZE} PNG ({MODEL}); jobs/s, median of "
             f"{REPEATS} interleaved runs:"]
    for n in CONCURRENCY:
        rates: dict[str, list[float]] = {name: [] for name in WAYS}
        for _ in range(REPEATS):
            for name, way in WAYS.items():
                rates[name].append(await way(base_url, n))
        sdk = median(rates["raw SDK"])
        shown = ", ".join(f"{name} {median(r):.0f}" for name, r in rates.items())
        ratio = ", ".join(f"{name} {median(r) / sdk:.2f}" for name, r in rates.items()
                          if name != "raw SDK")
        per_job = (1 / median(rates["run_job"]) - 1 / median(rates["provider"])) * 1000
        lines.append(f"  N={n}: {shown} (vs raw SDK: {ratio}); run_job adds "
                     f"{per_job:.2f} ms of CPU per job over the provider alone")
    return lines


async def main() -> None:
    lines = await failover_latency()
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=serve, args=(child,), daemon=True)
    process.start()
    try:
        base_url = parent.recv()
        lines += await throughput(base_url)
    finally:
        parent.send("stop")
        process.join(timeout=10)
    record("bench_cloud.py — cloud failover latency and concurrent throughput", lines)


if __name__ == "__main__":
    asyncio.run(main())
