"""Keys, health, "Test connection", per-model capabilities and refusing what a
model cannot take: all before (or instead of) any image request."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from desktop_app.domain.errors import InvalidRequest, Misconfigured
from desktop_app.domain.request import OutputFormat, Quality
from desktop_app.providers.base import ConnectionOutcome, HealthState, ImageProvider, ProviderKind
from desktop_app.providers.fitting import fit_request
from desktop_app.providers.openai_images import (
    NOT_CONFIGURED,
    OpenAIImagesConfig,
    OpenAIImagesProvider,
)
from tests.fakes.fake_openai import FakeOpenAI, Fault, Reply
from tests.providers.openai.conftest import ProviderFactory
from tests.providers.openai.support import KEY, generate, request


async def test_the_provider_keeps_the_protocol(make_provider: ProviderFactory) -> None:
    provider = make_provider()
    assert isinstance(provider, ImageProvider)
    assert provider.name == "openai" and provider.kind is ProviderKind.CLOUD


async def test_without_a_key_it_reports_not_configured_and_never_calls(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    provider = make_provider(key=None)
    health = await provider.health()
    assert health.state is HealthState.NOT_CONFIGURED and not health.ready
    assert health.message == NOT_CONFIGURED
    with pytest.raises(Misconfigured, match="add an OpenAI API key in Settings"):
        await generate(provider)
    assert server.request_count == 0


async def test_a_blank_key_counts_as_no_key(make_provider: ProviderFactory) -> None:
    health = await make_provider(key="   ").health()
    assert health.state is HealthState.NOT_CONFIGURED


async def test_a_failing_key_store_means_not_configured_not_a_crash(
        server: FakeOpenAI) -> None:
    def broken_store() -> str | None:
        raise RuntimeError("keyring backend unavailable")

    provider = OpenAIImagesProvider(OpenAIImagesConfig(base_url=server.base_url),
                                    broken_store)
    assert (await provider.health()).state is HealthState.NOT_CONFIGURED
    with pytest.raises(Misconfigured):
        await generate(provider)
    assert server.request_count == 0


async def test_the_environment_key_overrides_the_key_store(
        server: FakeOpenAI, make_provider: ProviderFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    images = await generate(make_provider(key="sk-test-stored-but-stale-0000"))
    assert len(images) == 1
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_a_base_url_that_does_not_parse_is_not_configured(
        make_provider: ProviderFactory) -> None:
    provider = make_provider(base_url="localhost:8080/v1")
    health = await provider.health()
    assert health.state is HealthState.NOT_CONFIGURED and "base URL" in health.message
    with pytest.raises(Misconfigured, match="base URL"):
        await generate(provider)


async def test_health_makes_no_request(server: FakeOpenAI,
                                       make_provider: ProviderFactory) -> None:
    health = await make_provider().health()
    assert health.state is HealthState.READY
    assert server.request_count == 0


async def test_test_connection_makes_one_minimal_request(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    health = await make_provider().test_connection()
    assert health.passed and "gpt-image-2" in health.message
    assert [r.path for r in server.requests] == ["/v1/models/gpt-image-2"]


async def test_test_connection_reports_a_rejected_key(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    health = await make_provider(key="sk-test-not-the-right-one").test_connection()
    assert not health.passed
    assert "the API key was rejected" in health.message


async def test_test_connection_reports_a_missing_model(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.NOT_FOUND)])
    health = await make_provider(model="gpt-image-2.6-nova").test_connection()
    assert not health.passed
    assert "gpt-image-2.6-nova is not available" in health.message


async def test_test_connection_reports_an_outage_as_unavailable(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.SERVER_ERROR, status=503)])
    health = await make_provider().test_connection()
    assert health.outcome is ConnectionOutcome.UNREACHABLE


async def test_a_broken_price_table_is_reported_not_crashed(
        tmp_path: Path, make_provider: ProviderFactory, server: FakeOpenAI) -> None:
    broken = tmp_path / "prices.json"
    broken.write_text("{ not json")
    provider = make_provider(prices_path=broken)
    health = await provider.health()
    assert health.state is HealthState.NOT_CONFIGURED and "price table" in health.message
    with pytest.raises(Misconfigured, match="price table"):
        await generate(provider)
    assert server.request_count == 0


# -- capabilities per model ---------------------------------------------------

@pytest.mark.parametrize(("model", "sizes_ok", "sizes_bad", "max_n", "max_chars"), [
    ("gpt-image-2", [(1024, 1024), (3840, 2160), (2048, 1152), (1024, 640)],
     [(1000, 1000), (3840, 1024), (512, 512), (4096, 2160)], 10, 32_000),
    ("gpt-image-2.5-flare", [(1536, 864)], [(3600, 1000)], 10, 32_000),
    ("gpt-image-1", [(1024, 1024), (1536, 1024), (1024, 1536)], [(1024, 768)], 10, 32_000),
    ("dall-e-3", [(1024, 1024), (1792, 1024), (1024, 1792)], [(1536, 1024)], 1, 4000),
    ("dall-e-2", [(256, 256), (512, 512), (1024, 1024)], [(768, 768)], 10, 1000),
])
def test_capabilities_follow_the_configured_model(
        make_provider: ProviderFactory, model: str, sizes_ok: list[tuple[int, int]],
        sizes_bad: list[tuple[int, int]], max_n: int, max_chars: int) -> None:
    caps = make_provider(model=model).capabilities()
    assert all(caps.sizes.accepts(w, h) for w, h in sizes_ok)
    assert not any(caps.sizes.accepts(w, h) for w, h in sizes_bad)
    assert caps.max_images_per_call == max_n and caps.max_prompt_chars == max_chars
    assert not (caps.supports_seed or caps.supports_negative_prompt or caps.supports_steps
                or caps.supports_guidance)
    assert caps.cost_per_image_usd > 0


def test_a_small_size_is_scaled_up_to_gpt_image_2s_pixel_floor_keeping_its_shape(
        make_provider: ProviderFactory) -> None:
    caps = make_provider().capabilities()
    fit = fit_request(request(width=1024, height=512, seed=7, negative_prompt="blurry"),
                      caps, allow_adaptation=True)
    call = fit.calls[0]
    assert call.width * call.height >= 655_360 and call.width / call.height == pytest.approx(2,
                                                                                           rel=0.05)
    assert f"size 1024x512 -> {call.size}" in fit.adaptations
    assert "seed not supported: ignored" in fit.adaptations
    assert "negative prompt not supported: ignored" in fit.adaptations


def test_dall_e_3_takes_one_image_per_call_and_has_no_low_quality(
        make_provider: ProviderFactory) -> None:
    caps = make_provider(model="dall-e-3").capabilities()
    fit = fit_request(request(n=3, quality=Quality.LOW), caps, allow_adaptation=True)
    assert len(fit.calls) == 3 and all(c.n == 1 for c in fit.calls)
    assert "quality low -> auto" in fit.adaptations


@pytest.mark.parametrize(("model", "fields", "field"), [
    ("gpt-image-2", {"width": 1000, "height": 1000}, "width"),
    ("gpt-image-2", {"n": 11}, "n"),
    ("dall-e-3", {"n": 2}, "n"),
    ("dall-e-3", {"output_format": OutputFormat.WEBP}, "output_format"),
    ("dall-e-3", {"quality": Quality.LOW}, "quality"),
    ("dall-e-2", {"prompt": "x" * 1001, "width": 512, "height": 512}, "prompt"),
])
async def test_an_unfitted_request_is_refused_without_a_call(
        server: FakeOpenAI, make_provider: ProviderFactory, model: str,
        fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await generate(make_provider(model=model), request(**fields))
    assert caught.value.field == field
    assert server.request_count == 0


async def test_an_unknown_model_is_ready_with_a_note(make_provider: ProviderFactory) -> None:
    health = await make_provider(model="acme-diffusion-xl").health()
    assert health.state is HealthState.READY and "unknown model" in health.details["note"]


def test_the_shipped_price_table_covers_every_model_family() -> None:
    from desktop_app.providers.openai_images import PriceTable, default_prices_path
    path = default_prices_path()
    assert path.is_file() and json.loads(path.read_text())["currency"] == "USD"
    table = PriceTable.load(path)
    for model in ("gpt-image-2", "gpt-image-2.5-flare", "gpt-image-1", "gpt-image-1-mini",
                  "gpt-image-1.5", "dall-e-3", "dall-e-2"):
        assert table.estimate(model, 1024, 1024, "standard" if model == "dall-e-3"
                              else "auto") > 0, model


async def test_close_is_safe_before_and_after_use(make_provider: ProviderFactory) -> None:
    provider = make_provider()
    await provider.close()
    await generate(provider)
    await provider.close()
    await asyncio.sleep(0)
