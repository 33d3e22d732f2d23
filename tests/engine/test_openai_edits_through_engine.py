"""Jobs on an image through the real engine with the real OpenAI provider (the SDK
over HTTP to the fake server): a local failure fails over to the edits endpoint,
which receives the very source image stored for the job (by its hash) and a mask of
the right size and convention; with adaptation off, a job OpenAI cannot honour is
skipped with its reason before any request."""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from desktop_app.bootstrap import open_app
from desktop_app.config import AppPaths, Settings, save_settings
from desktop_app.domain.errors import OutOfMemory
from desktop_app.domain.job import JobState, Outcome
from desktop_app.domain.request import (
    GenerationRequest,
    ImageToImage,
    Inpaint,
    RequestKind,
    RoutingPolicy,
)
from desktop_app.engine.engine import Engine
from desktop_app.engine.runner import RunnerSettings
from desktop_app.providers.base import Capabilities, SizeRule
from desktop_app.providers.openai_images import OpenAIImagesConfig, OpenAIImagesProvider
from desktop_app.resilience.breaker import BreakerConfig
from desktop_app.resilience.clock import FakeClock
from desktop_app.store.database import open_database
from desktop_app.store.files import read_image_metadata
from desktop_app.store.gallery import Gallery, ImageRecord
from desktop_app.store.input_images import InputImages
from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.keyring_memory import InMemoryKeyring, installed_keyring
from tests.fakes.scripted_engine import engine_in, run_to_end, slot_for
from tests.fakes.scripted_provider import ScriptedProvider, Step

KEY = "sk-test-EditsEngineKey5Tq2Wm8"
LOCAL_FIRST = -10
ALL_KINDS = frozenset(RequestKind)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as fake:
        yield fake


EngineMaker = Callable[..., tuple[Engine, ScriptedProvider | None]]


@pytest.fixture
async def make_engine(server: FakeOpenAI, tmp_path: Path) -> AsyncIterator[EngineMaker]:
    engines: list[Engine] = []

    def make(*, local: list[Step] | None = None) -> tuple[Engine, ScriptedProvider | None]:
        clock = FakeClock()
        provider = OpenAIImagesProvider(OpenAIImagesConfig(
            base_url=server.base_url, deadline_s=10.0, timeout_s=10.0, stream_previews=False,
            data_dir=tmp_path), lambda: KEY)
        slots = [slot_for(provider, 0, clock=clock, breaker=BreakerConfig.cloud(),
                          concurrency=1)]
        scripted = None
        if local is not None:  # a local GPU that serves every kind (when it works)
            scripted = ScriptedProvider("local", script=local, caps=Capabilities(
                sizes=SizeRule(multiple_of=8, min_side=64, max_side=2048), kinds=ALL_KINDS))
            slots.append(slot_for(scripted, LOCAL_FIRST, clock=clock, concurrency=1))
        engine = engine_in(tmp_path, slots, clock=clock, rng=random.Random(4),
                           runner_settings=RunnerSettings(job_deadline_s=60.0),
                           inputs=InputImages.in_profile(tmp_path))
        engines.append(engine)
        return engine, scripted

    yield make
    for engine in engines:
        await engine.close()


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def a_mask(width: int, height: int) -> Image.Image:
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, (8, 8, 40, 40))
    return mask


