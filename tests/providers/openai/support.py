"""Helpers shared by the OpenAI provider tests."""

from __future__ import annotations

import dataclasses
from typing import Any

from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import CancelToken, Progress
from desktop_app.providers.openai_images import OpenAIImagesProvider

KEY = "sk-test-Zq8rT3cretValue0042"


def request(**fields: Any) -> GenerationRequest:
    base: dict[str, Any] = {"prompt": "a lighthouse at dusk", "width": 1024, "height": 1024}
    base.update(fields)
    return GenerationRequest(**base)


@dataclasses.dataclass
class Run:
    progress: list[Progress] = dataclasses.field(default_factory=list)
    cancel: CancelToken = dataclasses.field(default_factory=CancelToken)


async def generate(provider: OpenAIImagesProvider, req: GenerationRequest | None = None,
                   run: Run | None = None) -> Any:
    run = run or Run()
    return await provider.generate(req or request(), run.progress.append, run.cancel)
