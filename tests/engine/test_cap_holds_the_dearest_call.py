"""A spending cap holds the most a call can bill before it is sent, through the app
as built (settings file, keyring, the real OpenAI provider over HTTP to the fake
server): "auto" quality at the dearest quality's price (the API picks, often
"high"), and an edit's input image on top. The fake server's request log is the
bill: a call that could pass the cap never reaches it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from desktop_app.bootstrap import open_app
from desktop_app.config import AppPaths, Settings, default_policy, save_settings
from desktop_app.domain.job import Job, JobState
from desktop_app.domain.request import GenerationRequest, ImageToImage, Quality
from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.keyring_memory import InMemoryKeyring, installed_keyring
from tests.fakes.scripted_engine import run_to_end

KEY = "sk-test-CapHoldsKey7Rb3Nx5Vq"
# desktop_app/data/prices.json, gpt-image-1 at 1024x1024
LOW_USD, HIGH_USD, INPUT_IMAGE_MAX_USD = 0.011, 0.167, 0.06


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as fake:
        yield fake


async def run_in_app(home: Path, server: FakeOpenAI, daily_usd: float | None,
                     request: GenerationRequest, *, source: bytes | None = None,
                     job_cap_usd: float | None = None) -> Job:
    paths = AppPaths.under(home).ensure()
    save_settings(Settings().updated({
        "local": {"enabled": False},
        "openai": {"base_url": server.base_url, "model": "gpt-image-1",
                   "stream_previews": False, "rate_limits": [], "timeout_s": 10,
                   "deadline_s": 10},
        "routing": {"retry_max_attempts": 1, "job_deadline_s": 30,
                    "max_cost_per_job_usd": job_cap_usd},
        "budget": {"daily_usd": daily_usd},
    }), paths.settings_path)
    with installed_keyring(InMemoryKeyring()):
        ctx = open_app({"IMAGEDESK_HOME": str(home)})
        try:
            ctx.keys.set("openai", KEY)
            if source is not None:
                ref = await ctx.engine.add_input_image(source)
                request = request.replace(work=ImageToImage(ref, 0.6))
            # as every face starts a job: from the profile's routing settings
            policy = default_policy(ctx.settings)
            return await run_to_end(ctx.engine, request.replace(policy=policy))
        finally:
            await ctx.engine.close()


def square_png(side: int = 1024) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), (30, 90, 160)).save(out, "PNG")
    return out.getvalue()


REQ = GenerationRequest("a lighthouse at dusk", width=1024, height=1024)


async def test_auto_quality_is_held_at_the_dearest_price_and_never_sent_past_the_cap(
        server: FakeOpenAI, tmp_path: Path) -> None:
    job = await run_in_app(tmp_path / "home", server, 0.10, REQ)  # quality "auto"
    assert job.state is JobState.FAILED
    assert server.image_requests() == []  # nothing billed
    assert (f"a call for 1 image on openai (up to ${HIGH_USD:.2f}) would pass the $0.10 "
            "daily cap") in str(job.error_message)


async def test_a_low_quality_job_under_the_same_cap_is_sent_and_costs_its_own_price(
        server: FakeOpenAI, tmp_path: Path) -> None:
    job = await run_in_app(tmp_path / "home", server, 0.10, REQ.replace(quality=Quality.LOW))
    assert job.state is JobState.SUCCEEDED, job.error_message
    [sent] = server.image_requests()
    assert sent.body is not None and sent.body["quality"] == "low"
    assert job.cost_usd == pytest.approx(LOW_USD)


@pytest.mark.parametrize(("cap", "sent"), [(0.05, False), (0.10, True)])
async def test_an_edit_holds_its_input_image_too(
        server: FakeOpenAI, tmp_path: Path, cap: float, sent: bool) -> None:
    # low quality output ($0.011) + the source image's tokens (up to $0.06) = $0.071
    job = await run_in_app(tmp_path / "home", server, cap, REQ.replace(quality=Quality.LOW),
                           source=square_png())
    assert len(server.edit_requests()) == (1 if sent else 0)
    if sent:
        assert job.state is JobState.SUCCEEDED, job.error_message
    else:
        assert job.state is JobState.FAILED
        held = LOW_USD + INPUT_IMAGE_MAX_USD
        assert f"(up to ${held:.2f}) would pass the ${cap:.2f} daily cap" in str(
            job.error_message)


@pytest.mark.parametrize(("quality", "sent"), [(Quality.AUTO, False), (Quality.LOW, True)])
async def test_the_per_job_cost_cap_compares_the_most_a_job_can_cost(
        server: FakeOpenAI, tmp_path: Path, quality: Quality, sent: bool) -> None:
    job = await run_in_app(tmp_path / "home", server, None, REQ.replace(quality=quality),
                           job_cap_usd=0.10)
    assert len(server.image_requests()) == (1 if sent else 0)
    if not sent:
        assert job.state is JobState.FAILED
        assert (f"could cost up to ${HIGH_USD:.2f}, over this job's cap of $0.10"
                in str(job.error_message))


async def test_the_route_quote_shows_the_most_a_job_can_cost_beside_the_typical_price(
        server: FakeOpenAI, tmp_path: Path) -> None:
    home = tmp_path / "home"
    paths = AppPaths.under(home).ensure()
    save_settings(Settings().updated({
        "local": {"enabled": False},
        "openai": {"base_url": server.base_url, "model": "gpt-image-1"},
    }), paths.settings_path)
    with installed_keyring(InMemoryKeyring()):
        ctx = open_app({"IMAGEDESK_HOME": str(home)})
        try:
            ctx.keys.set("openai", KEY)
            auto = await ctx.engine.route_quote(REQ)
            low = await ctx.engine.route_quote(REQ.replace(quality=Quality.LOW))
        finally:
            await ctx.engine.close()
    assert f"$0.04, up to ${HIGH_USD:.2f})" in auto.line()  # "auto" may come back "high"
    [openai] = auto.candidates
    assert openai.to_dict()["most_usd"] == HIGH_USD
    assert "up to" not in low.line() and low.line().endswith(f"${LOW_USD:.2f})")
    assert server.image_requests() == []  # a quote sends nothing
