"""Jobs on an image through the real SDK's ``images.edit`` against the fake server:
what was uploaded (the source, and a mask transparent exactly where ours is white),
what comes back (the job's size, the source's own pixels outside the mask), previews
while streaming, the cost, and every fault as its taxonomy error."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from PIL import Image, ImageChops

from desktop_app.domain.errors import (
    ContentRejected,
    InvalidRequest,
    Misconfigured,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Transient,
)
from desktop_app.domain.request import (
    GenerationRequest,
    ImageToImage,
    Inpaint,
    Outpaint,
    OutputFormat,
    Padding,
)
from desktop_app.providers.openai_images import OpenAIImagesProvider
from desktop_app.store.input_images import InputImages
from tests.fakes.fake_openai import FakeOpenAI, Fault, Reply
from tests.providers.openai.conftest import ProviderFactory
from tests.providers.openai.support import KEY, Run, generate

FAKE_COLOUR = (30, 120, 200)  # the fake server's first image is this colour all over


def noise(width: int, height: int, seed: int = 7) -> Image.Image:
    """A picture whose every pixel differs, so a moved or resampled pixel shows."""
    rng = random.Random(seed)
    return Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def pixels(image: Image.Image) -> list[Any]:
    return list(image.get_flattened_data())


def decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.copy()


def a_mask(width: int = 96, height: int = 64) -> Image.Image:
    """White (repaint) over an L-shaped area, black elsewhere."""
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, (10, 5, 40, 50))
    mask.paste(255, (40, 40, 80, 50))
    return mask


@pytest.fixture
def store(tmp_path: Path) -> InputImages:
    return InputImages.in_profile(tmp_path)


@pytest.fixture
def edit_provider(make_provider: ProviderFactory,
                  tmp_path: Path) -> Callable[..., OpenAIImagesProvider]:
    def make(**config: Any) -> OpenAIImagesProvider:
        return make_provider(data_dir=tmp_path, **config)
    return make


def inpaint_job(store: InputImages, source: Image.Image, mask: Image.Image,
                **fields: Any) -> GenerationRequest:
    work = Inpaint(store.add(png(source)), store.add(png(mask), "mask"), mask_blur=0)
    return GenerationRequest("a brass door knocker", work=work, **fields)


async def test_an_inpaint_uploads_the_source_and_a_mask_transparent_exactly_where_ours_is_white(
        server: FakeOpenAI, edit_provider: Callable[..., OpenAIImagesProvider],
        store: InputImages) -> None:
    source, mask = noise(96, 64), a_mask()
    [image] = await generate(edit_provider(), inpaint_job(store, source, mask))

    [sent] = server.edit_requests()
    assert server.request_count == 1
    assert sent.body is not None
    assert (sent.body["model"], sent.body["prompt"]) == ("gpt-image-2", "a brass door knocker")
    assert sent.body["size"] == "1008x672" and "input_fidelity" not in sent.body
    [uploaded] = sent.uploads("image")
    assert pixels(uploaded.open().convert("RGB")) == pixels(source)
    [their_mask] = sent.uploads("mask")
    theirs = their_mask.open()
    assert theirs.mode == "RGBA" and theirs.size == source.size
    alpha = theirs.getchannel("A")
    white = [v == 255 for v in pixels(mask)]
    assert [a == 0 for a in pixels(alpha)] == white
    assert {a for a, w in zip(pixels(alpha), white, strict=True) if not w} == {255}

    assert (image.width, image.height, image.format) == (96, 64, "png")
    result = decoded(image.data).convert("RGB")
    assert result.size == (96, 64)
    for (got, want, repaint) in zip(pixels(result), pixels(source), white, strict=True):
        assert got == (FAKE_COLOUR if repaint else want)
    assert image.details["api_size"] == "1008x672"
    assert image.details["requested_size"] == "96x64"
    assert image.details["edit"] == "inpaint"


@pytest.mark.parametrize(("model", "fidelity", "api"), [
    ("gpt-image-2", None, "816x816"),  # scaled up to its pixel floor
    ("gpt-image-1", "high", "1024x1024"),
])
async def test_image_to_image_uploads_the_source_without_a_mask(
        server: FakeOpenAI, edit_provider: Callable[..., OpenAIImagesProvider],
        store: InputImages, model: str, fidelity: str | None, api: str) -> None:
    source = noise(128, 128)
    request = GenerationRequest("in watercolour", work=ImageToImage(store.add(png(source)), 0.4),
                                output_format=OutputFormat.JPEG)
    [image] = await generate(edit_provider(model=model), request)
    [sent] = server.edit_requests()
    assert sent.body is not None and sent.body["size"] == api
    assert sent.body.get("input_fidelity") == fidelity
    assert sent.uploads("mask") == []
    [uploaded] = sent.uploads("image")
    assert uploaded.open().size == (128, 128)
    # the endpoint is asked for PNG: the saver encodes the JPEG once, from lossless pixels
    assert sent.body["output_format"] == "png"
    assert (image.width, image.height) == (128, 128)
    assert decoded(image.data).size == (128, 128)


async def test_outpaint_sends_the_padded_canvas_and_masks_only_the_new_area(
        server: FakeOpenAI, edit_provider: Callable[..., OpenAIImagesProvider],
        store: InputImages) -> None:
    source = noise(64, 64)
    work = Outpaint(store.add(png(source)), Padding(right=32, top=16), mask_blur=0)
    [image] = await generate(edit_provider(), GenerationRequest("more sea", work=work))

    [sent] = server.edit_requests()
    assert sent.body is not None and sent.body["background"] == "opaque"
    canvas = sent.uploads("image")[0].open()
    assert canvas.size == (96, 80) and canvas.mode == "RGBA"
    assert pixels(canvas.crop((0, 16, 64, 80)).convert("RGB")) == pixels(source)
    alpha = sent.uploads("mask")[0].open().getchannel("A")
    new_area = Image.new("L", (96, 80), 0)
    new_area.paste(255, (64, 0, 96, 80))
    new_area.paste(255, (0, 0, 96, 16))
    assert [a == 0 for a in pixels(alpha)] == [v == 255 for v in pixels(new_area)]

    result = decoded(image.data).convert("RGB")
    assert result.size == (96, 80)
    assert ImageChops.difference(result.crop((0, 16, 64, 80)), source).getbbox() is None
    assert result.getpixel((80, 40)) == FAKE_COLOUR


async def test_streamed_edits_show_previews_and_deliver_the_image(
        server: FakeOpenAI, edit_provider: Callable[..., OpenAIImagesProvider],
        store: InputImages) -> None:
    run = Run()
    images = await generate(edit_provider(stream_previews=True, partial_images=2),
                            inpaint_job(store, noise(96, 64), a_mask()), run)
    assert len(images) == 1 and (images[0].width, images[0].height) == (96, 64)
    [sent] = server.edit_requests()
    assert sent.body is not None
    assert sent.body["stream"] is True and sent.body["partial_images"] == 2
    previews = [p for p in run.progress if p.preview_png is not None]
    assert [p.step for p in previews] == [1, 2]


async def test_the_cost_includes_the_input_images_from_token_usage(
        server: FakeOpenAI, edit_provider: Callable[..., OpenAIImagesProvider],
        store: InputImages) -> None:
    usage = {"input_tokens": 400, "input_tokens_details": {"text_tokens": 40,
                                                           "image_tokens": 360},
             "output_tokens": 1056, "output_tokens_details": {"image_tokens": 1056,
                                                              "text_tokens": 0},
             "total_tokens": 1456}
    server.enqueue(Fault.OK, usage=usage)
    [image] = await generate(edit_provider(), inpaint_job(store, noise(96, 64), a_mask()))
    # gpt-image-2 per million tokens: $5 text in, $8 image in, $30 image out
    expected = (40 * 5 + 360 * 8 + 1056 * 30) / 1_000_000
    assert image.cost_usd == pytest.approx(expected, rel=1e-6)
    assert image.details["cost_source"] == "token usage"


EDIT_FAULTS: list[tuple[Reply, type[ProviderError]]] = [
    (Reply(Fault.RATE_LIMIT, retry_after=2), RateLimited),
    (Reply(Fault.QUOTA), QuotaExhausted),
    (Reply(Fault.SERVER_ERROR, status=503, html=True), Transient),
    (Reply(Fault.UNAUTHORIZED), Misconfigured),
    (Reply(Fault.MODERATION), ContentRejected),
    (Reply(Fault.BAD_REQUEST), InvalidRequest),
    (Reply(Fault.DROP), Transient),
    (Reply(Fault.HTML_200), Transient),
    (Reply(Fault.NOT_AN_IMAGE), Transient),
    (Reply(Fault.WRONG_SIZE), Transient),
]


@pytest.mark.parametrize(("reply", "expected"), EDIT_FAULTS,
                         ids=[r.fault.value for r, _ in EDIT_FAULTS])
async def test_each_fault_of_the_edits_endpoint_becomes_its_taxonomy_error(
        server: FakeOpenAI, edit_provider: Callable[..., OpenAIImagesProvider],
        store: InputImages, reply: Reply, expected: type[ProviderError]) -> None:
    server.script([reply])
    with pytest.raises(ProviderError) as caught:
        await generate(edit_provider(), inpaint_job(store, noise(96, 64), a_mask()))
    assert type(caught.value) is expected
    assert caught.value.provider == "openai"
    assert len(server.edit_requests()) == 1


async def test_a_stream_error_during_an_edit_is_a_refusal(
        server: FakeOpenAI, edit_provider: Callable[..., OpenAIImagesProvider],
        store: InputImages) -> None:
    server.enqueue(Fault.STREAM_ERROR)
    with pytest.raises(ContentRejected):
        await generate(edit_provider(stream_previews=True),
                       inpaint_job(store, noise(96, 64), a_mask()))
    assert len(server.edit_requests()) == 1


async def test_a_missing_input_image_fails_the_job_before_any_request(
        server: FakeOpenAI, edit_provider: Callable[..., OpenAIImagesProvider],
        store: InputImages) -> None:
    request = inpaint_job(store, noise(96, 64), a_mask())
    assert isinstance(request.work, Inpaint)
    store.path(request.work.mask).unlink()
    with pytest.raises(InvalidRequest, match="is missing from"):
        await generate(edit_provider(), request)
    assert server.request_count == 0


async def test_the_fake_server_refuses_a_mask_of_another_size_as_the_api_does(
        server: FakeOpenAI) -> None:
    client = openai.AsyncOpenAI(api_key=KEY, base_url=server.base_url, max_retries=0)
    opaque = Image.new("RGBA", (32, 32), (0, 0, 0, 255))
    try:
        with pytest.raises(openai.BadRequestError, match="is not the image's 64x64"):
            await client.images.edit(image=("i.png", png(noise(64, 64)), "image/png"),
                                     mask=("m.png", png(opaque), "image/png"),
                                     prompt="x", model="gpt-image-2")
        with pytest.raises(openai.BadRequestError, match="alpha channel"):
            await client.images.edit(image=("i.png", png(noise(64, 64)), "image/png"),
                                     mask=("m.png", png(Image.new("L", (64, 64))), "image/png"),
                                     prompt="x", model="gpt-image-2")
    finally:
        await client.close()
    assert len(server.edit_requests()) == 2

