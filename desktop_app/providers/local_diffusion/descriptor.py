"""The local provider as the registry knows it (see ``providers.descriptor``)."""

from __future__ import annotations

from pathlib import Path

from desktop_app.config import LocalSettings, ProviderSettings
from desktop_app.domain.checks import Check
from desktop_app.providers.base import ImageProvider, ProviderKind
from desktop_app.providers.descriptor import (
    BuildContext,
    CheckContext,
    OptionalExtra,
    ProviderDescriptor,
)
from desktop_app.providers.local_diffusion import checks
from desktop_app.providers.local_diffusion.config import LocalDiffusionConfig


def config_of(local: LocalSettings, data_dir: Path) -> LocalDiffusionConfig:
    """The provider's plain config for a settings section (also what a remote
    worker on this machine runs, with its own idle and preview choices)."""
    return LocalDiffusionConfig(
        data_dir=data_dir, model=local.model, device=local.device,
        allow_cpu=local.allow_cpu, attention_slicing=local.attention_slicing,
        vae_tiling=local.vae_tiling, vae_slicing=local.vae_slicing,
        cpu_offload=local.cpu_offload, fp16=local.fp16, scheduler=local.scheduler,
        idle_shutdown_s=local.idle_shutdown_s, allow_download=local.allow_download,
        model_folders=tuple(local.model_folders))


def _create(section: ProviderSettings, ctx: BuildContext) -> ImageProvider:
    from desktop_app.providers.local_diffusion.provider import LocalDiffusionProvider

    assert isinstance(section, LocalSettings)
    return LocalDiffusionProvider(config_of(section, ctx.data_dir))


def _checks(ctx: CheckContext) -> list[Check]:
    assert isinstance(ctx.section, LocalSettings)
    found = checks.torch_checks(checks.probe_torch()) if ctx.deep else [checks.packages_check()]
    return [*found, checks.model_check(ctx.section.model, ctx.env)]


DESCRIPTOR = ProviderDescriptor(
    name="local", label="Local GPU (Stable Diffusion)", kind=ProviderKind.LOCAL,
    settings_model=LocalSettings, create=_create,
    settings_page="desktop_app.ui.settings_pages:LocalPage", checks=_checks,
    optional_extra=OptionalExtra(
        "desktop_app.providers.local_diffusion", "local",
        ("torch", "diffusers", "transformers", "accelerate", "safetensors", "huggingface_hub")),
)