async def test_a_local_failure_fails_over_to_the_edits_endpoint_with_the_same_source(
        make_engine: EngineMaker, server: FakeOpenAI) -> None:
    engine, local = make_engine(local=["ok", OutOfMemory("CUDA out of memory while inpainting")])
    first = await run_to_end(engine, GenerationRequest("a harbour", width=96, height=64))
    assert first.provider == "local"
    source = await engine.use_as_source(first.image_ids[0])  # lineage: from the gallery
    mask = await engine.add_input_image(png(a_mask(96, 64)), "mask")

    job = await run_to_end(engine, GenerationRequest(
        "a red boat in the harbour", work=Inpaint(source, mask, mask_blur=0),
        policy=RoutingPolicy(allow_adaptation=False)))

    assert job.state is JobState.SUCCEEDED and job.provider == "openai"
    failed, served = job.attempts
    assert (failed.provider, failed.error) == ("local", "OutOfMemory")
    assert served.provider == "openai" and served.cost_usd > 0
    assert job.fallback_reason is not None
    assert job.fallback_reason.startswith(
        "local: OutOfMemory — CUDA out of memory while inpainting")
    assert local is not None and local.calls[-1].kind is RequestKind.INPAINT

    [sent] = server.edit_requests()
    [image] = sent.uploads("image")
    assert hashlib.sha256(image.data).hexdigest() == source.sha256  # the stored source itself
    [their_mask] = sent.uploads("mask")
    alpha = their_mask.open().getchannel("A")
    assert alpha.size == (96, 64)
    assert alpha.getbbox() is not None
    transparent = Image.eval(alpha, lambda a: 255 if a == 0 else 0)
    assert transparent.getbbox() == (8, 8, 40, 40)  # exactly where our mask is white

    [record] = await engine.images_of(job)
    assert record.kind == "inpaint" and record.source_image_id == first.image_ids[0]
    assert (record.width, record.height) == (96, 64)
    meta = read_image_metadata(record.path)
    assert meta is not None and (meta.width, meta.height) == (96, 64)
    assert meta.provenance is not None and meta.provenance["provider"] == "openai"


async def test_with_adaptation_off_an_image_to_image_job_is_skipped_before_any_request(
        make_engine: EngineMaker, server: FakeOpenAI) -> None:
    engine, _ = make_engine()
    source = await engine.add_input_image(png(Image.new("RGB", (1024, 1024), (9, 9, 9))))
    job = await run_to_end(engine, GenerationRequest(
        "in watercolour", work=ImageToImage(source, strength=0.3),
        policy=RoutingPolicy(allow_adaptation=False)))
    assert job.state is JobState.FAILED
    [skip] = job.attempts
    assert skip.provider == "openai" and skip.outcome is Outcome.SKIPPED
    assert "strength 0.3 not honoured: OpenAI edits have no strength setting" in skip.message
    assert "adapting is turned off" in skip.message
    assert server.request_count == 0


async def test_with_adaptation_on_the_job_is_served_and_says_what_was_adapted(
        make_engine: EngineMaker, server: FakeOpenAI) -> None:
    engine, _ = make_engine()
    source = await engine.add_input_image(png(Image.new("RGB", (1024, 1024), (9, 9, 9))))
    job = await run_to_end(engine, GenerationRequest("in watercolour",
                                              work=ImageToImage(source, strength=0.3)))
    assert job.state is JobState.SUCCEEDED and job.provider == "openai"
    [served] = job.attempts
    assert any(a.startswith("strength 0.3 not honoured") for a in served.adaptations)
    assert "strength 0.3 not honoured" in served.describe()  # what the queue shows
    assert len(server.edit_requests()) == 1
    [record] = await engine.images_of(job)
    assert record.kind == "img2img"



async def test_the_app_as_built_sends_an_inpaint_to_openai_with_the_profiles_inputs(
        server: FakeOpenAI, tmp_path: Path) -> None:
    home = tmp_path / "home"
    paths = AppPaths.under(home).ensure()
    save_settings(Settings().updated({
        "local": {"enabled": False},
        "openai": {"base_url": server.base_url, "stream_previews": False, "rate_limits": [],
                   "timeout_s": 10, "deadline_s": 10},
        "routing": {"retry_max_attempts": 1, "job_deadline_s": 30},
    }), paths.settings_path)
    with installed_keyring(InMemoryKeyring()):
        ctx = open_app({"IMAGEDESK_HOME": str(home)})
        try:
            ctx.keys.set("openai", KEY)
            source = await ctx.engine.add_input_image(
                png(Image.new("RGB", (96, 64), (200, 10, 10))))
            mask = await ctx.engine.add_input_image(png(a_mask(96, 64)), "mask")
            job = await run_to_end(ctx.engine, GenerationRequest(
                "a window", work=Inpaint(source, mask)))
        finally:
            await ctx.engine.close()
    assert job.state is JobState.SUCCEEDED and job.provider == "openai"
    [sent] = server.edit_requests()
    assert hashlib.sha256(sent.uploads("image")[0].data).hexdigest() == source.sha256
    [record] = await _gallery_rows(paths.db_path)
    assert record.kind == "inpaint"


async def _gallery_rows(db_path: Path) -> list[ImageRecord]:
    conn = open_database(db_path)
    try:
        return Gallery(conn).search("", kind="inpaint")
    finally:
        conn.close()
