"""The window's "Serve the API while ImageDesk is open" setting (``ui.serve_api`` on
``ui.api_port``): the window owns the profile's queue, so it serves the API itself,
on loopback only, started, stopped or moved as the settings change."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from desktop_app.bootstrap import AppContext
from desktop_app.config import Settings, default_policy
from desktop_app.secrets import KeyringUnavailable, api_token

if TYPE_CHECKING:  # aiohttp is the 'api' extra: imported only when the API is served
    from desktop_app.api.server import ApiServer


class WindowApi:
    def __init__(self, ctx: AppContext, on_message: Callable[[str], None] = lambda _m: None,
                 ) -> None:
        self._ctx = ctx
        self._settings = ctx.settings
        self._on_message = on_message
        self._lock = asyncio.Lock()
        self.server: ApiServer | None = None

    async def follow(self, settings: Settings) -> None:
        """Serve or not, on the port, as ``settings`` say."""
        self._settings = settings
        want, port = settings.ui.serve_api, settings.ui.api_port
        async with self._lock:
            if self.server is not None and (not want or (port and port != self.server.port)):
                await self.server.stop()
                self.server = None
                self._on_message("The API stopped.")
            if not want or self.server is not None:
                return
            try:
                from desktop_app.api.context import library_checkpoints
                from desktop_app.api.server import ApiServer
            except ModuleNotFoundError as error:
                self._on_message(f"The API is not served: it needs the 'api' extra "
                                 f"(pip install 'imagedesk[api]'; {error.name} is missing).")
                return
            try:
                token = await asyncio.to_thread(api_token, self._ctx.keys)
            except KeyringUnavailable as error:
                self._on_message(f"The API is not served: {error.message}")
                return
            server = ApiServer(self._ctx.engine, token, port=port,
                               default_policy=lambda: default_policy(self._settings),
                               library_models=library_checkpoints(
                                   self._ctx.paths.models_dir,
                                   lambda: self._settings.local.model_folders))
            try:
                await server.start()
            except OSError as error:
                self._on_message(f"The API could not listen on port {port}: "
                                 f"{error.strerror or error}. Pick another port in Settings.")
                return
            self.server = server
            self._on_message(f"Serving the API on {server.url}")

    async def token_changed(self, token: str) -> None:
        if self.server is not None:
            self.server.set_token(token)

    async def stop(self) -> None:
        async with self._lock:
            if self.server is not None:
                await self.server.stop()
                self.server = None
