"""The contract every image provider keeps, and what it tells the router about itself."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.request import GenerationRequest, RequestKind


class ProviderKind(enum.Enum):
    """Where a provider runs; the routing policy speaks in these terms."""

    LOCAL = "local"  # this machine's GPU (or CPU)
    CLOUD = "cloud"  # a paid API
    REMOTE = "remote"  # the user's own GPU machines


@dataclasses.dataclass(frozen=True)
class SizeRule:
    """Which output sizes a provider accepts: an explicit list, or a rule.

    With ``allowed`` set, only those sizes; otherwise both sides must be
    multiples of ``multiple_of`` within [min_side, max_side], the pixel count
    at most ``max_pixels`` and the long/short ratio at most ``max_aspect``.
    """

    allowed: tuple[tuple[int, int], ...] = ()
    multiple_of: int = 8
    min_side: int = 64
    max_side: int = 4096
    max_pixels: int | None = None
    max_aspect: float | None = None

    def accepts(self, width: int, height: int) -> bool:
        if self.allowed:
            return (width, height) in self.allowed
        if width % self.multiple_of or height % self.multiple_of:
            return False
        if not (self.min_side <= width <= self.max_side and
                self.min_side <= height <= self.max_side):
            return False
        if self.max_pixels is not None and width * height > self.max_pixels:
            return False
        return not (self.max_aspect is not None and
                    max(width, height) / min(width, height) > self.max_aspect)

    def nearest(self, width: int, height: int) -> tuple[int, int] | None:
        """The accepted size closest in aspect ratio, then area, to the one asked for."""
        if self.accepts(width, height):
            return width, height
        if self.allowed:
            def distance(size: tuple[int, int]) -> tuple[float, float]:
                w, h = size
                return (abs(w / h - width / height), abs(w * h - width * height))
            return min(self.allowed, key=distance)
        m = self.multiple_of
        w = min(self.max_side, max(self.min_side, round(width / m) * m))
        h = min(self.max_side, max(self.min_side, round(height / m) * m))
        if self.max_aspect is not None:
            if w / h > self.max_aspect:
                w = int(h * self.max_aspect) // m * m
            elif h / w > self.max_aspect:
                h = int(w * self.max_aspect) // m * m
        if self.max_pixels is not None and w * h > self.max_pixels:
            scale = (self.max_pixels / (w * h)) ** 0.5
            w, h = int(w * scale) // m * m, int(h * scale) // m * m
        return (w, h) if self.accepts(w, h) else None

    def describe(self) -> str:
        if self.allowed:
            return ", ".join(f"{w}x{h}" for w, h in self.allowed)
        text = f"multiples of {self.multiple_of} from {self.min_side} to {self.max_side} px"
        if self.max_pixels:
            text += f", at most {self.max_pixels:,} pixels"
        if self.max_aspect:
            text += f", aspect at most {self.max_aspect:g}:1"
        return text


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a provider can do, as the router needs to know it before calling."""

    sizes: SizeRule = SizeRule()
    max_images_per_call: int = 1
    max_prompt_chars: int = 32_000
    formats: tuple[str, ...] = ("png",)
    qualities: tuple[str, ...] = ("auto",)
    samplers: tuple[str, ...] = ()  # the A1111 sampler names it honours (domain/samplers.py)
    supports_clip_skip: bool = False
    # applies the prompt's <lora:name:weight> tags (domain/prompt_networks.py)
    supports_loras: bool = False
    supports_seed: bool = False
    supports_negative_prompt: bool = False
    supports_steps: bool = False
    supports_guidance: bool = False
    estimated_latency_s: float = 10.0
    cost_per_image_usd: float = 0.0
    # the kinds of job it can serve; the router skips it for others, saying so
    kinds: frozenset[RequestKind] = frozenset({RequestKind.TEXT_TO_IMAGE})


@dataclasses.dataclass(frozen=True)
class WorkFit:
    """How a provider would serve a job on an image (``kinds`` beyond text), said
    before the call: ``adaptations`` change what the user gets and need their
    consent (``allow_adaptation``); ``notes`` are recorded but need none; ``reason``
    says why it cannot serve this job at all."""

    adaptations: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    reason: str | None = None


