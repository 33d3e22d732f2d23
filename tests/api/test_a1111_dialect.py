"""The Automatic1111 dialect, driven by ``webuiapi`` (an A1111 client from PyPI,
unchanged) with Basic auth as ``--api-auth`` users set it, and by plain HTTP for the
exact shapes. The client is synchronous, so it runs in a thread beside the loop."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import webuiapi
from PIL import Image

from desktop_app.api.jobs import JobTrack
from desktop_app.api.server import ApiServer
from desktop_app.domain.job import JobState
from desktop_app.domain.request import Inpaint, RouteMode
from desktop_app.engine.events import JobProgress
from desktop_app.providers.base import ProviderKind
from desktop_app.store.input_images import InputImages
from tests.api.conftest import Serve
from tests.api.support import TOKEN, image_provider
from tests.fakes.scripted_provider import ScriptedProvider, png_bytes
from tests.waiting import wait_until

BEARER = {"Authorization": f"Bearer {TOKEN}"}


async def a1111(server: ApiServer) -> webuiapi.WebUIApi:
    """The client; made in a thread, as it calls the server while it is made."""
    return await asyncio.to_thread(webuiapi.WebUIApi, host="127.0.0.1", port=server.port,
                                   username="me", password=TOKEN)


async def test_webuiapi_txt2img_returns_the_image_and_a1111s_info(serve: Serve) -> None:
    local = ScriptedProvider("local")
    server = await serve(local)
    api = await a1111(server)
    result = await asyncio.to_thread(api.txt2img, prompt="a fox in snow", negative_prompt="blur",
                                     seed=42, steps=7, cfg_scale=5.5, width=64, height=64,
                                     batch_size=2)
    assert len(result.images) == 2 and result.images[0].size == (64, 64)
    assert result.info["seed"] == 42 and result.info["all_seeds"] == [42, 43]
    assert result.info["prompt"] == "a fox in snow" and result.info["steps"] == 7
    assert "a fox in snow" in result.info["infotexts"][0]  # the PNG's A1111 parameters
    [request] = local.calls
    assert (request.negative_prompt, request.steps, request.guidance) == ("blur", 7, 5.5)
    [job] = await server.engine.jobs()
    assert job.state is JobState.SUCCEEDED and job.request.origin == "api"


async def test_txt2img_fills_a1111s_defaults_and_answers_info_as_a_json_string(
        serve: Serve) -> None:
    local = ScriptedProvider("local")
    server = await serve(local)
    async with aiohttp.ClientSession() as session, session.post(
            server.url + "/sdapi/v1/txt2img", json={"prompt": "a cat", "width": 64,
                                                    "height": 64, "unknown_extension": 1},
            headers=BEARER) as reply:
        body = await reply.json()
    assert reply.status == 200 and isinstance(body["info"], str)
    assert body["parameters"]["steps"] == 50 and body["parameters"]["cfg_scale"] == 7.0
    info = json.loads(body["info"])
    assert info["all_prompts"] == ["a cat"]
    assert local.calls[0].steps == 50
    assert info["seed"] == local.calls[0].seed  # -1 asked: the seed picked is reported


async def test_bad_fields_are_422_naming_them(serve: Serve) -> None:
    server = await serve()
    async with aiohttp.ClientSession() as session, session.post(
            server.url + "/sdapi/v1/txt2img", json={"prompt": "x", "steps": "many"},
            headers=BEARER) as reply:
        body = await reply.json()
    assert reply.status == 422 and "steps" in body["detail"]
    assert await server.engine.jobs() == []


async def test_progress_reports_the_running_job_and_interrupt_cancels_it(serve: Serve) -> None:
    local = ScriptedProvider("local", script=["hang"])
    server = await serve(local)
    api = await a1111(server)
    assert (await asyncio.to_thread(api.get_progress))["state"]["job_count"] == 0
    running = asyncio.ensure_future(asyncio.to_thread(api.txt2img, prompt="slow", width=64,
                                                      height=64))
    await wait_until(lambda: bool(server.engine.running_job_ids))
    progress = await asyncio.to_thread(api.get_progress)
    assert progress["state"]["job_count"] == 1 and 0.0 <= progress["progress"] <= 1.0
    assert "eta_relative" in progress and "current_image" in progress
    await asyncio.to_thread(api.interrupt)
    result = await running
    assert result.images == []
    [job] = await server.engine.jobs()
    assert job.state is JobState.CANCELLED


async def test_progress_fraction_follows_the_providers_steps(serve: Serve) -> None:
    server = await serve()
    jobs = server.jobs
    jobs.tracks[99] = JobTrack(99, 0.0)
    server.engine.hub.emit(JobProgress(99, "local", 3, 4, preview_png=png_bytes(8, 8)))
    async with aiohttp.ClientSession() as session, session.get(
            server.url + "/sdapi/v1/progress", headers=BEARER) as reply:
        body = await reply.json()
    assert body["progress"] == 0.75 and body["state"]["sampling_step"] == 3
    assert Image.open(io.BytesIO(base64.b64decode(body["current_image"]))).size == (8, 8)


async def test_progress_also_follows_a_job_the_window_runs(serve: Serve) -> None:
    from desktop_app.engine.events import JobFinished, JobStarted

    server = await serve()
    hub = server.engine.hub

    async def progress() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, session.get(
                server.url + "/sdapi/v1/progress", headers=BEARER) as reply:
            body: dict[str, Any] = await reply.json()
            return body

    hub.emit(JobStarted(77))  # queued in the window, not through the API
    hub.emit(JobProgress(77, "local", 1, 4))
    seen = await progress()
    assert seen["progress"] == 0.25 and seen["state"]["job"] == "job 77"
    hub.emit(JobFinished(77, JobState.SUCCEEDED, "local", ()))
    assert (await progress())["state"]["job"] == ""


async def test_the_checkpoint_option_picks_the_route(serve: Serve) -> None:
    local, cloud = ScriptedProvider("local"), ScriptedProvider("openai", ProviderKind.CLOUD)
    server = await serve(local, cloud)
    api = await a1111(server)
    names = await asyncio.to_thread(api.util_get_model_names)
    assert {"auto", "local", "openai"} <= set(names)
    await asyncio.to_thread(api.set_options, {"sd_model_checkpoint": "openai"})
    assert (await asyncio.to_thread(api.get_options))["sd_model_checkpoint"] == "openai"
    await asyncio.to_thread(api.txt2img, prompt="to the cloud", width=64, height=64)
    await asyncio.to_thread(api.set_options, {"sd_model_checkpoint": "local"})
    await asyncio.to_thread(api.txt2img, prompt="kept local", width=64, height=64)
    jobs = {j.request.prompt: j for j in await server.engine.jobs()}
    assert jobs["to the cloud"].provider == "openai"
    assert jobs["kept local"].request.policy.mode is RouteMode.LOCAL_ONLY
    assert await asyncio.to_thread(api.get_samplers) and await asyncio.to_thread(
        api.get_loras) == []


async def test_webuiapi_img2img_with_a_mask_is_an_inpaint_job(serve: Serve,
                                                              tmp_path: Path) -> None:
    local = image_provider()
    server = await serve(local)
    source = Image.new("RGB", (64, 64), (30, 90, 160))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))  # A1111: white = inpaint
    api = await a1111(server)
    result = await asyncio.to_thread(api.img2img, images=[source], mask_image=mask,
                                     prompt="a window", denoising_strength=0.6, mask_blur=2,
                                     width=64, height=64)
    assert len(result.images) == 1
    [request] = local.calls
    assert isinstance(request.work, Inpaint) and request.work.strength == 0.6
    assert request.work.mask_blur == 2
    stored = Image.open(io.BytesIO(InputImages(tmp_path / "inputs").read(request.work.mask)))
    assert stored.getpixel((5, 5)) == 255 and stored.getpixel((60, 5)) == 0
    inverted = await asyncio.to_thread(api.img2img, images=[source],
                                       mask_image=mask, prompt="the rest",
                                       inpainting_mask_invert=1, width=64, height=64)
    assert len(inverted.images) == 1
    second = local.calls[1].work
    assert isinstance(second, Inpaint)
    flipped = Image.open(io.BytesIO(InputImages(tmp_path / "inputs").read(second.mask)))
    assert flipped.getpixel((5, 5)) == 0 and flipped.getpixel((60, 5)) == 255


async def test_png_info_reads_the_a1111_parameters_of_a_generated_image(serve: Serve) -> None:
    server = await serve()
    api = await a1111(server)
    made = await asyncio.to_thread(api.txt2img, prompt="a red door", seed=5, width=64,
                                   height=64)
    info = await asyncio.to_thread(api.png_info, made.image)
    assert "a red door" in info.info and info.json["parameters"]["Seed"] == "5"


async def test_a_sampler_and_clip_skip_from_an_a1111_client_reach_the_job(
        serve: Serve) -> None:
    local = ScriptedProvider("local")
    server = await serve(local)
    api = await a1111(server)
    names = [s["name"] for s in await asyncio.to_thread(api.get_samplers)]
    assert {"Euler a", "DPM++ 2M Karras"} <= set(names)
    result = await asyncio.to_thread(
        api.txt2img, prompt="a harbour", width=64, height=64, sampler_name="DPM++ 2M Karras",
        override_settings={"CLIP_stop_at_last_layers": 2})
    assert result.info["sampler_name"] == "DPM++ 2M Karras"
    [sent] = local.calls
    assert sent.sampler == "DPM++ 2M Karras" and sent.clip_skip == 2
    async with aiohttp.ClientSession() as session, session.post(
            server.url + "/sdapi/v1/txt2img", headers=BEARER,
            json={"prompt": "x", "sampler_name": "Eulr"}) as reply:
        assert reply.status == 422
        assert "Unknown sampler 'Eulr'" in (await reply.text())


async def test_img2img_brings_the_source_to_the_size_asked_as_a1111_does(
        serve: Serve, tmp_path: Path) -> None:
    local = image_provider()
    server = await serve(local)
    source = Image.new("RGB", (64, 32), (30, 90, 160))
    api = await a1111(server)
    await asyncio.to_thread(api.img2img, images=[source], prompt="wider", width=128,
                            height=128)  # just resize (stretch)
    await asyncio.to_thread(api.img2img, images=[source], prompt="filled", width=96,
                            height=96, resize_mode=1)  # crop and resize
    stretched, cropped = (call.work for call in local.calls)
    assert stretched is not None and stretched.source.size == (128, 128)
    assert cropped is not None and cropped.source.size == (96, 96)
    async with aiohttp.ClientSession() as session:
        for extra, message in (({"resize_mode": 2, "width": 96},
                                "resize_mode 2 is not supported"),
                               ({"width": 100_000}, "width and height must be 64 to")):
            body = {"init_images": [base64.b64encode(png_bytes(64, 64)).decode()],
                    "prompt": "x", "width": 64, "height": 64, **extra}
            async with session.post(server.url + "/sdapi/v1/img2img", headers=BEARER,
                                    json=body) as reply:
                assert reply.status == 422 and message in await reply.text()


async def test_a_malformed_lora_tag_from_an_a1111_client_is_422_and_queues_nothing(
        serve: Serve) -> None:
    server = await serve()
    async with aiohttp.ClientSession() as session, session.post(
            server.url + "/sdapi/v1/txt2img", json={"prompt": "a cat <lora:grain:0.5:0.5:8>"},
            headers=BEARER) as reply:
        body = await reply.json()
    assert reply.status == 422 and "<lora:grain:0.5:0.5:8>" in body["detail"]
    assert await server.engine.jobs() == []
