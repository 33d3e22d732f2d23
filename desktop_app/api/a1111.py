"""The Automatic1111 dialect: the subset of ``/sdapi/v1`` that clients use, with A1111's
field names, defaults and reply shapes (``info`` is a JSON *string*), so a client
written for A1111 works unchanged.

The "checkpoint" names where a job may run: ``auto`` (the routing settings),
``local``, ``cloud`` or a provider (``openai``), as ``/v1/models`` lists them.
Samplers are named as A1111 names them (``domain/samplers.py``; ``Default`` is the
model's own), and ``CLIP_stop_at_last_layers`` is the job's clip skip; other knobs
(hires fix, scripts, face restoration) are accepted and ignored."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from PIL import Image

from desktop_app.api import context as keys
from desktop_app.api import images
from desktop_app.api.errors import ApiError
from desktop_app.api.routing import model_choices, resolve_model
from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.request import MAX_IMAGES, GenerationRequest, ImageToImage, Inpaint
from desktop_app.domain.samplers import SAMPLERS, sampler_named
from desktop_app.store.a1111 import parse_a1111_parameters
from desktop_app.store.input_images import InputImageError

SAMPLER = "Default"  # the model's own scheduler (the local.scheduler setting)
CHECKPOINT = web.AppKey("a1111_checkpoint", list)  # [the current checkpoint's name]
_VERSION = "imagedesk"

# StableDiffusionProcessingTxt2Img's defaults, as A1111's API fills them in
TXT2IMG_DEFAULTS: dict[str, Any] = {
    "prompt": "", "negative_prompt": "", "styles": [], "seed": -1, "subseed": -1,
    "subseed_strength": 0, "seed_resize_from_h": -1, "seed_resize_from_w": -1,
    "sampler_name": None, "scheduler": None, "batch_size": 1, "n_iter": 1, "steps": 50,
    "cfg_scale": 7.0, "width": 512, "height": 512, "restore_faces": None, "tiling": None,
    "do_not_save_samples": False, "do_not_save_grid": False, "eta": None,
    "denoising_strength": None, "override_settings": None,
    "override_settings_restore_afterwards": True, "sampler_index": "Euler",
    "script_name": None, "script_args": [], "send_images": True, "save_images": False,
    "alwayson_scripts": {}, "enable_hr": False,
}
IMG2IMG_DEFAULTS: dict[str, Any] = {
    **{k: v for k, v in TXT2IMG_DEFAULTS.items() if k != "enable_hr"},
    "init_images": None, "resize_mode": 0, "image_cfg_scale": None, "mask": None,
    "mask_blur_x": 4, "mask_blur_y": 4, "mask_blur": None, "inpainting_fill": 0,
    "inpaint_full_res": True, "inpaint_full_res_padding": 0, "inpainting_mask_invert": 0,
    "initial_noise_multiplier": None, "include_init_images": False,
    "denoising_strength": 0.75,
}


def add_routes(app: web.Application) -> None:
    app[CHECKPOINT] = ["auto"]
    app.router.add_post("/sdapi/v1/txt2img", txt2img)
    app.router.add_post("/sdapi/v1/img2img", img2img)
    app.router.add_get("/sdapi/v1/progress", progress)
    app.router.add_post("/sdapi/v1/interrupt", interrupt)
    app.router.add_get("/sdapi/v1/sd-models", sd_models)
    app.router.add_get("/sdapi/v1/samplers", samplers)
    app.router.add_get("/sdapi/v1/options", get_options)
    app.router.add_post("/sdapi/v1/options", set_options)
    app.router.add_get("/sdapi/v1/loras", loras)
    app.router.add_post("/sdapi/v1/png-info", png_info)
    app.router.add_get("/sdapi/v1/scripts", scripts)


async def _body(request: web.Request, defaults: Mapping[str, Any]) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(422, "The body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise ApiError(422, "The body must be a JSON object.")
    return {**defaults, **body}


def _number(body: Mapping[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(422, f"{name} must be a number (got {type(value).__name__}).",
                       param=name)
    if kind is int:
        if value != int(value):
            raise ApiError(422, f"{name} must be a whole number.", param=name)
        return int(value)
    return float(value)


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(422, f"{name} must be text.", param=name)
    return value


def _checkpoint(request: web.Request, body: Mapping[str, Any]) -> str:
    override = body.get("override_settings")
    if isinstance(override, dict) and override.get("sd_model_checkpoint"):
        return str(override["sd_model_checkpoint"])
    return str(request.app[CHECKPOINT][0])


async def _request(request: web.Request, body: dict[str, Any],
                   work: ImageToImage | Inpaint | None) -> GenerationRequest:
    count = _number(body, "batch_size", int) * _number(body, "n_iter", int)
    if not 1 <= count <= MAX_IMAGES:
        raise ApiError(422, f"batch_size × n_iter must be 1 to {MAX_IMAGES} (got {count}).",
                       param="batch_size")
    seed = _number(body, "seed", int)
    policy, checkpoint = await resolve_model(request.app,
                                             _checkpoint(request, body).split(" [")[0],
                                             request.app[keys.POLICY_KEY]())
    try:
        return GenerationRequest(
            prompt=_text(body, "prompt"), negative_prompt=_text(body, "negative_prompt"),
            width=_number(body, "width", int), height=_number(body, "height", int),
            steps=_number(body, "steps", int), guidance=_number(body, "cfg_scale", float),
            seed=None if seed < 0 else seed, n=count, policy=policy, work=work,
            sampler=_sampler(body), clip_skip=_clip_skip(body), model=checkpoint)
    except InvalidRequest as error:
        raise ApiError(422, error.message, param=error.field or None) from None


async def txt2img(request: web.Request) -> web.Response:
    body = await _body(request, TXT2IMG_DEFAULTS)
    generation = await _request(request, body, None)
    return await _answer(request, body, generation)


async def img2img(request: web.Request) -> web.Response:
    body = await _body(request, IMG2IMG_DEFAULTS)
    inits = body.get("init_images")
    if not isinstance(inits, list) or not inits:
        raise ApiError(422, "init_images must hold one base64 image.", param="init_images")
    engine = request.app[keys.ENGINE_KEY]
    strength = _number(body, "denoising_strength", float)
    size = (_number(body, "width", int), _number(body, "height", int))
    mode = _number(body, "resize_mode", int)
    try:
        init = images.checked_image(images.decode_base64(inits[0], "init_images"),
                                    "init_images")
        source = await engine.add_input_image(await asyncio.to_thread(
            images.resized_as_a1111, init, size, mode, "init_images"))
        if body.get("mask"):
            invert = bool(body.get("inpainting_mask_invert"))
            drawn = images.mask_from_a1111(images.decode_base64(body["mask"], "mask"),
                                           invert=invert)
            mask = await engine.add_input_image(await asyncio.to_thread(
                images.resized_as_a1111, drawn, size, mode, "mask", mask=True), "mask")
            blur = _number(body, "mask_blur" if body.get("mask_blur") is not None
                           else "mask_blur_x", int)
            work: ImageToImage | Inpaint = Inpaint(source=source, mask=mask,
                                                   strength=strength, mask_blur=blur)
        else:
            work = ImageToImage(source=source, strength=strength)
    except (InputImageError, InvalidRequest) as error:
        raise ApiError(422, error.message) from error
    return await _answer(request, body, await _request(request, body, work))


async def _answer(request: web.Request, body: dict[str, Any],
                  generation: GenerationRequest) -> web.Response:
    started = time.strftime("%Y%m%d%H%M%S")
    jobs = request.app[keys.JOBS_KEY]
    try:
        pairs = (await jobs.run(generation)).images
    except ApiError as error:
        if error.code != "cancelled":
            raise
        pairs = []  # interrupted: A1111 answers with what it has made, here nothing
    infotexts = await asyncio.to_thread(lambda: [_parameters_of(data) for _, data in pairs])
    records = [record for record, _ in pairs]
    seeds = [r.seed if r.seed is not None else -1 for r in records] or [-1]
    info = {
        "prompt": generation.prompt, "all_prompts": [generation.prompt] * max(1, len(records)),
        "negative_prompt": generation.negative_prompt,
        "all_negative_prompts": [generation.negative_prompt] * max(1, len(records)),
        "seed": seeds[0], "all_seeds": seeds, "subseed": -1, "all_subseeds": [-1] * len(seeds),
        "subseed_strength": 0, "width": generation.width, "height": generation.height,
        "sampler_name": generation.sampler or SAMPLER, "cfg_scale": generation.guidance,
        "steps": generation.steps,
        "batch_size": body.get("batch_size", 1), "restore_faces": False,
        "face_restoration_model": None,
        "sd_model_name": records[0].model if records else None, "sd_model_hash": None,
        "sd_vae_name": None, "sd_vae_hash": None, "seed_resize_from_w": -1,
        "seed_resize_from_h": -1,
        "denoising_strength": getattr(generation.work, "strength", body.get(
            "denoising_strength")),
        "extra_generation_params": {"Provider": records[0].provider} if records else {},
        "index_of_first_image": 0, "infotexts": infotexts, "styles": body.get("styles") or [],
        "job_timestamp": started, "clip_skip": 1, "is_using_inpainting_conditioning": False,
        "version": _VERSION,
    }
    parameters = {k: v for k, v in body.items() if k not in ("init_images", "mask")}
    if "init_images" in body:
        parameters["init_images"] = None
        parameters["mask"] = None
    return web.json_response({
        "images": [base64.b64encode(data).decode("ascii") for _, data in pairs],
        "parameters": parameters, "info": json.dumps(info)})


def _parameters_of(data: bytes) -> str:
    try:
        with Image.open(io.BytesIO(data)) as image:
            text = getattr(image, "text", {}).get("parameters", "")
    except (OSError, ValueError, SyntaxError):
        return ""
    return text if isinstance(text, str) else ""


async def progress(request: web.Request) -> web.Response:
    """The API's oldest running job (else one the window or the CLI runs): fraction,
    ETA, step, the latest preview."""
    jobs = request.app[keys.JOBS_KEY]
    tracks = sorted(jobs.tracks.values(), key=lambda t: t.submitted_at) or sorted(
        jobs.others.values(), key=lambda t: t.submitted_at)
    state = {"skipped": False, "interrupted": False, "job": "", "job_count": len(tracks),
             "job_timestamp": "0", "job_no": 0, "sampling_step": 0, "sampling_steps": 0}
    if not tracks:
        return web.json_response({"progress": 0.0, "eta_relative": 0.0, "state": state,
                                  "current_image": None, "textinfo": None})
    track = next((t for t in tracks if t.started_at is not None), tracks[0])
    fraction = track.step / track.total if track.total else 0.0
    eta = 0.0
    if track.started_at is not None and fraction > 0:
        elapsed = time.monotonic() - track.started_at
        eta = elapsed / fraction - elapsed
    state.update(job=f"job {track.job_id}", sampling_step=track.step,
                 sampling_steps=track.total)
    skip = request.query.get("skip_current_image", "false").lower() in ("true", "1")
    preview = None
    if track.preview_png is not None and not skip:
        preview = base64.b64encode(track.preview_png).decode("ascii")
    return web.json_response({"progress": round(fraction, 4), "eta_relative": round(eta, 2),
                              "state": state, "current_image": preview,
                              "textinfo": None})


async def interrupt(request: web.Request) -> web.Response:
    await request.app[keys.JOBS_KEY].interrupt()
    return web.json_response({})


async def sd_models(request: web.Request) -> web.Response:
    return web.json_response([
        {"title": name, "model_name": name, "hash": None, "sha256": None, "filename": name,
         "config": None} for name in await model_choices(request.app)])


async def samplers(request: web.Request) -> web.Response:
    return web.json_response([{"name": name, "aliases": [], "options": {}}
                              for name in (SAMPLER, *SAMPLERS)])


def _sampler(body: Mapping[str, Any]) -> str | None:
    """The job's sampler by its A1111 name; None for the model's own."""
    value = body.get("sampler_name") or body.get("sampler_index")
    if value in (None, "", SAMPLER):
        return None
    try:
        return sampler_named(str(value))
    except InvalidRequest as error:
        raise ApiError(422, f"{error.message} (or {SAMPLER})", param="sampler_name") from None


def _clip_skip(body: Mapping[str, Any]) -> int | None:
    override = body.get("override_settings")
    value = override.get("CLIP_stop_at_last_layers") if isinstance(override, dict) else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 12:
        raise ApiError(422, "CLIP_stop_at_last_layers must be a whole number from 1 to 12.",
                       param="override_settings")
    return value


async def get_options(request: web.Request) -> web.Response:
    return web.json_response({"sd_model_checkpoint": request.app[CHECKPOINT][0],
                              "sd_checkpoint_hash": None, "samples_format": "png",
                              "CLIP_stop_at_last_layers": 1})


async def set_options(request: web.Request) -> web.Response:
    body = await _body(request, {})
    checkpoint = body.get("sd_model_checkpoint")
    if checkpoint is not None:
        name = str(checkpoint).split(" [")[0]
        await resolve_model(request.app, name,
                            request.app[keys.POLICY_KEY]())  # refuses an unknown name
        request.app[CHECKPOINT][0] = name
    return web.json_response(None)


async def loras(request: web.Request) -> web.Response:
    return web.json_response([])


async def scripts(request: web.Request) -> web.Response:
    return web.json_response({"txt2img": [], "img2img": []})


async def png_info(request: web.Request) -> web.Response:
    body = await _body(request, {})
    data = images.decode_base64(body.get("image"), "image")

    def read() -> dict[str, Any]:
        try:
            with Image.open(io.BytesIO(data)) as image:
                chunks = {k: v for k, v in getattr(image, "text", {}).items()
                          if isinstance(v, str)}
        except (OSError, ValueError, SyntaxError):
            raise ApiError(422, "image is not an image that can be read.",
                           param="image") from None
        info = chunks.pop("parameters", "")
        return {"info": info, "items": chunks,
                "parameters": parse_a1111_parameters(info) if info else {}}

    return web.json_response(await asyncio.to_thread(read))
