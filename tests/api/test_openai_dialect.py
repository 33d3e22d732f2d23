"""The OpenAI dialect, driven by the official ``openai`` package pointed at the server:
the job runs through the real engine (scripted providers, real SQLite, real files),
lands in the gallery and is marked as from the API."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
from PIL import Image

from desktop_app.api.server import ApiServer
from desktop_app.domain.errors import Misconfigured, RateLimited
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest, Inpaint, RouteMode
from desktop_app.providers.base import (
    CancelToken,
    Phase,
    Progress,
    ProgressCallback,
    ProviderKind,
)
from desktop_app.store.input_images import InputImages
from tests.api.conftest import Serve
from tests.api.support import TOKEN, image_provider
from tests.fakes.scripted_provider import ScriptedProvider, png_bytes

_OPEN: list[openai.AsyncOpenAI] = []


def client(server: ApiServer) -> openai.AsyncOpenAI:
    api = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=TOKEN, max_retries=0)
    _OPEN.append(api)
    return api


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    """Each client closes on the loop that made it (httpx would close it later, on none)."""
    yield
    while _OPEN:
        await _OPEN.pop().close()


async def test_openai_sdk_generates_an_image_that_lands_in_the_gallery(serve: Serve) -> None:
    local = ScriptedProvider("local")
    server = await serve(local)
    reply = await client(server).images.generate(prompt="a red kite over a hill", n=2,
                                                 size="64x64", response_format="b64_json")
    assert reply.data is not None and len(reply.data) == 2
    assert reply.data[0].b64_json is not None
    image = Image.open(io.BytesIO(base64.b64decode(reply.data[0].b64_json)))
    assert image.size == (64, 64) and image.format == "PNG"
    [job] = await server.engine.jobs()
    assert job.state is JobState.SUCCEEDED and job.provider == "local"
    assert job.request.origin == "api" and job.request.prompt == "a red kite over a hill"
    found = await server.engine.search_images("kite")
    assert sorted(r.id for r in found) == sorted(job.image_ids)


async def test_with_the_local_model_missing_the_cloud_serves_and_the_job_says_why(
        serve: Serve) -> None:
    local = ScriptedProvider("local", script=[Misconfigured("the local model is not downloaded")])
    cloud = ScriptedProvider("openai", ProviderKind.CLOUD)
    server = await serve(local, cloud)
    reply = await client(server).images.generate(prompt="a lighthouse", size="64x64")
    assert reply.data and reply.data[0].b64_json
    [job] = await server.engine.jobs()
    assert job.provider == "openai"
    assert job.fallback_reason is not None and "not downloaded" in job.fallback_reason


async def test_model_names_pick_the_route(serve: Serve) -> None:
    local, cloud = ScriptedProvider("local"), ScriptedProvider("openai", ProviderKind.CLOUD)
    server = await serve(local, cloud)
    api = client(server)
    await api.images.generate(prompt="pinned to the cloud", size="64x64", model="openai")
    await api.images.generate(prompt="local only", size="64x64", model="local")
    jobs = {j.request.prompt: j for j in await server.engine.jobs()}
    assert jobs["pinned to the cloud"].provider == "openai"
    assert jobs["local only"].request.policy.mode is RouteMode.LOCAL_ONLY
    assert jobs["local only"].provider == "local"
    models = await api.models.list()
    assert {"auto", "local", "cloud", "openai"} <= {m.id for m in models.data}


async def test_bad_input_is_400_in_openai_shape_naming_the_parameter(serve: Serve) -> None:
    server = await serve()
    with pytest.raises(openai.BadRequestError) as caught:
        await client(server).images.generate(prompt="x", size="100x7")
    assert caught.value.status_code == 400 and caught.value.param == "width"
    assert "multiple of 8" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        await client(server).images.generate(prompt="x", model="midjourney")
    assert caught.value.code == "model_not_found"
    assert await server.engine.jobs() == []


async def test_a_wrong_token_is_an_authentication_error(serve: Serve) -> None:
    server = await serve()
    async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="wrong",
                                  max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError):
            await wrong.images.generate(prompt="x", size="64x64")


async def test_every_provider_rate_limited_is_429_with_retry_after(serve: Serve) -> None:
    local = ScriptedProvider("local", script=[RateLimited("busy", retry_after=3600)])
    server = await serve(local)
    with pytest.raises(openai.RateLimitError) as caught:
        await client(server).images.generate(prompt="x", size="64x64")
    assert int(caught.value.response.headers["Retry-After"]) > 60


async def test_no_provider_able_to_serve_is_503(serve: Serve) -> None:
    server = await serve(ScriptedProvider("local", script=[Misconfigured("no CUDA device")]))
    with pytest.raises(openai.InternalServerError) as caught:
        await client(server).images.generate(prompt="x", size="64x64")
    assert caught.value.status_code == 503 and "no CUDA device" in caught.value.message


def _rgba_with_hole(size: int = 64) -> bytes:
    image = Image.new("RGBA", (size, size), (10, 20, 30, 255))
    image.paste((0, 0, 0, 0), (0, 0, size // 2, size))  # left half transparent: edit it
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def test_an_edit_with_a_mask_is_an_inpaint_job_with_the_mask_converted(
        serve: Serve, tmp_path: Path) -> None:
    local = image_provider()
    server = await serve(local)
    reply = await client(server).images.edit(
        image=("source.png", png_bytes(64, 64), "image/png"), prompt="a door",
        mask=("mask.png", _rgba_with_hole(), "image/png"))
    assert reply.data and reply.data[0].b64_json
    [request] = local.calls
    assert isinstance(request.work, Inpaint) and request.origin == "api"
    mask = Image.open(io.BytesIO(InputImages(tmp_path / "inputs").read(request.work.mask)))
    assert mask.getpixel((5, 5)) == 255 and mask.getpixel((60, 5)) == 0  # white = repaint


async def test_an_edit_without_a_mask_is_image_to_image_and_a_maskless_alpha_is_refused(
        serve: Serve) -> None:
    local = image_provider()
    server = await serve(local)
    await client(server).images.edit(image=("s.png", png_bytes(64, 64), "image/png"),
                                     prompt="in watercolour")
    assert local.calls[-1].kind.value == "img2img"
    with pytest.raises(openai.BadRequestError) as caught:
        await client(server).images.edit(image=("s.png", png_bytes(64, 64), "image/png"),
                                         prompt="x", mask=("m.png", png_bytes(64, 64),
                                                           "image/png"))
    assert "alpha channel" in caught.value.message and caught.value.param == "mask"


class PreviewingProvider(ScriptedProvider):
    """Sends a preview image with each step, as the local pipeline does."""

    async def generate(self, request: GenerationRequest, progress: ProgressCallback,
                       cancel: CancelToken) -> list[GeneratedImage]:
        for step in (1, 2, 3):
            progress(Progress(Phase.GENERATING, step=step, total=3,
                              preview_png=png_bytes(16, 16, (step * 60, 0, 0))))
            await asyncio.sleep(0.01)
        return await super().generate(request, progress, cancel)


async def test_streaming_sends_partial_images_then_the_completed_one(serve: Serve) -> None:
    server = await serve(PreviewingProvider("local"))
    stream = await client(server).images.generate(prompt="a comet", size="64x64", stream=True,
                                                  partial_images=2)
    events = [event async for event in stream]
    assert [e.type for e in events] == ["image_generation.partial_image"] * 2 + [
        "image_generation.completed"]
    first = Image.open(io.BytesIO(base64.b64decode(events[0].b64_json))).convert("RGB")
    assert first.size == (16, 16) and first.getpixel((0, 0)) == (60, 0, 0)
    final = Image.open(io.BytesIO(base64.b64decode(events[-1].b64_json)))
    assert final.size == (64, 64)
    [job] = await server.engine.jobs()
    assert job.request.origin == "api" and job.state is JobState.SUCCEEDED


async def test_a_streamed_job_that_fails_ends_in_an_error_event(serve: Serve) -> None:
    server = await serve(ScriptedProvider("local", script=[Misconfigured("no CUDA device")]))
    stream = await client(server).images.generate(prompt="x", size="64x64", stream=True)
    with pytest.raises(openai.APIError) as caught:
        _ = [event async for event in stream]
    assert "no CUDA device" in caught.value.message


async def test_a_checkpoint_of_the_model_library_can_be_named_as_the_model(
        serve: Serve, tmp_path: Path) -> None:
    from desktop_app.api.context import library_checkpoints
    from tests.providers.local_diffusion.support import SD1_KEYS, write_safetensors

    folder = tmp_path / "webui" / "models" / "Stable-diffusion"
    folder.mkdir(parents=True)
    checkpoint = write_safetensors(folder / "dreamy_v2.safetensors", SD1_KEYS)
    local = ScriptedProvider("local")
    server = await serve(local, library_models=library_checkpoints(
        tmp_path / "models", lambda: [tmp_path / "webui" / "models"]))
    api = client(server)
    listed = [m.id async for m in api.models.list()]
    assert {"auto", "local", "openai", "dreamy_v2"} <= set(listed)
    await api.images.generate(prompt="a harbour", model="dreamy_v2", size="1024x1024")
    [sent] = local.calls
    assert sent.model == str(checkpoint) and sent.policy.provider == "local"
    with pytest.raises(openai.BadRequestError, match="Unknown model 'ponyXL'"):
        await api.images.generate(prompt="x", model="ponyXL")
