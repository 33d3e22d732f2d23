"""A successful call: real images of the size and format asked for, priced from
token usage (or the price table), with previews while streaming."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from desktop_app.domain.request import OutputFormat, Quality
from desktop_app.providers.base import Phase
from desktop_app.providers.openai_images import default_prices_path
from tests.fakes.fake_openai import FakeOpenAI, Fault, Reply
from tests.fakes.openai_payloads import DEFAULT_USAGE
from tests.providers.openai.conftest import ProviderFactory
from tests.providers.openai.support import Run, generate, request


def _token_prices(model_name: str) -> dict[str, float]:
    table = json.loads(default_prices_path().read_text())
    entry = next(m for m in table["models"] if m["name"] == model_name)
    return entry["tokens_per_million"]


def _per_image(model_name: str, size: str, quality: str) -> float:
    table = json.loads(default_prices_path().read_text())
    entry = next(m for m in table["models"] if m["name"] == model_name)
    return entry["per_image"][size][quality]


async def test_success_returns_a_decodable_png_of_the_requested_size(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    images = await generate(make_provider(), request(width=1536, height=1024))
    assert len(images) == 1
    image = images[0]
    with Image.open(io.BytesIO(image.data)) as decoded:
        assert decoded.format == "PNG" and decoded.size == (1536, 1024)
    assert (image.format, image.width, image.height) == ("png", 1536, 1024)
    assert image.provider == "openai" and image.model == "gpt-image-2"
    assert image.details["size"] == "1536x1024"


@pytest.mark.parametrize("fmt", [OutputFormat.WEBP, OutputFormat.JPEG])
async def test_other_formats_are_asked_for_and_checked(
        server: FakeOpenAI, make_provider: ProviderFactory, fmt: OutputFormat) -> None:
    images = await generate(make_provider(), request(output_format=fmt))
    assert images[0].format == fmt.value
    assert server.image_requests()[0].body["output_format"] == fmt.value  # type: ignore[index]


async def test_cost_comes_from_token_usage_when_the_response_has_it(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    usage = {"input_tokens": 120,
             "input_tokens_details": {"text_tokens": 100, "image_tokens": 20},
             "output_tokens": 4000, "output_tokens_details": {"image_tokens": 4000,
                                                              "text_tokens": 0},
             "total_tokens": 4120}
    server.script([Reply(Fault.OK, usage=usage)])
    prices = _token_prices("gpt-image-2")
    expected = (100 * prices["text_input"] + 20 * prices["image_input"]
                + 4000 * prices["image_output"]) / 1_000_000
    images = await generate(make_provider())
    assert images[0].cost_usd == pytest.approx(expected, rel=1e-4)
    assert images[0].details["cost_source"] == "token usage"


async def test_usage_for_several_images_is_shared_between_them(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    images = await generate(make_provider(), request(n=3))
    assert len(images) == 3
    assert len({img.data for img in images}) == 3  # three different images
    prices = _token_prices("gpt-image-2")
    whole = (50 * prices["text_input"] + 1056 * prices["image_output"]) / 1_000_000
    assert sum(img.cost_usd for img in images) == pytest.approx(whole, rel=1e-3)
    assert server.image_requests()[0].body["n"] == 3  # type: ignore[index]


async def test_cost_falls_back_to_the_price_table_without_usage(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.OK, usage=None)])
    images = await generate(make_provider(), request(quality=Quality.HIGH))
    assert images[0].cost_usd == pytest.approx(_per_image("gpt-image-2", "*", "high"))
    assert images[0].details["cost_source"] == "price table estimate"


async def test_dall_e_3_is_asked_for_base64_and_priced_by_the_table(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.OK, revised_prompt="A tall lighthouse at dusk, oil painting")])
    images = await generate(make_provider(model="dall-e-3"),
                            request(width=1792, height=1024, quality=Quality.HIGH))
    body = server.image_requests()[0].body
    assert body is not None
    assert body["response_format"] == "b64_json" and body["quality"] == "hd"
    assert "output_format" not in body
    assert images[0].cost_usd == pytest.approx(_per_image("dall-e-3", "1792x1024", "hd"))
    assert images[0].details["revised_prompt"] == "A tall lighthouse at dusk, oil painting"


async def test_the_request_sent_holds_only_what_the_model_takes(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    await generate(make_provider(), request(seed=42, negative_prompt="", steps=50,
                                            quality=Quality.LOW))
    body = server.image_requests()[0].body
    assert body is not None
    assert body["model"] == "gpt-image-2" and body["size"] == "1024x1024"
    assert body["quality"] == "low" and body["prompt"] == "a lighthouse at dusk"
    assert not {"seed", "steps", "negative_prompt", "response_format", "style"} & set(body)


async def test_streaming_passes_partial_images_to_progress_as_pngs(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    run = Run()
    images = await generate(make_provider(stream_previews=True, partial_images=2),
                            request(output_format=OutputFormat.WEBP), run)
    previews = [p for p in run.progress if p.preview_png is not None]
    assert [p.step for p in previews] == [1, 2]
    assert all(p.phase is Phase.GENERATING and p.total == 2 for p in previews)
    for preview in previews:
        with Image.open(io.BytesIO(preview.preview_png or b"")) as decoded:
            assert decoded.format == "PNG"
    assert images[0].format == "webp" and (images[0].width, images[0].height) == (1024, 1024)
    body = server.image_requests()[0].body
    assert body is not None and body["stream"] is True and body["partial_images"] == 2
    prices = _token_prices("gpt-image-2")
    expected = (DEFAULT_USAGE["input_tokens_details"]["text_tokens"] * prices["text_input"]
                + DEFAULT_USAGE["output_tokens_details"]["image_tokens"]
                * prices["image_output"]) / 1_000_000
    assert images[0].cost_usd == pytest.approx(expected, rel=1e-4)


async def test_models_that_cannot_stream_are_not_asked_to(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    await generate(make_provider(model="dall-e-2", stream_previews=True),
                   request(width=512, height=512))
    body = server.image_requests()[0].body
    assert body is not None and "stream" not in body and "partial_images" not in body


async def test_progress_reports_start_and_finish(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    run = Run()
    await generate(make_provider(), None, run)
    phases = [p.phase for p in run.progress]
    assert phases[0] is Phase.STARTING and phases[-1] is Phase.FINISHING

