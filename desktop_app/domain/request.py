"""What a user asks for: a validated, normalised ``GenerationRequest``.

Validation happens on construction, so a request that exists is a request the
engine may queue. Provider-specific limits (sizes, prompt length) are applied
later by the router; the bounds here are the app's own hard caps.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import unicodedata
from collections.abc import Mapping
from typing import Any

from desktop_app.domain.codec import OMIT_DEFAULT, from_plain, to_plain
from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.image_work import (
    ImageRef,
    ImageToImage,
    ImageWork,
    Inpaint,
    Outpaint,
    Padding,
    RequestKind,
    Upscale,
)
from desktop_app.domain.prompt_networks import LoraTag, parse_loras
from desktop_app.domain.samplers import MIN_STEPS, sampler_named

__all__ = [
    "MAX_IMAGES",
    "MAX_SIDE",
    "MIN_SIDE",
    "GenerationRequest",
    "ImageRef",
    "ImageToImage",
    "ImageWork",
    "Inpaint",
    "Outpaint",
    "OutputFormat",
    "Padding",
    "Quality",
    "RequestKind",
    "RouteMode",
    "RouteStrategy",
    "RoutingPolicy",
    "Upscale",
    "normalise_prompt",
    "parse_size",
]

MAX_PROMPT_CHARS = 32_000
MAX_STYLES = 20
MAX_CLIP_SKIP = 12
MIN_SIDE = 64
MAX_SIDE = 4096
SIDE_MULTIPLE = 8
MAX_STEPS = 150
MAX_GUIDANCE = 30.0
MAX_IMAGES = 16
MAX_SEED = 2**32 - 1


class RouteMode(enum.Enum):
    """Where a job may run: the user's choice in the prompt editor or ``--provider``."""

    AUTO = "auto"  # local first, cloud fallback
    LOCAL_ONLY = "local"  # this machine only: no cloud, no remote workers
    CLOUD_ONLY = "cloud"


class RouteStrategy(enum.Enum):
    """How the router orders the providers that can serve a job (README: "Routing
    strategies"); estimates come from each provider's measured history."""

    PREFER_LOCAL = "prefer-local"  # the configured order: local first, cloud as fallback
    CHEAPEST = "cheapest"  # the cheapest that finishes within the target time
    FASTEST = "fastest"  # the fastest (under the job's cost cap, if any)
    BALANCED = "balanced"  # time and money weighed together


class OutputFormat(enum.Enum):
    PNG = "png"
    JPEG = "jpeg"
    WEBP = "webp"


class Quality(enum.Enum):
    AUTO = "auto"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclasses.dataclass(frozen=True)
