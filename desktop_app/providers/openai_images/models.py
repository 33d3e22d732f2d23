"""What each OpenAI image model accepts, and how a fitted request becomes API parameters.

The SDK validates nothing on the client side (docs/ARCHITECTURE.md, "Library behaviour"):
sizes, n, quality and prompt length are enforced here, before any call.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.request import GenerationRequest, RequestKind
from desktop_app.providers.base import Capabilities, SizeRule

_EDITS = frozenset({RequestKind.IMAGE_TO_IMAGE, RequestKind.INPAINT, RequestKind.OUTPAINT})

GPT_IMAGE_MIN_PIXELS = 655_360
GPT_IMAGE_MAX_PIXELS = 3840 * 2160


@dataclasses.dataclass(frozen=True)
class PixelBudgetSizeRule(SizeRule):
    """A size rule with a pixel floor as well as a ceiling (gpt-image-2 takes
    655,360 to 8,294,400 pixels). ``nearest`` scales a too-small size up,
    keeping its aspect ratio, instead of squashing it."""

    min_pixels: int = 0

    def accepts(self, width: int, height: int) -> bool:
        return super().accepts(width, height) and width * height >= self.min_pixels

    def nearest(self, width: int, height: int) -> tuple[int, int] | None:
        if self.accepts(width, height):
            return width, height
        # the rule without the floor; clamping the aspect can drop below the
        # floor again, so scale up and re-clamp a few times
        plain = SizeRule(**{f.name: getattr(self, f.name)
                            for f in dataclasses.fields(SizeRule)})
        candidate: tuple[int, int] | None = (width, height)
        for _ in range(3):
            assert candidate is not None
            candidate = plain.nearest(*self._scaled_to_floor(*candidate))
            if candidate is None or self.accepts(*candidate):
                return candidate
        return None

    def describe(self) -> str:
        text = super().describe()
        return f"{text}, at least {self.min_pixels:,} pixels" if self.min_pixels else text

    def _scaled_to_floor(self, width: int, height: int) -> tuple[int, int]:
        if width * height >= self.min_pixels:
            return width, height
        scale = math.sqrt(self.min_pixels / (width * height))
        m = self.multiple_of
        return math.ceil(width * scale / m) * m, math.ceil(height * scale / m) * m


class Family(enum.Enum):
    GPT_IMAGE = "gpt-image"  # gpt-image-2 and its 2.5 / 2.6 variants
    GPT_IMAGE_LEGACY = "gpt-image-1"  # gpt-image-1, -mini, 1.5, chatgpt-image-latest
    DALL_E_3 = "dall-e-3"
    DALL_E_2 = "dall-e-2"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One model family's limits. ``qualities`` are our ``Quality`` values;
    ``api_quality`` maps them to what the API takes (``None``: do not send)."""

    family: Family
    sizes: SizeRule
    max_n: int
    max_prompt_chars: int
    qualities: tuple[str, ...]
    api_quality: tuple[tuple[str, str | None], ...]
    formats: tuple[str, ...]
    streams: bool  # stream=True with partial_images
    sends_output_format: bool  # GPT image models take output_format
    wants_response_format: bool  # dall-e: ask for b64_json instead of a URL
    estimated_latency_s: float
    # the jobs on an image its edits endpoint serves (upscale: none; see edits.py)
    edit_kinds: frozenset[RequestKind] = frozenset()
    max_edit_input_bytes: int = 50 * 1024 * 1024  # per uploaded image (SDK docs)
    square_edits_only: bool = False  # dall-e-2: the image must be square

    def to_api_quality(self, quality: str) -> str | None:
        return dict(self.api_quality)[quality]


_GPT_QUALITIES = ("auto", "low", "medium", "high")
_GPT_API_QUALITY = tuple((q, q) for q in _GPT_QUALITIES)

GPT_IMAGE = ModelSpec(
    family=Family.GPT_IMAGE,
    sizes=PixelBudgetSizeRule(multiple_of=16, min_side=256, max_side=3840,
                              max_pixels=GPT_IMAGE_MAX_PIXELS, max_aspect=3.0,
                              min_pixels=GPT_IMAGE_MIN_PIXELS),
    max_n=10, max_prompt_chars=32_000,
    qualities=_GPT_QUALITIES, api_quality=_GPT_API_QUALITY,
    formats=("png", "webp", "jpeg"), streams=True, sends_output_format=True,
    wants_response_format=False, estimated_latency_s=45.0, edit_kinds=_EDITS,
)
GPT_IMAGE_LEGACY = dataclasses.replace(
    GPT_IMAGE, family=Family.GPT_IMAGE_LEGACY,
    sizes=SizeRule(allowed=((1024, 1024), (1536, 1024), (1024, 1536))),
    estimated_latency_s=40.0,
)
DALL_E_3 = ModelSpec(
    family=Family.DALL_E_3,
    sizes=SizeRule(allowed=((1024, 1024), (1792, 1024), (1024, 1792))),
    max_n=1, max_prompt_chars=4000,
    # dall-e-3 has standard and hd; "low" is not offered, so fitting records it.
    qualities=("auto", "medium", "high"),
    api_quality=(("auto", "standard"), ("medium", "standard"), ("high", "hd")),
    formats=("png",), streams=False, sends_output_format=False,
    wants_response_format=True, estimated_latency_s=20.0,
)
DALL_E_2 = ModelSpec(
    family=Family.DALL_E_2,
    sizes=SizeRule(allowed=((256, 256), (512, 512), (1024, 1024))),
    max_n=10, max_prompt_chars=1000,
    qualities=("auto",), api_quality=(("auto", None),),
    formats=("png",), streams=False, sends_output_format=False,
    wants_response_format=True, estimated_latency_s=10.0,
    # dall-e-2 edits: a square PNG under 4 MB; without a mask it needs an image with
    # transparency to know what to edit, so image-to-image (no mask) is not offered
    edit_kinds=frozenset({RequestKind.INPAINT, RequestKind.OUTPAINT}),
    max_edit_input_bytes=4 * 1024 * 1024, square_edits_only=True,
)


