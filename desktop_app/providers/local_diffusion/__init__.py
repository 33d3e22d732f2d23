"""Local Stable Diffusion: a GUI-side proxy (``LocalDiffusionProvider``) of a spawned
worker process, the only place torch and diffusers are imported."""

from desktop_app.providers.local_diffusion.config import (
    BUILTIN_TINY,
    BUILTIN_TINY_LABEL,
    SCHEDULERS,
    LocalDiffusionConfig,
)
from desktop_app.providers.local_diffusion.provider import LocalDiffusionProvider

__all__ = [
    "BUILTIN_TINY",
    "BUILTIN_TINY_LABEL",
    "SCHEDULERS",
    "LocalDiffusionConfig",
    "LocalDiffusionProvider",
]
