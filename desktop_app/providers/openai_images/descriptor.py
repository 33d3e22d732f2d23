"""OpenAI Images as the registry knows it (see ``providers.descriptor``)."""

from __future__ import annotations

import re

from desktop_app.config import OpenAISettings, ProviderSettings
from desktop_app.domain.checks import Check
from desktop_app.providers.base import ImageProvider, ProviderKind
from desktop_app.providers.descriptor import (
    BuildContext,
    CheckContext,
    KeySpec,
    ProviderDescriptor,
)

_KEY = re.compile(r"sk-[A-Za-z0-9_\-]+")
KEY_LENGTH = (20, 512)


def check_key(key: str) -> None:
    """An OpenAI API key's shape; the message never repeats the key."""
    if any(char.isspace() for char in key):
        raise ValueError("The openai key contains a space: paste it again as one piece.")
    if not key.isascii():
        raise ValueError("The openai key contains characters a key cannot have: "
                         "copy it again from its source.")
    if not key.startswith("sk-"):
        raise ValueError("An OpenAI API key starts with 'sk-': copy the key from "
                         "platform.openai.com → API keys.")
    if not _KEY.fullmatch(key):
        raise ValueError("An OpenAI API key holds only letters, digits, '-' and '_' "
                         "after 'sk-': part of something else was pasted with it.")
    low, high = KEY_LENGTH
    if not low <= len(key) <= high:
        raise ValueError(f"This OpenAI key is {len(key)} characters long; real keys are "
                         f"{low} to {high}: it may be cut off, copy it again.")


def _create(section: ProviderSettings, ctx: BuildContext) -> ImageProvider:
    from desktop_app.providers.openai_images.provider import (
        OpenAIImagesConfig,
        OpenAIImagesProvider,
    )

    assert isinstance(section, OpenAISettings)
    return OpenAIImagesProvider(OpenAIImagesConfig(
        model=section.model, base_url=section.base_url, organization=section.organization,
        project=section.project, timeout_s=section.timeout_s, deadline_s=section.deadline_s,
        stream_previews=section.stream_previews, data_dir=ctx.data_dir), ctx.key)


def _checks(ctx: CheckContext) -> list[Check]:
    if ctx.key_present is None or not ctx.section.enabled:
        return []
    return [Check("OpenAI key", ctx.key_present,
                  "present" if ctx.key_present else
                  "none: run `imagedesk keys set openai` or set OPENAI_API_KEY")]


DESCRIPTOR = ProviderDescriptor(
    name="openai", label="OpenAI Images", kind=ProviderKind.CLOUD,
    settings_model=OpenAISettings, create=_create,
    settings_page="desktop_app.ui.settings_pages:OpenAIPage",
    key=KeySpec("API key", "OPENAI_API_KEY", check_key,
                where="platform.openai.com → API keys"),
    checks=_checks,
)
