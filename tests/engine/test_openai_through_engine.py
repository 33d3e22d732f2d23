"""The real OpenAI provider inside the real engine: the official SDK talks HTTP to
the fake server on 127.0.0.1, and every call goes through the slot's breaker,
cooldown gate, retry policy and the job's deadline, with jobs stored in SQLite
and images written to a gallery folder (issue 4, items 3 and the "Done when").

Breaker and cooldown timing run on a ``FakeClock``; only the deadline test uses
real time, because a trickling server is a real-time fault.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from desktop_app.bootstrap import open_app
from desktop_app.config import AppPaths, Settings, save_settings
from desktop_app.domain.errors import InvalidRequest, Misconfigured, OutOfMemory, ProviderError
from desktop_app.domain.job import Job, JobState, Outcome
from desktop_app.domain.request import GenerationRequest, RouteMode, RoutingPolicy
from desktop_app.engine.engine import Engine
from desktop_app.engine.events import Event
from desktop_app.engine.runner import RunnerSettings
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import ImageProvider
from desktop_app.providers.openai_images import OpenAIImagesConfig, OpenAIImagesProvider
from desktop_app.resilience.breaker import BreakerConfig, BreakerState
from desktop_app.resilience.clock import Clock, FakeClock, SystemClock
from desktop_app.resilience.retry import RetryPolicy
from desktop_app.store.files import read_image_metadata
from tests.fakes.fake_openai import FakeOpenAI, Fault, Reply
from tests.fakes.keyring_memory import InMemoryKeyring, installed_keyring
from tests.fakes.scripted_engine import engine_in, slot_for
from tests.fakes.scripted_provider import ScriptedProvider, Step

KEY = "sk-test-EngineKey7Qp4Zr9Lw2xV"
WRONG_KEY = "sk-test-RevokedKey3Hn8Tb5Ys1"
REQ = GenerationRequest(prompt="a lighthouse at dusk", width=1024, height=1024, seed=5)
OPENAI_FIRST, LOCAL_FIRST = 20, -10  # the local provider's rank against openai's 0


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as fake:
        yield fake


@dataclasses.dataclass
class Rig:
    engine: Engine
    server: FakeOpenAI
    clock: Clock
    local: ScriptedProvider | None
    gallery_dir: Path
    events: list[Event]

    @property
    def openai(self) -> ProviderSlot:
        """OpenAI's slot as the engine has it."""
        return self.engine.slot("openai")

    async def run(self, request: GenerationRequest = REQ) -> Job:
        job = await self.engine.submit(request)
        await self.engine.run_until_idle()
        done = await self.engine.job(job.id)
        assert done is not None and done.state.finished
        return done

    def advance(self, seconds: float) -> None:
        assert isinstance(self.clock, FakeClock)
        self.clock.advance(seconds)


RigMaker = Callable[..., Rig]


@pytest.fixture
async def make_rig(server: FakeOpenAI, tmp_path: Path) -> AsyncIterator[RigMaker]:
    engines: list[Engine] = []

    def make(*, local: list[Step] | None = None, local_rank: int = OPENAI_FIRST,
             retry: RetryPolicy | None = None, key: Callable[[], str | None] = lambda: KEY,
             clock: Clock | None = None, job_deadline_s: float = 60.0,
             local_provider: ImageProvider | None = None, **config: Any) -> Rig:
        clock = clock or FakeClock()
        fields: dict[str, Any] = {"base_url": server.base_url, "deadline_s": 10.0,
                                  "timeout_s": 10.0, "stream_previews": False}
        fields.update(config)
        provider = OpenAIImagesProvider(OpenAIImagesConfig(**fields), key)
        slots = [slot_for(provider, 0, clock=clock, breaker=BreakerConfig.cloud(),
                          retry=retry or RetryPolicy(max_attempts=3, base_s=1.0, max_s=2.0),
                          concurrency=2)]
        scripted = None
        if local is not None:
            scripted = ScriptedProvider("local", script=local)
            slots.append(slot_for(scripted, local_rank, clock=clock, concurrency=1))
        if local_provider is not None:  # a real local provider instead of a scripted one
            slots.append(slot_for(local_provider, local_rank, clock=clock, concurrency=1))
        engine = engine_in(tmp_path, slots, clock=clock, rng=random.Random(4),
                           runner_settings=RunnerSettings(job_deadline_s=job_deadline_s))
        engines.append(engine)
        events: list[Event] = []
        engine.hub.subscribe(events.append)
        return Rig(engine, server, clock, scripted, tmp_path / "gallery", events)

    yield make
    for engine in engines:
        await engine.close()


