"""Turning what the SDK returned (a parsed response or a stream of events) into
validated images, and pricing them.

The SDK does not validate responses (docs/ARCHITECTURE.md): an HTML page comes back as
a ``str``, a wrong schema as an object whose ``data`` may be anything. Every
shape is checked here; image decoding runs in a worker thread, off the loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
from collections.abc import Mapping
from typing import Any

import openai
from openai.types import ImagesResponse
from PIL import Image

from desktop_app.domain.errors import Transient
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import Phase, Progress, ProgressCallback

from .errors import PROVIDER
from .models import ModelSpec
from .prices import PriceTable, TokenUsage, usage_from
from .validate import DecodedImage, ImageLimits, decode_b64, validate_image

log = logging.getLogger(__name__)
PREVIEW_SIDE = 512


@dataclasses.dataclass(frozen=True)
class ReceivedImage:
    image: DecodedImage
    revised_prompt: str | None = None
    usage: TokenUsage | None = None  # this image's own usage (streamed completions)


@dataclasses.dataclass(frozen=True)
class Payload:
    """Validated images from one call, with what is needed to price them."""

    images: tuple[ReceivedImage, ...]
    usage: TokenUsage | None = None  # the whole response's usage
    request_id: str | None = None

    def to_images(self, *, request: GenerationRequest, model: str, spec: ModelSpec,
                  prices: PriceTable) -> list[GeneratedImage]:
        model_prices = prices.for_model(model)
        api_quality = spec.to_api_quality(request.quality.value)
        shared: float | None = None
        if self.usage is not None and model_prices is not None:
            total = model_prices.token_cost(self.usage)
            shared = None if total is None else total / len(self.images)
        out = []
        for received in self.images:
            img = received.image
            cost, source = shared, "token usage"
            if received.usage is not None and model_prices is not None:
                own = model_prices.token_cost(received.usage)
                if own is not None:
                    cost = own
            if cost is None:
                cost = prices.estimate(model, img.width, img.height, api_quality)
                source = "price table estimate"
            details = {"model": model, "quality": api_quality or "auto",
                       "size": f"{img.width}x{img.height}",
                       "requested_size": request.size, "cost_source": source}
            if received.revised_prompt:
                details["revised_prompt"] = received.revised_prompt
            if self.request_id:
                details["request_id"] = self.request_id
            out.append(GeneratedImage(data=img.data, format=img.format, width=img.width,
                                      height=img.height, provider=PROVIDER, model=model,
                                      seed=None, cost_usd=round(cost, 6), details=details))
        return out


def _bad_response(message: str) -> Transient:
    return Transient(f"OpenAI sent an unusable response: {message}", provider=PROVIDER)


def _field(obj: object, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _validate_one(payload: object, request: GenerationRequest,
                  limits: ImageLimits) -> DecodedImage:
    data = decode_b64(payload, limits)
    return validate_image(data, expected_format=request.output_format.value,
                          width=request.width, height=request.height, limits=limits)


async def collect_response(parsed: object, *, request: GenerationRequest,
                           limits: ImageLimits, request_id: str | None) -> Payload:
    if isinstance(parsed, str):
        raise _bad_response("a web page or text instead of JSON (is the base URL right?)")
    if not isinstance(parsed, ImagesResponse):
        raise _bad_response(f"unexpected type {type(parsed).__name__}")
    data = parsed.data
    if not isinstance(data, list) or not data:
        raise _bad_response("no images in it")
    if len(data) > request.n:
        raise _bad_response(f"{len(data)} images for {request.n} asked")
    items = []
    for item in data:
        b64 = _field(item, "b64_json")
        if b64 is None and _field(item, "url"):
            raise _bad_response("a link instead of image data (b64_json was asked for)")
        revised = _field(item, "revised_prompt")
        items.append((b64, revised if isinstance(revised, str) else None))
    images = []
    for b64, revised in items:
        decoded = await asyncio.to_thread(_validate_one, b64, request, limits)
        images.append(ReceivedImage(decoded, revised_prompt=revised))
    return Payload(images=tuple(images), usage=usage_from(parsed.usage), request_id=request_id)


async def collect_stream(stream: openai.AsyncStream[Any], *, request: GenerationRequest,
                         limits: ImageLimits, progress: ProgressCallback,
                         total_previews: int) -> Payload:
    """Read a stream of image events: partial images become previews, each
    completed event an image; an error event raises (mapped by its code)."""
    images: list[ReceivedImage] = []
    async with stream:
        async for event in stream:
            kind = _field(event, "type")
            if kind == "image_generation.partial_image":
                preview = await asyncio.to_thread(_preview_png, _field(event, "b64_json"),
                                                  limits)
                index = _field(event, "partial_image_index")
                step = index + 1 if isinstance(index, int) else 0
                if preview is not None:
                    progress(Progress(Phase.GENERATING, step=step, total=total_previews,
                                      message="preview", preview_png=preview))
            elif kind == "image_generation.completed":
                decoded = await asyncio.to_thread(_validate_one, _field(event, "b64_json"),
                                                  request, limits)
                images.append(ReceivedImage(decoded, usage=usage_from(_field(event, "usage"))))
            elif (kind == "error" or _field(event, "error") is not None
                  or _field(event, "code") is not None):
                raise _stream_error(event, stream)
    if not images:
        raise _bad_response("the stream ended before any image arrived")
    if len(images) > request.n:
        raise _bad_response(f"{len(images)} images for {request.n} asked")
    return Payload(images=tuple(images))


def _stream_error(event: object, stream: openai.AsyncStream[Any]) -> openai.APIError:
    """An error event the SDK let through (one without an ``error`` object)."""
    inner = _field(event, "error")
    body = inner if isinstance(inner, Mapping) else {
        "code": _field(event, "code"), "message": _field(event, "message")}
    message = body.get("message")
    return openai.APIError(str(message or "error during streaming"),
                           stream.response.request, body=dict(body))


def _preview_png(payload: object, limits: ImageLimits) -> bytes | None:
    """A small PNG of a partial image, or ``None`` when it is unusable (a bad
    preview is skipped; only the final image decides the outcome)."""
    try:
        data = decode_b64(payload, limits)
        with Image.open(io.BytesIO(data)) as img:
            if img.size[0] * img.size[1] > limits.max_pixels:
                return None
            img.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
            out = io.BytesIO()
            img.convert("RGBA" if "A" in img.getbands() else "RGB").save(out, "PNG")
            return out.getvalue()
    except Exception as exc:
        log.debug("skipping an unusable preview (%s)", type(exc).__name__)
        return None
