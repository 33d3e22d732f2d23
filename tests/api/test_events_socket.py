"""``/v1/events``: a WebSocket client (aiohttp's) follows jobs submitted through either
dialect, in order; a client that falls behind is dropped and never slows the queue."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import openai
import pytest

from desktop_app.api.events_socket import MAX_BEHIND, TOO_SLOW
from desktop_app.api.server import ApiServer
from desktop_app.domain.errors import Misconfigured
from desktop_app.engine.events import JobProgress
from desktop_app.providers.base import ProviderKind
from tests.api.conftest import Serve
from tests.api.support import TOKEN
from tests.fakes.scripted_provider import ScriptedProvider

BEARER = {"Authorization": f"Bearer {TOKEN}"}


async def _collect(ws: aiohttp.ClientWebSocketResponse, until: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] != until:
        seen.append(await asyncio.wait_for(ws.receive_json(), 10))
    return seen


async def _follow(server: ApiServer, submit: Any) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.ws_connect(
            server.url + "/v1/events", headers=BEARER) as ws:
        await asyncio.sleep(0.05)  # subscribed before the job is submitted
        task = asyncio.ensure_future(submit())
        seen = await _collect(ws, "job.succeeded")
        await task
        return seen


async def test_an_openai_job_is_followed_from_added_through_progress_to_its_image(
        serve: Serve) -> None:
    server = await serve(ScriptedProvider("local", steps=3))
    async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=TOKEN,
                                  max_retries=0) as api:
        seen = await _follow(server, lambda: api.images.generate(prompt="a bridge",
                                                                 size="64x64"))
    types = [m["type"] for m in seen]
    assert types.index("job.added") < types.index("job.progress") < types.index(
        "image.generated") < types.index("job.succeeded")
    assert seen[types.index("job.added")]["origin"] == "api"
    steps = [m["step"] for m in seen if m["type"] == "job.progress"]
    assert steps == [1, 2, 3]
    image = next(m for m in seen if m["type"] == "image.generated")
    record = await server.engine.image(image["image"])
    assert record is not None and image["path"] == str(record.path)


async def test_an_a1111_job_and_its_failover_are_followed_in_order(serve: Serve) -> None:
    local = ScriptedProvider("local", script=[Misconfigured("no CUDA device")])
    server = await serve(local, ScriptedProvider("openai", ProviderKind.CLOUD))

    async def submit() -> None:
        async with aiohttp.ClientSession() as session, session.post(
                server.url + "/sdapi/v1/txt2img", headers=BEARER,
                json={"prompt": "a tower", "width": 64, "height": 64}) as reply:
            assert reply.status == 200

    seen = await _follow(server, submit)
    types = [m["type"] for m in seen]
    assert types[0] == "job.added" and "image.generated" in types
    routed = next(m for m in seen if m["type"] == "job.routed")
    assert routed["provider"] == "openai" and "no CUDA device" in routed["reason"]
    opened = [m for m in seen if m["type"] == "provider.state" and m["provider"] == "local"]
    assert opened and opened[0]["state"] in ("open", "forced_open")


async def test_a_failed_job_is_announced(serve: Serve) -> None:
    server = await serve(ScriptedProvider("local", script=[Misconfigured("weights missing")]))
    async with aiohttp.ClientSession() as session, session.ws_connect(
            server.url + "/v1/events", headers=BEARER) as ws:
        await asyncio.sleep(0.05)
        async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=TOKEN,
                                      max_retries=0) as api:
            with pytest.raises(openai.InternalServerError):
                await api.images.generate(prompt="x", size="64x64")
        seen = await _collect(ws, "job.failed")
    assert "weights missing" in seen[-1]["message"]


async def test_a_client_that_falls_behind_is_dropped_with_a_reason(serve: Serve) -> None:
    server = await serve()
    async with aiohttp.ClientSession() as session, session.ws_connect(
            server.url + "/v1/events", headers=BEARER) as ws:
        await asyncio.sleep(0.05)
        for step in range(MAX_BEHIND * 2):  # at once: the engine never waits for a client
            server.engine.hub.emit(JobProgress(1, "local", step, MAX_BEHIND * 2))
        while (message := await asyncio.wait_for(ws.receive(), 10)).type is \
                aiohttp.WSMsgType.TEXT:
            pass
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == TOO_SLOW and "too slow" in str(message.extra)


async def test_the_events_socket_needs_the_token(serve: Serve) -> None:
    server = await serve()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await session.ws_connect(server.url + "/v1/events")
        assert caught.value.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await session.ws_connect(server.url + "/v1/events",
                                     headers={**BEARER, "Origin": "http://evil.example"})
        assert caught.value.status == 403
