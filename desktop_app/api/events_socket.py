"""``GET /v1/events``: a WebSocket streaming the queue's events as JSON, so a client
can follow jobs without polling (same token as every request; the guard checks it).

Each client has a bounded queue. The engine's subscriber only puts into it, never
waits: a client that falls behind by ``MAX_BEHIND`` events is dropped with close
code 4008 and a reason, and the queue never slows for it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from typing import Any

from aiohttp import WSCloseCode, web

from desktop_app.api import context as keys
from desktop_app.api.errors import public_message
from desktop_app.domain.job import JobState
from desktop_app.engine.engine import Engine
from desktop_app.engine.events import (
    Event,
    JobAdded,
    JobFinished,
    JobProgress,
    JobRouted,
    JobStarted,
    JobWaiting,
    ProviderStateChanged,
)

log = logging.getLogger(__name__)

MAX_BEHIND = 256
TOO_SLOW = 4008  # an application close code: the client did not keep up
SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("event_sockets")


def add_routes(app: web.Application) -> None:
    sockets: set[web.WebSocketResponse] = set()
    app[SOCKETS] = sockets
    app.router.add_get("/v1/events", events)


async def close_all(app: web.Application) -> None:
    sockets = app[SOCKETS]
    for socket in tuple(sockets):
        with contextlib.suppress(Exception):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")


def as_message(event: Event, previews: bool) -> dict[str, Any] | None:
    """The JSON form of an engine event, or None for events clients do not get."""
    if isinstance(event, JobAdded):
        return {"type": "job.added", "job": event.job_id, "prompt": event.request.prompt,
                "kind": event.request.kind.value, "origin": event.request.origin or "window"}
    if isinstance(event, JobStarted):
        return {"type": "job.started", "job": event.job_id}
    if isinstance(event, JobRouted):
        return {"type": "job.routed", "job": event.job_id, "provider": event.provider,
                "reason": public_message(event.reason)}
    if isinstance(event, JobWaiting):
        return {"type": "job.waiting", "job": event.job_id, "provider": event.provider,
                "seconds": round(event.seconds, 1), "reason": event.reason}
    if isinstance(event, JobProgress):
        message: dict[str, Any] = {"type": "job.progress", "job": event.job_id,
                                   "provider": event.provider, "step": event.step,
                                   "total": event.total}
        if previews and event.preview_png is not None:
            message["preview"] = base64.b64encode(event.preview_png).decode("ascii")
        return message
    if isinstance(event, JobFinished):
        if event.state is JobState.SUCCEEDED:
            return {"type": "job.succeeded", "job": event.job_id, "provider": event.provider,
                    "images": list(event.image_ids)}
        if event.state is JobState.CANCELLED:
            return {"type": "job.cancelled", "job": event.job_id}
        return {"type": "job.failed", "job": event.job_id, "error": event.error,
                "message": public_message(event.message or "")}
    if isinstance(event, ProviderStateChanged):
        return {"type": "provider.state", "provider": event.provider, "state": event.state,
                "reason": public_message(event.reason), "retry_after_s": event.retry_after_s}
    return None


async def events(request: web.Request) -> web.WebSocketResponse:
    """``?previews=1`` adds each step's preview image (base64 PNG) to ``job.progress``."""
    previews = request.query.get("previews", "0").lower() in ("1", "true")
    socket = web.WebSocketResponse(heartbeat=30)
    await socket.prepare(request)
    engine = request.app[keys.ENGINE_KEY]
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_BEHIND)
    dropped = asyncio.Event()

    def on_event(event: Event) -> None:
        if dropped.is_set():
            return
        message = as_message(event, previews)
        if message is None:
            return
        try:
            queue.put_nowait(message)
        except asyncio.QueueFull:
            dropped.set()

    unsubscribe = engine.hub.subscribe(on_event)
    request.app[SOCKETS].add(socket)
    sender = asyncio.ensure_future(_send(socket, queue, engine))
    reader = asyncio.ensure_future(_read_until_closed(socket))
    watcher = asyncio.ensure_future(dropped.wait())
    try:
        await asyncio.wait({sender, reader, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        unsubscribe()
        request.app[SOCKETS].discard(socket)
        for task in (sender, reader, watcher):
            task.cancel()
        await asyncio.gather(sender, reader, watcher, return_exceptions=True)
    if dropped.is_set():
        log.info("dropped an events client that fell %d events behind", MAX_BEHIND)
        await socket.close(code=TOO_SLOW,
                           message=f"too slow: fell {MAX_BEHIND} events behind".encode())
    elif not socket.closed:
        await socket.close()
    return socket


async def _send(socket: web.WebSocketResponse, queue: asyncio.Queue[dict[str, Any]],
                engine: Engine) -> None:
    while True:
        message = await queue.get()
        if message["type"] == "job.succeeded":
            for image_id in message["images"]:  # one event per image, with its gallery file
                record = await engine.image(image_id)
                await socket.send_json({"type": "image.generated", "job": message["job"],
                                        "image": image_id,
                                        "path": str(record.path) if record else None})
        await socket.send_json(message)


async def _read_until_closed(socket: web.WebSocketResponse) -> None:
    async for _ in socket:  # clients send nothing; this notices when they leave
        pass
