"""Paid calls through the real engine: with stream previews on (the default), a
server that ignores ``stream`` serves the job in one call; an image in another
format is saved; and billed-but-unusable images are recorded on the job and in
the day's spend even though the job fails (issue 11, item 8)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from PIL import Image

from desktop_app.domain.job import Job, JobState
from desktop_app.domain.request import GenerationRequest, OutputFormat
from desktop_app.engine.engine import Engine
from desktop_app.engine.runner import RunnerSettings
from desktop_app.providers.openai_images import (
    OpenAIImagesConfig,
    OpenAIImagesProvider,
    default_prices_path,
)
from desktop_app.resilience.breaker import BreakerConfig
from desktop_app.resilience.clock import FakeClock
from desktop_app.resilience.retry import RetryPolicy
from tests.fakes.fake_openai import FakeOpenAI, Fault, Reply
from tests.fakes.openai_payloads import DEFAULT_USAGE
from tests.fakes.scripted_engine import engine_in, slot_for
from tests.providers.openai.support import KEY

REQ = GenerationRequest(prompt="a lighthouse at dusk", width=1024, height=1024)


def _call_cost() -> float:
    table = json.loads(default_prices_path().read_text())
    prices = next(m for m in table["models"] if m["name"] == "gpt-image-2")["tokens_per_million"]
    return float(DEFAULT_USAGE["input_tokens_details"]["text_tokens"] * prices["text_input"]
                 + DEFAULT_USAGE["output_tokens_details"]["image_tokens"]
                 * prices["image_output"]) / 1_000_000


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as fake:
        yield fake



@pytest.fixture
async def eng(server: FakeOpenAI, tmp_path: Path) -> AsyncIterator[Engine]:
    clock = FakeClock()
    # the defaults a user has: stream previews on
    provider = OpenAIImagesProvider(OpenAIImagesConfig(base_url=server.base_url,
                                                       deadline_s=10.0), lambda: KEY)
    slot = slot_for(provider, 0, clock=clock, breaker=BreakerConfig.cloud(),
                    retry=RetryPolicy(max_attempts=3, base_s=1.0, max_s=2.0), concurrency=1)
    built = engine_in(tmp_path, [slot], clock=clock,
                      runner_settings=RunnerSettings(job_deadline_s=60.0))
    yield built
    await built.close()


async def _spent(engine: Engine) -> float:
    """What the engine has recorded as spent on OpenAI (the store's figure)."""
    [status] = await engine.provider_statuses()
    return status.spend_month_usd


async def _run(engine: Engine, request: GenerationRequest = REQ) -> Job:
    job = await engine.submit(request)
    await engine.run_until_idle()
    done = await engine.job(job.id)
    assert done is not None and done.state.finished
    return done


async def test_a_server_ignoring_stream_serves_the_job_in_one_call_and_it_is_paid_for(
        server: FakeOpenAI, eng: Engine, tmp_path: Path) -> None:
    server.default = Reply(Fault.OK, ignore_stream=True)
    job = await _run(eng)
    assert job.state is JobState.SUCCEEDED and len(job.image_ids) == 1
    [body] = [r.body for r in server.image_requests()]
    assert body is not None and body["stream"] is True
    assert job.cost_usd == pytest.approx(_call_cost(), rel=1e-3)
    assert await _spent(eng) == pytest.approx(_call_cost(), rel=1e-3)
    assert len(list((tmp_path / "gallery").rglob("*.png"))) == 1


async def test_a_png_for_a_jpeg_job_is_saved_and_paid_for(
        server: FakeOpenAI, eng: Engine, tmp_path: Path) -> None:
    server.script([Reply(Fault.WRONG_FORMAT)])
    job = await _run(eng, REQ.replace(output_format=OutputFormat.JPEG))
    assert job.state is JobState.SUCCEEDED and len(job.image_ids) == 1
    assert len(server.image_requests()) == 1
    assert job.cost_usd == pytest.approx(_call_cost(), rel=1e-3)
    [saved] = [p for p in (tmp_path / "gallery").rglob("*") if p.is_file()]
    with Image.open(saved) as img:  # a real image, whatever format the saver kept
        assert img.size == (1024, 1024)


async def test_billed_but_unusable_images_are_recorded_although_the_job_fails(
        server: FakeOpenAI, eng: Engine) -> None:
    server.default = Reply(Fault.WRONG_SIZE)  # every call billed, every image 64x32
    job = await _run(eng)
    assert job.state is JobState.FAILED and job.error == "Transient"
    calls = len(server.image_requests())
    assert calls == 3  # the retry policy's three attempts, each billed
    assert job.cost_usd == pytest.approx(3 * _call_cost(), rel=1e-3)
    assert job.attempts[-1].cost_usd == pytest.approx(3 * _call_cost(), rel=1e-3)
    assert await _spent(eng) == pytest.approx(3 * _call_cost(), rel=1e-3)
    assert job.error_message is not None and "asked for 1024x1024, got 64x32" in job.error_message
