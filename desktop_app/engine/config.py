"""``EngineConfig``: what settings decide about a running engine, handed over in
one ``Engine.apply`` (bootstrap builds it from ``Settings``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from desktop_app.engine.budget import Budget
from desktop_app.engine.nsfw import NsfwSettings
from desktop_app.engine.runner import RunnerSettings
from desktop_app.engine.slots import ProviderSlot


@dataclasses.dataclass(frozen=True)
class EngineConfig:
    """Everything settings decide about a running engine, handed over in one
    ``Engine.apply`` (bootstrap builds it from ``Settings``)."""

    slots: Sequence[ProviderSlot]
    runner: RunnerSettings
    budget: Budget
    blocked_terms: Sequence[str]
    nsfw: NsfwSettings
    gallery_folder: Path
    output_quality: int = 90  # JPEG / WebP encoding quality
    private_terms: Sequence[str] = ()  # a prompt with one of these never leaves this machine
    private_folders: Sequence[Path] = ()  # a source image from these never leaves it either