def image_requests(server: FakeOpenAI) -> int:
    return len(server.image_requests())


# -- breaker ----------------------------------------------------------------------


async def test_a_run_of_server_errors_opens_the_breaker_and_then_openai_is_not_called(
        make_rig: RigMaker) -> None:
    rig = make_rig(local=[], retry=RetryPolicy(max_attempts=2, base_s=1.0, max_s=2.0))
    rig.server.script([Reply(Fault.SERVER_ERROR, status=503),
                       Reply(Fault.SERVER_ERROR, status=502, html=True),
                       Reply(Fault.SERVER_ERROR, status=500),
                       Reply(Fault.SERVER_ERROR, status=503)])

    first = await rig.run()  # two calls (one retry), both 5xx: under min_calls, still closed
    assert first.provider == "local" and image_requests(rig.server) == 2
    assert first.attempts[0].error == "Transient" and "HTTP 502" in first.attempts[0].message
    assert rig.openai.breaker.state is BreakerState.CLOSED

    second = await rig.run()  # four failures in the window: open
    assert second.provider == "local" and image_requests(rig.server) == 4
    assert rig.openai.breaker.state is BreakerState.OPEN

    third = await rig.run()
    assert image_requests(rig.server) == 4  # the open breaker kept the call from the network
    skip = third.attempts[0]
    assert skip.provider == "openai" and skip.outcome is Outcome.SKIPPED
    assert skip.message.startswith("breaker open (4 of 4 calls failed); next try in 30 s")
    assert third.provider == "local" and third.state is JobState.SUCCEEDED

    rig.advance(30.5)  # open time is up: one trial call, which succeeds and closes it
    fourth = await rig.run()
    assert fourth.provider == "openai" and image_requests(rig.server) == 5
    assert rig.openai.breaker.state is BreakerState.CLOSED


# -- refusals ---------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "model", "says"), [
    (Fault.MODERATION, "gpt-image-2", "rejected by the safety system"),
    (Fault.CONTENT_POLICY, "dall-e-3", "rejected as a result of our safety system"),
])
async def test_a_refusal_is_never_retried_never_opens_the_breaker_and_does_not_fail_over(
        make_rig: RigMaker, fault: Fault, model: str, says: str) -> None:
    rig = make_rig(local=[], model=model)
    rig.server.script([fault] * 5)  # more refusals than the breaker's min_calls
    for count in range(1, 6):
        job = await rig.run()
        assert job.state is JobState.FAILED and job.error == "ContentRejected"
        assert job.error_message is not None and says in job.error_message
        assert "failover after a refusal is off" in job.error_message
        assert image_requests(rig.server) == count  # no second request
    assert rig.local is not None and rig.local.calls == []
    assert rig.openai.breaker.state is BreakerState.CLOSED

    rig.server.enqueue(fault)
    allowed = await rig.run(REQ.replace(policy=RoutingPolicy(allow_failover_after_refusal=True)))
    assert allowed.state is JobState.SUCCEEDED and allowed.provider == "local"
    assert [(a.provider, a.error) for a in allowed.attempts] == [
        ("openai", "ContentRejected"), ("local", None)]
    assert image_requests(rig.server) == 6


# -- rate limits and quota ----------------------------------------------------------


@pytest.mark.parametrize("header", [{"retry_after": 20}, {"retry_after_ms": 20_000}],
                         ids=["retry-after", "retry-after-ms"])