def spec_for(model: str) -> ModelSpec:
    """The limits for a model name; snapshots (``gpt-image-2-2026-04-21``) match
    their family. An unknown name (an OpenAI-compatible endpoint's own model)
    gets the legacy fixed sizes, which such endpoints commonly accept."""
    name = model.strip().lower()
    if name == "dall-e-3":
        return DALL_E_3
    if name == "dall-e-2":
        return DALL_E_2
    if name == "gpt-image-2" or name.startswith(("gpt-image-2-", "gpt-image-2.")):
        return GPT_IMAGE
    return GPT_IMAGE_LEGACY


def is_known_model(model: str) -> bool:
    name = model.strip().lower()
    return name in ("dall-e-2", "dall-e-3", "chatgpt-image-latest") or name.startswith(
        ("gpt-image-2", "gpt-image-1")
    )


def input_fidelity_for(model: str) -> str | None:
    """``input_fidelity="high"`` keeps faces and details of the input images; the SDK
    documents it for gpt-image-1 and gpt-image-1.5 (the mini takes only "low", the
    default) and says to omit it for gpt-image-2 and later."""
    name = model.strip().lower()
    if name.startswith("gpt-image-1") and "mini" not in name:
        return "high"
    return None


def capabilities_for(spec: ModelSpec, cost_per_image_usd: float, *,
                     edits: bool = False) -> Capabilities:
    """``edits``: the provider can read input images (it knows the profile's data
    folder), so the kinds its edits endpoint serves are offered."""
    kinds = frozenset({RequestKind.TEXT_TO_IMAGE}) | (spec.edit_kinds if edits else frozenset())
    return Capabilities(
        sizes=spec.sizes,
        max_images_per_call=spec.max_n,
        max_prompt_chars=spec.max_prompt_chars,
        formats=spec.formats,
        qualities=spec.qualities,
        supports_seed=False,
        supports_negative_prompt=False,
        supports_steps=False,
        supports_guidance=False,
        estimated_latency_s=spec.estimated_latency_s,
        cost_per_image_usd=cost_per_image_usd,
        kinds=kinds,
    )


def refuse_unfit(request: GenerationRequest, spec: ModelSpec, model: str) -> None:
    """Raise ``InvalidRequest`` for anything this model cannot take. The engine
    fits requests first, so reaching this is a bug upstream or a bypass."""
    if len(request.prompt) > spec.max_prompt_chars:
        raise InvalidRequest(
            f"The prompt is {len(request.prompt):,} characters; {model} takes at most "
            f"{spec.max_prompt_chars:,}.", field="prompt")
    if not spec.sizes.accepts(request.width, request.height):
        raise InvalidRequest(
            f"{model} cannot make {request.size} images (supported: {spec.sizes.describe()}).",
            field="width")
    if request.n > spec.max_n:
        raise InvalidRequest(
            f"{model} makes at most {spec.max_n} image(s) per call (asked for {request.n}).",
            field="n")
    if request.output_format.value not in spec.formats:
        raise InvalidRequest(
            f"{model} cannot return {request.output_format.value} "
            f"(supported: {', '.join(spec.formats)}).", field="output_format")
    if request.quality.value not in spec.qualities:
        raise InvalidRequest(
            f"{model} has no {request.quality.value} quality "
            f"(supported: {', '.join(spec.qualities)}).", field="quality")


def api_params(request: GenerationRequest, spec: ModelSpec, model: str) -> dict[str, Any]:
    """The keyword arguments for ``images.generate`` (seed, negative prompt, steps
    and guidance have no API equivalent; fitting has recorded them as ignored)."""
    params: dict[str, Any] = {
        "model": model, "prompt": request.prompt, "n": request.n, "size": request.size,
    }
    quality = spec.to_api_quality(request.quality.value)
    if quality is not None:
        params["quality"] = quality
    if spec.sends_output_format:
        params["output_format"] = request.output_format.value
    if spec.wants_response_format:
        params["response_format"] = "b64_json"
    return params