class RoutingPolicy:
    """The user's say over routing. Content-policy failover is off by default:
    a refusal from one provider is not silently retried elsewhere."""

    mode: RouteMode = RouteMode.AUTO
    allow_cloud_fallback: bool = True
    allow_adaptation: bool = True
    allow_failover_after_refusal: bool = False
    provider: str | None = None  # pin one provider by name (CLI --provider openai)
    # "never leaves this machine": only this machine's own providers may serve it, even
    # by failover (written only when set, so older workers still read other jobs)
    private: bool = dataclasses.field(default=False, metadata=OMIT_DEFAULT)
    strategy: RouteStrategy = dataclasses.field(default=RouteStrategy.PREFER_LOCAL,
                                                metadata=OMIT_DEFAULT)
    target_s: float | None = dataclasses.field(default=None, metadata=OMIT_DEFAULT)
    # a money control: a provider expected to cost more for this job is skipped
    max_cost_usd: float | None = dataclasses.field(default=None, metadata=OMIT_DEFAULT)

    def __post_init__(self) -> None:
        for name, low in (("target_s", 0.0), ("max_cost_usd", 0.0)):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value < low or value > 1e7:
                raise InvalidRequest(f"The routing policy's {name} must be a number of at "
                                     f"least {low:g} (got {value!r}).", field=name)
            object.__setattr__(self, name, float(value))

    def to_dict(self) -> dict[str, Any]:
        return dict(to_plain(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutingPolicy:
        return from_plain(cls, data, what="routing policy")


# Format characters that are spelling, not formatting: ZWNJ (Persian and Indic
# words are written with it) and ZWJ (joins emoji sequences such as a family, and
# Indic conjuncts). Every other format character (zero-width space, bidi overrides
# and isolates, soft hyphen...) is invisible noise or a way to hide text, and goes.
_JOINERS = "\u200c\u200d"


def normalise_prompt(text: str) -> str:
    """NFC; control, surrogate and format characters removed except newline, tab,
    ZWNJ and ZWJ; trimmed of whitespace and of joiners left at either end (they
    join nothing there)."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(
        ch for ch in text
        if ch in "\n\t" or ch in _JOINERS
        or unicodedata.category(ch) not in ("Cc", "Cf", "Cs")
    )
    start, end = 0, len(text)
    while start < end and (text[start].isspace() or text[start] in _JOINERS):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in _JOINERS):
        end -= 1
    return text[start:end]


@dataclasses.dataclass(frozen=True)
class GenerationRequest:
    """One prompt and its parameters. ``seed=None`` means "pick one and record it"."""

    prompt: str
    negative_prompt: str = ""
    width: int = 512
    height: int = 512
    steps: int = 20
    guidance: float = 7.0
    seed: int | None = None
    n: int = 1
    output_format: OutputFormat = OutputFormat.PNG
    quality: Quality = Quality.AUTO
    policy: RoutingPolicy = dataclasses.field(default_factory=RoutingPolicy)
    model: str | None = None  # a model override for this job (local model source)
    # work on an existing image; None is text-to-image (see domain/image_work.py)
    # (written only when set, so a remote worker one version behind still reads the job)
    work: ImageWork | None = dataclasses.field(default=None, metadata=OMIT_DEFAULT)
    origin: str = dataclasses.field(default="", metadata=OMIT_DEFAULT)  # "window", "cli", "api"
    # named styles applied to the prompts when the job runs (domain/styles.py)
    styles: tuple[str, ...] = dataclasses.field(default=(), metadata=OMIT_DEFAULT)
    # a sampler by its Automatic1111 name (domain/samplers.py); None: the provider's own
    sampler: str | None = dataclasses.field(default=None, metadata=OMIT_DEFAULT)
    # Automatic1111's "Clip skip": 1 uses the text encoder's last layer (no skip), 2 the
    # one before it, as many SD 1.x anime models expect; None: 1
    clip_skip: int | None = dataclasses.field(default=None, metadata=OMIT_DEFAULT)

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str):
            raise InvalidRequest("The prompt must be text.", field="prompt")
        prompt = normalise_prompt(self.prompt)
        if not prompt:
            raise InvalidRequest("Enter a prompt: it is empty.", field="prompt")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InvalidRequest(
                f"The prompt is {len(prompt):,} characters; the most ImageDesk accepts is "
                f"{MAX_PROMPT_CHARS:,}. Shorten it.",
                field="prompt",
            )
        object.__setattr__(self, "prompt", prompt)
        parse_loras(prompt)  # a malformed <lora:...> tag is refused now, by name
        if not isinstance(self.negative_prompt, str):
            raise InvalidRequest("The negative prompt must be text.", field="negative_prompt")
        negative = normalise_prompt(self.negative_prompt)
        if len(negative) > MAX_PROMPT_CHARS:
            raise InvalidRequest(
                f"The negative prompt is {len(negative):,} characters; the most is "
                f"{MAX_PROMPT_CHARS:,}.",
                field="negative_prompt",
            )
        object.__setattr__(self, "negative_prompt", negative)
        if self.work is not None:
            self._take_size_from_work()
        for side in ("width", "height"):
            value = _int(getattr(self, side), side)
            if not MIN_SIDE <= value <= MAX_SIDE:
                raise InvalidRequest(
                    f"The {side} must be between {MIN_SIDE} and {MAX_SIDE} pixels (got {value}).",
                    field=side,
                )
            if value % SIDE_MULTIPLE and self.work is None:
                raise InvalidRequest(
                    f"The {side} must be a multiple of {SIDE_MULTIPLE} (got {value}; "
                    f"try {_nearest_multiple(value)}).",
                    field=side,
                )
        steps = _int(self.steps, "steps")
        if not 1 <= steps <= MAX_STEPS:
            raise InvalidRequest(
                f"Steps must be between 1 and {MAX_STEPS} (got {steps}).", field="steps"
            )
        guidance = self.guidance
        if isinstance(guidance, bool) or not isinstance(guidance, int | float):
            raise InvalidRequest("Guidance must be a number.", field="guidance")
        if not 0.0 <= float(guidance) <= MAX_GUIDANCE or guidance != guidance:
            raise InvalidRequest(
                f"Guidance must be between 0 and {MAX_GUIDANCE:g} (got {guidance}).",
                field="guidance",
            )
        object.__setattr__(self, "guidance", float(guidance))
        if self.seed is not None:
            seed = _int(self.seed, "seed")
            if not 0 <= seed <= MAX_SEED:
                raise InvalidRequest(
                    f"The seed must be between 0 and {MAX_SEED} (got {seed}), or empty for random.",
                    field="seed",
                )
        n = _int(self.n, "n")
        if not 1 <= n <= MAX_IMAGES:
            raise InvalidRequest(
                f"The number of images must be between 1 and {MAX_IMAGES} (got {n}).", field="n"
            )
        if not isinstance(self.output_format, OutputFormat):
            raise InvalidRequest("Unknown output format.", field="output_format")
        if not isinstance(self.quality, Quality):
            raise InvalidRequest("Unknown quality.", field="quality")
        if self.model is not None and not (isinstance(self.model, str) and self.model.strip()):
            raise InvalidRequest("The model must be a non-empty name or path.", field="model")
        if not (isinstance(self.origin, str) and len(self.origin) <= 32
                and all(c.isascii() and (c.isalnum() or c in "-_.") for c in self.origin)):
            raise InvalidRequest("The origin must be a short name such as 'api'.",
                                 field="origin")
        self._check_styles()
        if self.clip_skip is not None:
            skip = _int(self.clip_skip, "clip_skip")
            if not 1 <= skip <= MAX_CLIP_SKIP:
                raise InvalidRequest(f"Clip skip must be from 1 (no skip) to {MAX_CLIP_SKIP} "
                                     f"(got {skip}).", field="clip_skip")
            object.__setattr__(self, "clip_skip", skip)
        if self.sampler is not None:
            object.__setattr__(self, "sampler", sampler_named(self.sampler))
            least = MIN_STEPS.get(self.sampler, 1)
            if self.steps < least:  # diffusers' PNDM breaks below 4 steps
                raise InvalidRequest(f"The {self.sampler} sampler needs at least {least} steps "
                                     f"(got {self.steps}).", field="steps")

    def _check_styles(self) -> None:
        styles = self.styles
        if not isinstance(styles, tuple) or len(styles) > MAX_STYLES or not all(
                isinstance(s, str) and s.strip() and len(s) <= 100 for s in styles):
            raise InvalidRequest(f"Styles must be up to {MAX_STYLES} style names.",
                                 field="styles")
        object.__setattr__(self, "styles", tuple(dict.fromkeys(s.strip() for s in styles)))

    def _take_size_from_work(self) -> None:
        """The result's size follows from the source and the work; a source need not
        be a multiple of 8 (providers snap internally and give back this size)."""
        if not isinstance(self.work, ImageToImage | Inpaint | Outpaint | Upscale):
            raise InvalidRequest("Unknown image work.", field="work")
        width, height = self.work.result_size()
        if max(width, height) > MAX_SIDE:
            raise InvalidRequest(
                f"The result would be {width}x{height}; the most ImageDesk makes is "
                f"{MAX_SIDE} pixels a side. Use a smaller source, scale or padding.",
                field="work")
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "height", height)

    @property
    def kind(self) -> RequestKind:
        return RequestKind.TEXT_TO_IMAGE if self.work is None else self.work.KIND

    @property
    def loras(self) -> tuple[LoraTag, ...]:
        """The LoRAs the prompt names (``<lora:name:weight>``, domain/prompt_networks.py)."""
        return parse_loras(self.prompt).loras

    @property
    def prompt_for_encoder(self) -> str:
        """The prompt without its LoRA tags: what a text encoder (or a cloud API) reads."""
        return parse_loras(self.prompt).text

    @property
    def input_images(self) -> tuple[ImageRef, ...]:
        """Every stored input image the job needs (source, and mask for inpaint)."""
        if self.work is None:
            return ()
        if isinstance(self.work, Inpaint):
            return (self.work.source, self.work.mask)
        return (self.work.source,)

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    def replace(self, **changes: Any) -> GenerationRequest:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, the inverse of ``from_dict`` (store, CLI, remote protocol),
        made by the generic codec (``domain/codec.py``)."""
        return dict(to_plain(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationRequest:
        """Build from user or stored data, rejecting unknown fields by name."""
        if not isinstance(data, Mapping):
            raise InvalidRequest("A request must be a JSON object.")
        if "prompt" not in data:
            raise InvalidRequest("Enter a prompt: it is missing.", field="prompt")
        return from_plain(cls, data, what="request")


def parse_size(text: str) -> tuple[int, int]:
    """``"768x512"`` -> (768, 512), with a clear error for anything else."""
    parts = [p.strip() for p in text.lower().replace("×", "x").split("x")]
    # ASCII digits only, and few of them: str.isdigit() also passes "²" and
    # int() refuses strings of over 4,300 digits, both of which used to escape here
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) <= 6 for p in parts):
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise InvalidRequest(f"Size must look like 512x512 (got {shown!r}).", field="width")
    return int(parts[0]), int(parts[1])


def _nearest_multiple(value: int) -> int:
    return max(MIN_SIDE, min(MAX_SIDE, round(value / SIDE_MULTIPLE) * SIDE_MULTIPLE))


def _int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{field.capitalize()} must be a whole number (got {value!r}).",
                             field=field)
    return value
