"""An image as a provider hands it over: encoded bytes plus what made it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class GeneratedImage:
    """Encoded image bytes (already validated by the provider) and their provenance.

    ``seed`` is the seed that produced this image, where the provider honours
    seeds; ``details`` holds provider extras worth keeping (scheduler, model
    hash, revised prompt, device).
    """

    data: bytes
    format: str  # "png", "jpeg", "webp"
    width: int
    height: int
    provider: str
    model: str
    seed: int | None = None
    cost_usd: float = 0.0
    details: Mapping[str, str] = dataclasses.field(default_factory=dict)