@runtime_checkable
class FitsWork(Protocol):
    """A provider that cannot serve every job of its ``kinds`` exactly as asked (a
    cloud API without a strength setting) says so here; fitting records what it
    says or skips the provider with its reason. Providers without it serve their
    kinds as asked."""

    def fit_work(self, request: GenerationRequest) -> WorkFit: ...


@runtime_checkable
class ChecksBeforeQueue(Protocol):
    """A provider that can refuse a request before it is queued (the local one: a LoRA
    the prompt names that is not installed), raising ``InvalidRequest``."""

    async def check_before_queue(self, request: GenerationRequest) -> None: ...


@runtime_checkable
class PricesCalls(Protocol):
    """A paid provider whose price depends on the job (its size, quality, input
    images) says here the most one call for ``request`` can bill; the spending caps
    hold that much before the call is sent. Without it they hold
    ``cost_per_image_usd`` per image."""

    def most_cost_usd(self, request: GenerationRequest) -> float: ...


class HealthState(enum.Enum):
    READY = "ready"
    NOT_CONFIGURED = "not_configured"  # the router skips it with ``message`` as the reason
    UNAVAILABLE = "unavailable"  # e.g. the worker cannot start right now
    BUSY = "busy"


@dataclasses.dataclass(frozen=True)
class Health:
    """A cheap, honest answer to "can you serve now?" with a sentence for the user."""

    state: HealthState
    message: str = ""
    details: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.state in (HealthState.READY, HealthState.BUSY)


class ConnectionOutcome(enum.Enum):
    """Why a connection test passed or failed, so a face can say what to fix."""

    PASSED = "passed"
    NOT_CONFIGURED = "not_configured"  # no key, no model, no URL: nothing to test yet
    KEY_REJECTED = "key_rejected"  # the server refused the key or password
    UNREACHABLE = "unreachable"  # no network, wrong base URL or host, refused connection
    MODEL_UNAVAILABLE = "model_unavailable"  # the model is missing or not open to this key
    SERVER_ERROR = "server_error"  # the far side answered, but with an error of its own
    FAILED = "failed"  # anything else, said in ``message``


@dataclasses.dataclass(frozen=True)
class ConnectionReport:
    """The result of actually trying a provider (Settings → Test, ``providers --test``).

    Unlike ``Health`` this may cost a network round trip or a model load; it is
    only run when the user asks for it."""

    provider: str
    outcome: ConnectionOutcome
    message: str  # one sentence: what was tried and, on failure, what to fix
    details: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.outcome is ConnectionOutcome.PASSED


class Phase(enum.Enum):
    STARTING = "starting"  # worker starting, model loading
    GENERATING = "generating"
    FINISHING = "finishing"  # decoding, validating


@dataclasses.dataclass(frozen=True)
class Progress:
    """A progress report from a provider: step/total, and optionally a small preview."""

    phase: Phase
    step: int = 0
    total: int = 0
    message: str = ""
    preview_png: bytes | None = None

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0


ProgressCallback = Callable[[Progress], None]


class CancelToken:
    """Set by the user's cancel; providers check it between steps or await it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled by the user") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()


@runtime_checkable
class ImageProvider(Protocol):
    """One place that can turn a request into images.

    ``generate`` raises only taxonomy errors (``desktop_app.domain.errors``):
    every library or transport error is classified before it leaves the provider.
    It is called with a request already fitted to ``capabilities()`` (at most
    ``max_images_per_call`` images, an accepted size).
    """

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> ProviderKind: ...

    def capabilities(self) -> Capabilities: ...

    async def health(self) -> Health: ...

    async def test_connection(self) -> ConnectionReport:
        """Actually try the provider (a network round trip, a model load): only
        when the user asks (Settings → Test connection, ``providers --test``)."""
        ...

    async def generate(
        self, request: GenerationRequest, progress: ProgressCallback, cancel: CancelToken
    ) -> list[GeneratedImage]: ...

    async def close(self) -> None: ...


def most_cost_usd(provider: ImageProvider, request: GenerationRequest) -> float:
    """What a spending cap holds for one call of ``provider`` for ``request``."""
    if isinstance(provider, PricesCalls):
        return provider.most_cost_usd(request)
    return provider.capabilities().cost_per_image_usd * request.n