async def test_retry_after_keeps_openai_cooling_down_until_the_window_has_passed(
        make_rig: RigMaker, header: dict[str, float]) -> None:
    rig = make_rig(local=[])
    rig.server.enqueue(Fault.RATE_LIMIT, **header)

    limited = await rig.run()  # 20 s is too long to wait on the same provider: fail over
    assert limited.provider == "local" and image_requests(rig.server) == 1
    assert limited.attempts[0].error == "RateLimited" and "20 s" in limited.attempts[0].message

    rig.advance(15)
    cooling = await rig.run()
    assert image_requests(rig.server) == 1
    skip = cooling.attempts[0]
    assert skip.provider == "openai" and skip.outcome is Outcome.SKIPPED
    assert skip.message.startswith("cooling down after a rate limit (")
    assert skip.message.endswith("; 5 s left")
    assert cooling.provider == "local"

    rig.advance(5.5)
    after = await rig.run()
    assert after.provider == "openai" and image_requests(rig.server) == 2
    assert rig.openai.breaker.state is BreakerState.CLOSED  # a 429 is no breaker failure


async def test_a_short_retry_after_is_waited_out_on_openai_itself(make_rig: RigMaker) -> None:
    rig = make_rig(local=[])
    rig.server.enqueue(Fault.RATE_LIMIT, retry_after_ms=400)
    job = await rig.run()
    assert job.provider == "openai" and image_requests(rig.server) == 2
    assert rig.local is not None and rig.local.calls == []
    assert isinstance(rig.clock, FakeClock)
    assert sum(rig.clock.slept) >= 0.4  # backoff and gate together waited the server's 400 ms


async def test_insufficient_quota_is_not_retried_and_forces_the_breaker_open(
        make_rig: RigMaker) -> None:
    rig = make_rig(local=[], retry=RetryPolicy(max_attempts=5, base_s=0.1, max_s=0.2))
    rig.server.enqueue(Fault.QUOTA)
    job = await rig.run()
    assert image_requests(rig.server) == 1
    assert job.attempts[0].error == "QuotaExhausted" and job.provider == "local"
    snap = rig.openai.breaker.snapshot()
    assert snap.state is BreakerState.FORCED_OPEN and snap.reason.startswith("check billing")

    rig.advance(3600)  # only a reset leaves FORCED_OPEN, however long we wait
    later = await rig.run()
    assert image_requests(rig.server) == 1
    assert later.attempts[0].outcome is Outcome.SKIPPED
    assert later.attempts[0].message.startswith("breaker forced open: check billing")


async def test_a_rejected_key_forces_the_breaker_open_until_the_provider_is_reset(
        make_rig: RigMaker) -> None:
    key = [WRONG_KEY]
    rig = make_rig(local=[], key=lambda: key[0])
    job = await rig.run()
    assert image_requests(rig.server) == 1 and job.provider == "local"
    assert job.attempts[0].error == "Misconfigured"
    assert "the API key was rejected" in job.attempts[0].message
    assert rig.openai.breaker.state is BreakerState.FORCED_OPEN

    skipped = await rig.run()
    assert image_requests(rig.server) == 1
    assert skipped.attempts[0].outcome is Outcome.SKIPPED
    assert "the API key was rejected" in skipped.attempts[0].message

    key[0] = KEY  # the user fixes the key in Settings
    rig.engine.reset_provider("openai", "settings changed")
    assert rig.openai.breaker.state is BreakerState.CLOSED
    fixed = await rig.run()
    assert fixed.provider == "openai" and image_requests(rig.server) == 2


# -- deadline -------------------------------------------------------------------------


async def test_the_job_deadline_cuts_a_trickling_server_and_nothing_starts_after_it(
        make_rig: RigMaker) -> None:
    rig = make_rig(local=[], local_rank=OPENAI_FIRST, clock=SystemClock(), job_deadline_s=1.0,
                   deadline_s=30.0, timeout_s=30.0)  # the provider's own limits are far off
    rig.server.enqueue(Fault.TRICKLE, interval=0.05)
    started = time.perf_counter()
    job = await rig.run()
    elapsed = time.perf_counter() - started
    assert 0.95 <= elapsed < 2.5, f"the job took {elapsed:.2f} s against a 1 s deadline"
    assert job.state is JobState.FAILED and job.error == "Transient"
    assert "did not finish before the job's deadline" in str(job.error_message)
    assert rig.local is not None and rig.local.calls == []
    assert image_requests(rig.server) == 1  # no retry past the deadline


