from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider


@pytest.fixture(scope="session")
def local_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data dir per test session, so the built-in tiny model is built once."""
    return tmp_path_factory.mktemp("imagedesk-local")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tiny_provider(local_data_dir: Path) -> AsyncIterator[LocalDiffusionProvider]:
    """A provider on the built-in tiny model, shared by a module's tests (one worker)."""
    provider = LocalDiffusionProvider(
        LocalDiffusionConfig(data_dir=local_data_dir, torch_threads=2, preview_every=2))
    yield provider
    await provider.close()
