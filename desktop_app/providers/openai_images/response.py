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
import json
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
class UnusableImage:
    """An image the server made (and billed) that failed our checks."""

    reason: str
    usage: TokenUsage | None = None


@dataclasses.dataclass(frozen=True)
class Payload:
    """Validated images from one call, with what is needed to price them."""

    images: tuple[ReceivedImage, ...]
    usage: TokenUsage | None = None  # the whole response's usage
    request_id: str | None = None
    unusable: tuple[UnusableImage, ...] = ()

    def to_images(self, *, request: GenerationRequest, model: str, spec: ModelSpec,
                  prices: PriceTable) -> list[GeneratedImage]:
        """Priced images. Every image the call billed is accounted: an unusable
        one's cost is shared by the usable ones, and when none is usable the
        ``Transient`` raised carries the cost in ``billed_usd``."""
        model_prices = prices.for_model(model)
        api_quality = spec.to_api_quality(request.quality.value)
        shared: float | None = None
        count = len(self.images) + len(self.unusable)
        if self.usage is not None and model_prices is not None and count:
            total = model_prices.token_cost(self.usage)
            shared = None if total is None else total / count

        def cost_of(usage: TokenUsage | None, width: int, height: int) -> tuple[float, str]:
            if usage is not None and model_prices is not None:
                own = model_prices.token_cost(usage)
                if own is not None:
                    return own, "token usage"
            if shared is not None:
                return shared, "token usage"
            return prices.estimate(model, width, height, api_quality), "price table estimate"

        wasted = sum(cost_of(u.usage, request.width, request.height)[0] for u in self.unusable)
        if not self.images:
            reasons = "; ".join(dict.fromkeys(u.reason for u in self.unusable))
            billed = f" (billed ${wasted:.4f}, recorded)" if wasted else ""
            raise Transient(f"OpenAI returned an unusable image: {reasons}{billed}",
                            provider=PROVIDER, billed_usd=round(wasted, 6))
        out = []
        for received in self.images:
            img = received.image
            cost, source = cost_of(received.usage, img.width, img.height)
            details = {"model": model, "quality": api_quality or "auto",
                       "size": f"{img.width}x{img.height}",
                       "requested_size": request.size, "cost_source": source}
            if self.unusable:
                cost += wasted / len(self.images)
                details["unusable_images"] = (
                    f"{len(self.unusable)} more billed but unusable "
                    f"({self.unusable[0].reason}); their cost is included")
            if img.format != request.output_format.value:
                details["received_format"] = img.format
            if received.revised_prompt:
                details["revised_prompt"] = received.revised_prompt
            if self.request_id:
                details["request_id"] = self.request_id
            out.append(GeneratedImage(data=img.data, format=img.format, width=img.width,
                                      height=img.height, provider=PROVIDER, model=model,
                                      seed=None, cost_usd=round(cost, 6), details=details))
        return out


    def billed_usd(self, *, request: GenerationRequest, model: str, spec: ModelSpec,
                   prices: PriceTable) -> float:
        """What the call cost, usable images or not."""
        try:
            images = self.to_images(request=request, model=model, spec=spec, prices=prices)
        except Transient as nothing_usable:
            return nothing_usable.billed_usd
        return sum(i.cost_usd for i in images)


def _bad_response(message: str) -> Transient:
    return Transient(f"OpenAI sent an unusable response: {message}", provider=PROVIDER)


