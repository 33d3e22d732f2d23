from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from desktop_app.providers.openai_images import OpenAIImagesConfig, OpenAIImagesProvider
from tests.fakes.fake_openai import FakeOpenAI
from tests.providers.openai.support import KEY

ProviderFactory = Callable[..., OpenAIImagesProvider]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def make_provider(server: FakeOpenAI) -> AsyncIterator[ProviderFactory]:
    made: list[OpenAIImagesProvider] = []

    def make(key: str | None = KEY, **config: Any) -> OpenAIImagesProvider:
        fields: dict[str, Any] = {"base_url": server.base_url, "deadline_s": 5.0,
                                  "timeout_s": 30.0, "stream_previews": False}
        fields.update(config)
        provider = OpenAIImagesProvider(OpenAIImagesConfig(**fields), lambda: key)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.close()