# -- bad payloads ------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault.NOT_AN_IMAGE, Fault.INVALID_BASE64, Fault.OVERSIZED,
                                   Fault.WRONG_SCHEMA, Fault.HTML_200, Fault.MALFORMED_JSON])
async def test_a_bad_payload_fails_the_job_without_a_file_or_gallery_row(
        make_rig: RigMaker, fault: Fault) -> None:
    rig = make_rig(retry=RetryPolicy(max_attempts=2, base_s=0.1, max_s=0.2))
    rig.server.script([fault, fault])
    job = await rig.run()
    assert job.state is JobState.FAILED and job.error == "Transient"
    assert image_requests(rig.server) == 2  # Transient: retried once, bad again
    assert job.image_ids == [] and await rig.engine.search_images() == []
    written = [p for p in rig.gallery_dir.rglob("*") if p.is_file()] if rig.gallery_dir.exists() \
        else []
    assert written == []
    assert rig.openai.breaker.snapshot().calls_in_window == 2  # counted as failures


# -- local fails, openai serves ------------------------------------------------------------


@pytest.mark.parametrize("error", [
    Misconfigured("no CUDA device: install a GPU driver or allow the CPU in Settings"),
    OutOfMemory("CUDA out of memory while decoding 1024x1024"),
], ids=lambda e: type(e).__name__)
async def test_when_local_fails_openai_serves_and_the_png_says_why(
        make_rig: RigMaker, error: ProviderError) -> None:
    rig = make_rig(local=[error], local_rank=LOCAL_FIRST)
    job = await rig.run()
    assert job.state is JobState.SUCCEEDED and job.provider == "openai"
    failed, served = job.attempts
    assert (failed.provider, failed.error, failed.message) == ("local", error.kind, error.message)
    assert served.provider == "openai" and served.cost_usd > 0
    assert job.fallback_reason == f"local: {error.kind} — {error.message}"
    [sent] = rig.server.image_requests()
    assert sent.body is not None and sent.body["model"] == "gpt-image-2"

    [record] = await rig.engine.images_of(job)
    meta = read_image_metadata(record.path)
    assert meta is not None and meta.provenance is not None
    assert (meta.format, meta.width, meta.height) == ("png", 1024, 1024)
    provenance = meta.provenance
    assert provenance["provider"] == "openai" and provenance["model"] == "gpt-image-2"
    assert provenance["cost_usd"] == pytest.approx(served.cost_usd)
    assert record.cost_usd == pytest.approx(served.cost_usd)
    assert provenance["fallback_reason"] == job.fallback_reason
    assert provenance["details"]["cost_source"] == "token usage"


# -- the key stays secret ---------------------------------------------------------------------


