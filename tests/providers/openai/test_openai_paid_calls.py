"""Every paid call is accounted: a server that ignores ``stream`` still gets its
images read, an image in another format than asked is kept, and an image that
was billed but is unusable leaves the provider with its cost on the error."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from desktop_app.domain.errors import ContentRejected, Transient
from desktop_app.domain.request import OutputFormat, Quality
from desktop_app.providers.openai_images import default_prices_path
from tests.fakes.fake_openai import FakeOpenAI, Fault, Reply
from tests.fakes.openai_payloads import DEFAULT_USAGE
from tests.providers.openai.conftest import ProviderFactory
from tests.providers.openai.support import Run, generate, request


def _token_cost(usage: dict[str, object]) -> float:
    table = json.loads(default_prices_path().read_text())
    prices = next(m for m in table["models"] if m["name"] == "gpt-image-2")["tokens_per_million"]
    inp, out = usage["input_tokens_details"], usage["output_tokens_details"]
    assert isinstance(inp, dict) and isinstance(out, dict)
    return (inp["text_tokens"] * prices["text_input"]
            + out["image_tokens"] * prices["image_output"]) / 1_000_000


def _table(model: str, size: str, quality: str) -> float:
    table = json.loads(default_prices_path().read_text())
    price: float = next(m for m in table["models"] if m["name"] == model)["per_image"][size][
        quality]
    return price


async def test_a_server_that_ignores_stream_has_its_json_images_read(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.OK, ignore_stream=True)])
    run = Run()
    images = await generate(make_provider(stream_previews=True), request(n=2), run)
    assert server.image_requests()[0].body["stream"] is True  # type: ignore[index]
    assert server.request_count == 1  # read at once, not retried
    assert len(images) == 2 and all(i.format == "png" for i in images)
    assert sum(i.cost_usd for i in images) == pytest.approx(_token_cost(DEFAULT_USAGE),
                                                            rel=1e-3)
    assert not any(p.preview_png for p in run.progress)  # no previews, and no complaint


async def test_a_server_that_ignores_stream_and_answers_html_is_a_clear_error(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.HTML_200)])
    with pytest.raises(Transient, match="web page") as caught:
        await generate(make_provider(stream_previews=True))
    assert caught.value.billed_usd == 0.0  # nothing was made, nothing billed


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_png_when_jpeg_was_asked_is_kept_as_png(
        server: FakeOpenAI, make_provider: ProviderFactory, streaming: bool) -> None:
    server.script([Reply(Fault.WRONG_FORMAT)])
    [image] = await generate(make_provider(stream_previews=streaming),
                             request(output_format=OutputFormat.JPEG))
    assert server.image_requests()[0].body["output_format"] == "jpeg"  # type: ignore[index]
    with Image.open(io.BytesIO(image.data)) as decoded:
        assert decoded.format == "PNG"
    assert image.format == "png" and image.details["received_format"] == "png"
    assert image.cost_usd == pytest.approx(_token_cost(DEFAULT_USAGE), rel=1e-3)


@pytest.mark.parametrize("streaming", [False, True])
async def test_an_unusable_billed_image_carries_its_cost_out_of_the_provider(
        server: FakeOpenAI, make_provider: ProviderFactory, streaming: bool) -> None:
    server.script([Reply(Fault.WRONG_SIZE)])
    with pytest.raises(Transient, match="asked for 1024x1024, got 64x32") as caught:
        await generate(make_provider(stream_previews=streaming))
    assert caught.value.billed_usd == pytest.approx(_token_cost(DEFAULT_USAGE), abs=1e-6)
    assert "recorded" in caught.value.message


async def test_without_usage_the_billed_cost_comes_from_the_table_for_that_quality(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.NOT_AN_IMAGE, usage=None)])
    with pytest.raises(Transient, match="does not decode") as caught:
        await generate(make_provider(model="gpt-image-1"),
                       request(width=1536, height=1024, quality=Quality.HIGH))
    assert caught.value.billed_usd == pytest.approx(_table("gpt-image-1", "1536x1024", "high"))


async def test_a_response_with_no_images_bills_nothing(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.NO_DATA)])
    with pytest.raises(Transient) as caught:
        await generate(make_provider())
    assert caught.value.billed_usd == 0.0


@pytest.mark.parametrize("envelope", [True, False])
async def test_a_stream_that_fails_after_an_image_carries_that_image_s_cost(
        server: FakeOpenAI, make_provider: ProviderFactory, envelope: bool) -> None:
    server.script([Reply(Fault.STREAM_ERROR, error_after=1, error_in_envelope=envelope)])
    with pytest.raises(ContentRejected) as caught:
        await generate(make_provider(stream_previews=True), request(n=2))
    assert caught.value.billed_usd == pytest.approx(_token_cost(DEFAULT_USAGE), abs=1e-6)


async def test_a_stream_that_fails_before_any_image_bills_nothing(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.STREAM_ERROR)])
    with pytest.raises(ContentRejected) as caught:
        await generate(make_provider(stream_previews=True), request(n=2))
    assert caught.value.billed_usd == 0.0
