"""What the API's tests share: the token, and an engine on a temporary store."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from desktop_app.domain.image_work import RequestKind
from desktop_app.engine.engine import Engine
from desktop_app.store.input_images import InputImages
from tests.fakes.scripted_engine import engine_in, slot_for
from tests.fakes.scripted_provider import ScriptedProvider

TOKEN = "test-token-0123456789abcdef"


def make_engine(tmp_path: Path, *providers: ScriptedProvider) -> Engine:
    return engine_in(tmp_path, [slot_for(p, i * 10, concurrency=4)
                                for i, p in enumerate(providers)],
                     inputs=InputImages(tmp_path / "inputs"))


def image_provider(name: str = "local", **kw: object) -> ScriptedProvider:
    """A scripted local provider that serves every kind of job (img2img, inpaint...)."""
    provider = ScriptedProvider(name, **kw)  # type: ignore[arg-type]
    provider.caps = dataclasses.replace(provider.caps, kinds=frozenset(RequestKind))
    return provider