def _field(obj: object, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _validate_one(payload: object, request: GenerationRequest,
                  limits: ImageLimits) -> DecodedImage:
    data = decode_b64(payload, limits)
    return validate_image(data, width=request.width, height=request.height, limits=limits)


async def _check(payload: object, request: GenerationRequest,
                 limits: ImageLimits) -> DecodedImage | str:
    """The decoded image, or why it is unusable (decoding runs off the loop)."""
    try:
        return await asyncio.to_thread(_validate_one, payload, request, limits)
    except Transient as bad:
        return bad.message.removeprefix("OpenAI returned an unusable image: ")


async def read_plain_body(response: Any) -> object:
    """A streaming request answered without a stream (many OpenAI-compatible
    servers ignore ``stream``): the body as the SDK would have parsed it — an
    ``ImagesResponse`` for JSON, the text for anything else."""
    try:
        raw = await response.aread()
    finally:
        await response.aclose()
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type.split(";")[0]:
        return raw.decode("utf-8", "replace")
    data = json.loads(raw)
    if not isinstance(data, Mapping):
        return data
    return ImagesResponse.construct(**data)


async def collect_response(parsed: object, *, request: GenerationRequest,
                           limits: ImageLimits, request_id: str | None) -> Payload:
    if isinstance(parsed, str):
        raise _bad_response("a web page or text instead of JSON (is the base URL right?)")
    if not isinstance(parsed, ImagesResponse):
        raise _bad_response(f"unexpected type {type(parsed).__name__}")
    data = parsed.data
    if not isinstance(data, list) or not data:
        raise _bad_response("no images in it")
    images: list[ReceivedImage] = []
    unusable: list[UnusableImage] = []
    for item in data:
        b64 = _field(item, "b64_json")
        revised = _field(item, "revised_prompt")
        if len(images) >= request.n:
            unusable.append(UnusableImage(f"more images than the {request.n} asked for"))
        elif b64 is None and _field(item, "url"):
            unusable.append(UnusableImage("a link instead of image data (b64_json was asked "
                                          "for)"))
        else:
            checked = await _check(b64, request, limits)
            if isinstance(checked, str):
                unusable.append(UnusableImage(checked))
            else:
                images.append(ReceivedImage(
                    checked, revised_prompt=revised if isinstance(revised, str) else None))
    return Payload(images=tuple(images), usage=usage_from(parsed.usage),
                   request_id=request_id, unusable=tuple(unusable))


async def collect_stream(stream: openai.AsyncStream[Any], *, request: GenerationRequest,
                         limits: ImageLimits, progress: ProgressCallback,
                         total_previews: int) -> Payload:
    """Read a stream of image events: partial images become previews, each
    completed event an image; an error event raises (mapped by its code)."""
    images: list[ReceivedImage] = []
    unusable: list[UnusableImage] = []
    try:
        await _read_events(stream, images, unusable, request=request, limits=limits,
                           progress=progress, total_previews=total_previews)
    except openai.APIError as error:
        if images or unusable:  # images completed (and billed) before the error
            raise StreamFailed(error, Payload(images=(), unusable=tuple(
                [UnusableImage("the stream failed after it", r.usage) for r in images]
                + unusable))) from None
        raise
    if not images and not unusable:
        raise _bad_response("the stream ended before any image arrived")
    return Payload(images=tuple(images), unusable=tuple(unusable))


class StreamFailed(Exception):
    """An error event after some images were completed: ``billed`` holds them
    (as unusable) so the error can carry what they cost."""

    def __init__(self, error: openai.APIError, billed: Payload) -> None:
        super().__init__(error.message)
        self.error = error
        self.billed = billed


async def _read_events(stream: openai.AsyncStream[Any], images: list[ReceivedImage],
                       unusable: list[UnusableImage], *, request: GenerationRequest,
                       limits: ImageLimits, progress: ProgressCallback,
                       total_previews: int) -> None:
    async with stream:
        async for event in stream:
            kind = _field(event, "type")
            # generations stream image_generation.*, edits image_edit.*: same fields
            if kind in ("image_generation.partial_image", "image_edit.partial_image"):
                preview = await asyncio.to_thread(_preview_png, _field(event, "b64_json"),
                                                  limits)
                index = _field(event, "partial_image_index")
                step = index + 1 if isinstance(index, int) else 0
                if preview is not None:
                    progress(Progress(Phase.GENERATING, step=step, total=total_previews,
                                      message="preview", preview_png=preview))
            elif kind in ("image_generation.completed", "image_edit.completed"):
                usage = usage_from(_field(event, "usage"))
                if len(images) >= request.n:
                    unusable.append(UnusableImage(
                        f"more images than the {request.n} asked for", usage))
                    continue
                checked = await _check(_field(event, "b64_json"), request, limits)
                if isinstance(checked, str):
                    unusable.append(UnusableImage(checked, usage))
                else:
                    images.append(ReceivedImage(checked, usage=usage))
            elif (kind == "error" or _field(event, "error") is not None
                  or _field(event, "code") is not None):
                raise _stream_error(event, stream)


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
