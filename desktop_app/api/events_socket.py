"""``GET /v1/events``: a WebSocket streaming the queue's events as JSON."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    pass


async def close_all(app: web.Application) -> None:
    pass
