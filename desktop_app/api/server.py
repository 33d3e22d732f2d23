"""``ApiServer``: the aiohttp application on the engine's loop, its routes and its
guard. The window starts one when "Serve the API" is on; ``imagedesk serve`` starts
one and runs the engine beside it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from aiohttp import web

from desktop_app.api import a1111, events_socket, openai_images
from desktop_app.api.context import (
    ENGINE_KEY,
    JOBS_KEY,
    MODELS_KEY,
    POLICY_KEY,
    LibraryModels,
    no_library_models,
)
from desktop_app.api.jobs import ApiJobs
from desktop_app.api.security import Guard, is_loopback, own_hosts
from desktop_app.domain.request import RoutingPolicy
from desktop_app.engine.engine import Engine

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
MAX_BODY_BYTES = 32 * 2**20
PER_CLIENT_REQUESTS = 32  # all local tools share 127.0.0.1: room for 32 at once



def exposure_warning(host: str) -> str | None:
    """What to tell the user when ``host`` is not a loopback address."""
    if is_loopback(host):
        return None
    return (f"the API listens on {host}: other machines on that network can reach it "
            "(each request still needs the token, sent in clear text over HTTP)")


class ApiServer:
    def __init__(self, engine: Engine, token: str, *, host: str = DEFAULT_HOST,
                 port: int = DEFAULT_PORT,
                 default_policy: Callable[[], RoutingPolicy] = RoutingPolicy,
                 max_body_bytes: int = MAX_BODY_BYTES,
                 per_client: int = PER_CLIENT_REQUESTS,
                 allowed_hosts: Sequence[str] = (),
                 library_models: LibraryModels = no_library_models) -> None:
        """``allowed_hosts``: more names clients may address it by (``Host`` header),
        e.g. ``host.docker.internal`` or this machine's LAN address."""
        self.engine = engine
        self.host = host
        self.port = port
        self.allowed_hosts = tuple(h.strip().lower() for h in allowed_hosts if h.strip())
        self.jobs = ApiJobs(engine)
        self.guard = Guard(token, self._hosts, max_body_bytes=max_body_bytes,
                           per_client=per_client)
        self.app = web.Application(middlewares=[self.guard.middleware()],
                                   client_max_size=max_body_bytes)
        self.app[ENGINE_KEY] = engine
        self.app[JOBS_KEY] = self.jobs
        self.app[POLICY_KEY] = default_policy
        self.app[MODELS_KEY] = library_models
        openai_images.add_routes(self.app)
        a1111.add_routes(self.app)
        events_socket.add_routes(self.app)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _hosts(self) -> frozenset[str]:
        extra = {f"{h}:{self.port}" for h in self.allowed_hosts}
        return own_hosts(self.host, self.port) | extra

    def set_token(self, token: str) -> None:
        self.guard.set_token(token)

    async def start(self) -> None:
        """Listen (port 0: any free port, then ``port`` says which); ``OSError`` when
        the address is taken or not this machine's."""
        warning = exposure_warning(self.host)
        if warning:
            log.warning(warning)
        # a client that hangs up cancels its handler, and with it its job (jobs.py)
        runner = web.AppRunner(self.app, handler_cancellation=True, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("serving the API on %s", self.url)

    async def stop(self) -> None:
        """Stop listening; WebSocket clients are closed, requests in flight end."""
        await events_socket.close_all(self.app)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.jobs.close()
