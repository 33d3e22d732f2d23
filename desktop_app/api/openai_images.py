"""The OpenAI Images dialect: ``POST /v1/images/generations``, ``POST /v1/images/edits``
and ``GET /v1/models``, answered with ``b64_json`` images as OpenAI answers them."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.web_request import FileField

from desktop_app.api import context as keys
from desktop_app.api import images
from desktop_app.api.errors import ApiError, public_message
from desktop_app.api.routing import model_choices, resolve_model
from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.request import (
    MAX_IMAGES,
    GenerationRequest,
    ImageToImage,
    Inpaint,
    OutputFormat,
    Quality,
    parse_size,
)
from desktop_app.store.input_images import InputImageError

AUTO_SIZE = (1024, 1024)
# sent by OpenAI's clients, meaningless here: accepted and ignored
_IGNORED = {"user", "background", "moderation", "style", "output_compression",
            "input_fidelity"}
_KNOWN = {"prompt", "n", "size", "quality", "output_format", "response_format", "model",
          "stream", "partial_images"} | _IGNORED
_QUALITY = {"auto": Quality.AUTO, "low": Quality.LOW, "medium": Quality.MEDIUM,
            "high": Quality.HIGH, "standard": Quality.MEDIUM, "hd": Quality.HIGH}


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/images/generations", generations)
    app.router.add_post("/v1/images/edits", edits)
    app.router.add_get("/v1/models", models)


async def models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [
        {"id": name, "object": "model", "created": 0, "owned_by": "imagedesk"}
        for name in await model_choices(request.app)]})


async def generations(request: web.Request) -> web.StreamResponse:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "The body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object.")
    return await _generate(request, body, work=None)


async def edits(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    files = [v for k, v in form.items() if k in ("image", "image[]") and isinstance(v, FileField)]
    if not files:
        raise ApiError(400, "Send the image to edit as the form part 'image'.", param="image")
    if len(files) > 1:
        raise ApiError(400, "ImageDesk edits one image at a time; send one 'image'.",
                       param="image")
    fields: dict[str, Any] = {k: v for k, v in form.items()
                              if isinstance(v, str) and k not in ("image", "image[]", "mask")}
    for name in ("n",):
        if name in fields:
            try:
                fields[name] = int(fields[name])
            except ValueError:
                raise ApiError(400, f"{name} must be a whole number.", param=name) from None
    engine = request.app[keys.ENGINE_KEY]
    try:
        source = await engine.add_input_image(
            images.checked_image(files[0].file.read(), "image"), "source")
        mask_part = form.get("mask")
        if isinstance(mask_part, FileField):
            mask = await engine.add_input_image(images.mask_from_openai(mask_part.file.read()),
                                                "mask")
            work: ImageToImage | Inpaint = Inpaint(source=source, mask=mask)
        else:
            work = ImageToImage(source=source)
    except (InputImageError, InvalidRequest) as error:
        raise ApiError(400, error.message, param="mask" if "mask" in error.message else "image",
                       code="invalid_value") from error
    fields.pop("size", None)  # the result has the source's size
    return await _generate(request, fields, work=work)


async def _generate(request: web.Request, body: Mapping[str, Any],
                    work: ImageToImage | Inpaint | None) -> web.StreamResponse:
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        raise ApiError(400, f"Unrecognized request argument supplied: {unknown[0]}",
                       param=unknown[0], code="unknown_parameter")
    stream = body.get("stream") in (True, "true")
    if body.get("stream") not in (None, False, "false", True, "true"):
        raise ApiError(400, "stream must be true or false.", param="stream")
    partials = body.get("partial_images", 0)
    if isinstance(partials, str) and partials.isdigit():
        partials = int(partials)
    if isinstance(partials, bool) or not isinstance(partials, int) or not 0 <= partials <= 3:
        raise ApiError(400, "partial_images must be 0 to 3.", param="partial_images",
                       code="invalid_value")
    if body.get("response_format") not in (None, "b64_json"):
        raise ApiError(400, "ImageDesk answers only response_format 'b64_json'.",
                       param="response_format", code="unsupported_value")
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise ApiError(400, "Missing required parameter: 'prompt'.", param="prompt",
                       code="missing_required_parameter")
    n = body.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
        raise ApiError(400, f"n must be a whole number from 1 to {MAX_IMAGES}.", param="n",
                       code="invalid_value")
    size = body.get("size", "auto")
    if size in (None, "auto"):
        width, height = AUTO_SIZE
    elif isinstance(size, str):
        try:
            width, height = parse_size(size)
        except InvalidRequest as error:
            raise ApiError(400, error.message, param="size", code="invalid_value") from None
    else:
        raise ApiError(400, "size must look like 1024x1024.", param="size")
    quality = _choice(body, "quality", _QUALITY, Quality.AUTO)
    output_format = _choice(body, "output_format",
                            {f.value: f for f in OutputFormat} | {"jpg": OutputFormat.JPEG},
                            OutputFormat.PNG)
    policy, checkpoint = await resolve_model(request.app, body.get("model"),
                                             request.app[keys.POLICY_KEY]())
    try:
        generation = GenerationRequest(prompt=prompt, width=width, height=height, n=n,
                                       quality=quality, output_format=output_format,
                                       policy=policy, work=work, model=checkpoint)
    except InvalidRequest as error:
        raise ApiError(400, error.message, param=error.field or None,
                       code="invalid_value") from None
    if stream:
        kind = "image_generation" if work is None else "image_edit"
        return await _stream(request, generation, kind, partials)
    finished = await request.app[keys.JOBS_KEY].run(generation)
    first = finished.images[0][0] if finished.images else None
    return web.json_response({
        "created": int(time.time()),
        "data": [{"b64_json": base64.b64encode(data).decode("ascii"), "revised_prompt": None}
                 for _, data in finished.images],
        "output_format": first.format if first else output_format.value,
        "quality": quality.value,
        "size": f"{first.width}x{first.height}" if first else generation.size,
        "background": "opaque",
    })


async def _stream(request: web.Request, generation: GenerationRequest, kind: str,
                  partials: int) -> web.StreamResponse:
    """Server-sent events as OpenAI streams images: ``<kind>.partial_image`` for up to
    ``partials`` previews the provider sends, then ``<kind>.completed`` per image; a
    failure after the stream began is a ``data: {"error": ...}`` event."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)
    common = {"background": "opaque", "output_format": generation.output_format.value,
              "quality": generation.quality.value, "size": generation.size}
    sent: list[bytes] = []
    pending: list[bytes] = []
    wake = asyncio.Event()

    def on_preview(png: bytes) -> None:  # runs on the engine's loop: queue, never wait
        if len(sent) + len(pending) < partials:
            pending.append(png)
            wake.set()

    async def event(name: str, data: Mapping[str, Any]) -> None:
        await response.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

    async def relay() -> None:
        while True:
            await wake.wait()
            wake.clear()
            while pending:
                png = pending.pop(0)
                await event(f"{kind}.partial_image", {
                    "type": f"{kind}.partial_image", "b64_json": _b64(png),
                    "created_at": int(time.time()), "partial_image_index": len(sent),
                    **common})
                sent.append(png)

    relaying = asyncio.ensure_future(relay())
    try:
        finished = await request.app[keys.JOBS_KEY].run(generation, on_preview)
    except ApiError as error:
        relaying.cancel()
        await response.write(("data: " + json.dumps({"error": {
            "message": public_message(error.message), "type": "server_error",
            "param": error.param, "code": error.code}}) + "\n\n").encode())
        await response.write_eof()
        return response
    finally:
        relaying.cancel()
    for record, data in finished.images:
        await event(f"{kind}.completed", {
            "type": f"{kind}.completed", "b64_json": _b64(data), "created_at": int(time.time()),
            **common, "size": f"{record.width}x{record.height}",
            "output_format": record.format,
            "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0,
                      "input_tokens_details": {"image_tokens": 0, "text_tokens": 0}}})
    await response.write_eof()
    return response


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _choice(body: Mapping[str, Any], name: str, allowed: Mapping[str, Any], default: Any) -> Any:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, str) and value.lower() in allowed:
        return allowed[value.lower()]
    raise ApiError(400, f"{name} must be one of {', '.join(allowed)}.", param=name,
                   code="invalid_value")