async def test_the_api_key_is_in_no_message_file_log_or_image(
        server: FakeOpenAI, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "home"
    env = {"IMAGEDESK_HOME": str(home)}
    paths = AppPaths.under(home).ensure()
    save_settings(Settings().updated({
        "local": {"enabled": False},
        "openai": {"base_url": server.base_url, "stream_previews": False, "rate_limits": [],
                   "timeout_s": 10, "deadline_s": 10},
        "routing": {"retry_max_attempts": 1, "job_deadline_s": 30},
    }), paths.settings_path)
    with installed_keyring(InMemoryKeyring()):
        ctx = open_app(env)
        events: list[Event] = []
        ctx.engine.hub.subscribe(events.append)
        ctx.keys.set("openai", WRONG_KEY)  # the server echoes a rejected key in its 401
        jobs = [await _run(ctx.engine)]
        ctx.keys.set("openai", KEY)
        ctx.key_cache.clear()  # as the settings dialog does after storing a key
        ctx.engine.reset_provider("openai", "settings changed")
        for fault in (Fault.MODERATION, Fault.BAD_REQUEST, Fault.SERVER_ERROR):
            server.enqueue(fault, message=f"echoing the caller's key {KEY} back")
            jobs.append(await _run(ctx.engine))
        jobs.append(await _run(ctx.engine))
        await ctx.engine.close()

    assert [j.error for j in jobs] == ["Misconfigured", "ContentRejected", "InvalidRequest",
                                       "Transient", None]
    sent = [r.headers.get("authorization") for r in server.image_requests()]
    assert sent == [f"Bearer {WRONG_KEY}"] + [f"Bearer {KEY}"] * 4  # the keys were in play
    assert "[redacted]" in str(jobs[1].error_message)  # the echo arrived and was scrubbed

    texts = [str(j.error_message) for j in jobs]
    texts += [a.describe() for j in jobs for a in j.attempts]
    texts += [repr(e) for e in events]
    texts.append(caplog.text)
    texts += [r.getMessage() for r in caplog.records]
    files = [p for p in home.rglob("*") if p.is_file()]
    assert paths.settings_path in files and paths.db_path in files
    images = [p for p in files if p.suffix == ".png"]
    assert len(images) == 1 and read_image_metadata(images[0]) is not None
    for secret in (KEY, WRONG_KEY):
        for text in texts:
            assert secret not in text
        for path in files:
            assert secret.encode() not in path.read_bytes(), f"the key is in {path}"


async def _run(engine: Engine) -> Job:
    job = await engine.submit(REQ)
    await engine.run_until_idle()
    done = await engine.job(job.id)
    assert done is not None and done.state.finished
    return done


# -- LoRAs (issue 14, item 4) --------------------------------------------------------

LORA_REQ = REQ.replace(prompt="a lighthouse at dusk <lora:film_grain:0.8>")


async def test_openai_cannot_apply_a_lora_so_without_adaptation_it_is_skipped_unsent(
        make_rig: RigMaker) -> None:
    rig = make_rig()
    job = await rig.run(LORA_REQ.replace(policy=RoutingPolicy(allow_adaptation=False)))
    assert job.state is JobState.FAILED
    [skip] = job.attempts
    assert skip.provider == "openai" and skip.outcome is Outcome.SKIPPED
    assert "cannot apply LoRAs (film_grain)" in skip.message
    assert image_requests(rig.server) == 0


async def test_with_adaptation_openai_gets_the_prompt_without_the_lora_and_the_job_says_so(
        make_rig: RigMaker) -> None:
    rig = make_rig()
    job = await rig.run(LORA_REQ)
    assert job.state is JobState.SUCCEEDED and job.provider == "openai"
    [sent] = rig.server.image_requests()
    assert sent.body is not None and sent.body["prompt"] == "a lighthouse at dusk"
    [attempt] = job.attempts
    assert any("LoRA film_grain left out" in a for a in attempt.adaptations)
    # the image's parameters say what made it; the job keeps what the user wrote
    [saved] = [p for p in rig.gallery_dir.rglob("*.png")]
    meta = read_image_metadata(saved)
    assert meta is not None and meta.prompt == "a lighthouse at dusk"
    assert meta.provenance is not None
    assert meta.provenance["request"]["prompt"] == LORA_REQ.prompt


async def test_a_lora_that_is_not_installed_is_refused_before_anything_is_queued(
        make_rig: RigMaker, tmp_path: Path) -> None:
    from desktop_app.providers.local_diffusion import (
        LocalDiffusionConfig,
        LocalDiffusionProvider,
    )

    local = LocalDiffusionProvider(LocalDiffusionConfig(
        data_dir=tmp_path / "profile", model_folders=(tmp_path / "a1111" / "models",)))
    rig = make_rig(local_provider=local, local_rank=-10)  # it never starts a worker
    with pytest.raises(InvalidRequest) as caught:
        await rig.engine.submit(LORA_REQ)
    assert "'film_grain' is not installed" in caught.value.message
    assert str(tmp_path / "a1111" / "models") in caught.value.message
    assert await rig.engine.jobs() == []
    assert image_requests(rig.server) == 0
    # a cloud-only job never runs locally: the local library is not asked
    cloud = await rig.engine.submit(LORA_REQ.replace(policy=RoutingPolicy(
        mode=RouteMode.CLOUD_ONLY)))
    assert cloud.id > 0
