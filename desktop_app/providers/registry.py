"""The providers ImageDesk knows, built from their plain configs. The faces (window
and CLI) reach providers only through here."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from desktop_app.providers.base import ImageProvider, ProviderKind
from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider
from desktop_app.providers.local_diffusion.model_source import check_model_source
from desktop_app.providers.openai_images import OpenAIImagesConfig, OpenAIImagesProvider
from desktop_app.providers.remote_bullmq import RemoteConfig, Transport


@dataclasses.dataclass(frozen=True)
class ProviderInfo:
    name: str
    label: str  # what the user reads in Settings and badges
    kind: ProviderKind


KNOWN = (
    ProviderInfo("local", "Local GPU (Stable Diffusion)", ProviderKind.LOCAL),
    ProviderInfo("openai", "OpenAI Images", ProviderKind.CLOUD),
    ProviderInfo("remote", "Remote GPU workers (BullMQ)", ProviderKind.REMOTE),
)


def label_of(name: str) -> str:
    return next((p.label for p in KNOWN if p.name == name), name)


def create_local(config: LocalDiffusionConfig) -> ImageProvider:
    return LocalDiffusionProvider(config)


def check_local_model_source(model: str) -> str | None:
    """What is wrong with a local model path before a job is queued (None: fine).
    Hugging Face ids pass here; whether they may be fetched is a setting."""
    return check_model_source(model, allow_download=True)


def create_openai(config: OpenAIImagesConfig, key: Callable[[], str | None]) -> ImageProvider:
    return OpenAIImagesProvider(config, key)


def create_remote(config: RemoteConfig, password: Callable[[], str | None]) -> ImageProvider:
    from desktop_app.providers.remote_bullmq.provider import RemoteProvider  # bullmq: on use

    return RemoteProvider(config, password)


__all__ = ["KNOWN", "LocalDiffusionConfig", "OpenAIImagesConfig", "ProviderInfo",
           "RemoteConfig", "Transport", "check_local_model_source",
           "create_local", "create_openai", "create_remote",
           "label_of"]
