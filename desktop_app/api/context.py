"""What the API's handlers find on the application: the engine, the API's jobs and
the routing policy new jobs start from (the routing settings, read when asked)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from aiohttp import web

from desktop_app.api.jobs import ApiJobs
from desktop_app.domain.request import RoutingPolicy
from desktop_app.engine.engine import Engine

ENGINE_KEY = web.AppKey("engine", Engine)
JOBS_KEY = web.AppKey("jobs", ApiJobs)
POLICY_KEY: web.AppKey[Callable[[], RoutingPolicy]] = web.AppKey("policy")
# the model library's checkpoints a client may name: name -> path (scanned when asked)
LibraryModels = Callable[[], Awaitable[dict[str, str]]]
MODELS_KEY: web.AppKey[LibraryModels] = web.AppKey("models")


async def no_library_models() -> dict[str, str]:
    return {}


def library_checkpoints(models_dir: Path, folders: Callable[[], Sequence[Path]]) -> LibraryModels:
    """The checkpoints of the model library a client may name (scanned when asked, in
    worker threads; unchanged headers are not read again)."""
    from desktop_app.providers import registry  # descriptors only: no provider SDK loads

    async def checkpoints() -> dict[str, str]:
        library = await registry.local_model_library(models_dir, folders(), hashed=False)
        return {entry.name: str(entry.path) for entry in library.entries
                if entry.kind == "checkpoint" and entry.loadable}

    return checkpoints
