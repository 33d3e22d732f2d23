"""An engine on a temporary store with scripted providers, started, and the API
server in front of it on 127.0.0.1 (a free port): real HTTP, real SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from desktop_app.api.server import ApiServer
from desktop_app.engine.engine import Engine
from tests.api.support import TOKEN, make_engine
from tests.fakes.scripted_provider import ScriptedProvider

Serve = Callable[..., Awaitable[ApiServer]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """``await serve(provider, ...)``: a started engine with these providers and its API."""
    started: list[tuple[Engine, ApiServer]] = []

    async def start(*providers: ScriptedProvider, **options: object) -> ApiServer:
        engine = make_engine(tmp_path, *(providers or (ScriptedProvider("local"),)))
        await engine.start()
        options.setdefault("host", "127.0.0.1")
        server = ApiServer(engine, TOKEN, port=0, **options)  # type: ignore[arg-type]
        await server.start()
        started.append((engine, server))
        return server

    yield start
    for engine, server in started:
        await server.stop()
        await engine.close()
