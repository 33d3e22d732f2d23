"""Every request passes the guard: its own Host and Origin, the token, a bounded body,
a bounded share of concurrent requests; nothing secret in a reply or a log line.
Real HTTP on 127.0.0.1 (aiohttp's client), the server the users get."""

from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from desktop_app.api.security import own_hosts
from desktop_app.api.server import ApiServer, exposure_warning
from desktop_app.secrets import API_TOKEN, KeyStore, api_token, new_api_token
from tests.api.conftest import Serve
from tests.api.support import TOKEN, make_engine
from tests.fakes.keyring_memory import InMemoryKeyring
from tests.fakes.scripted_provider import ScriptedProvider

BEARER = {"Authorization": f"Bearer {TOKEN}"}


def basic(user: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


async def _get(server: ApiServer, path: str,
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, object], str]:
    async with aiohttp.ClientSession() as session, session.get(
            server.url + path, headers=headers) as reply:
        text = await reply.text()
        return reply.status, dict(reply.headers), text


async def test_no_token_is_401_in_openai_shape(serve: Serve) -> None:
    server = await serve()
    status, headers, text = await _get(server, "/v1/models")
    assert status == 401 and "Bearer" in str(headers["WWW-Authenticate"])
    assert '"type": "invalid_request_error"' in text and '"code": "invalid_api_key"' in text


async def test_a_wrong_token_is_401_and_the_right_one_passes(serve: Serve) -> None:
    server = await serve()
    assert (await _get(server, "/v1/models", {"Authorization": "Bearer nope"}))[0] == 401
    assert (await _get(server, "/v1/models", BEARER))[0] == 200


async def test_the_token_may_be_the_basic_auth_password(serve: Serve) -> None:
    server = await serve()
    assert (await _get(server, "/v1/models", basic("anyone", TOKEN)))[0] == 200
    assert (await _get(server, "/v1/models", basic(TOKEN, "x")))[0] == 401


async def test_a_foreign_host_header_is_403(serve: Serve) -> None:
    """DNS rebinding: a page at evil.example resolved to 127.0.0.1 sends its own Host."""
    server = await serve()
    status, _, text = await _get(server, "/v1/models",
                                 {**BEARER, "Host": f"evil.example:{server.port}"})
    assert status == 403 and "Host" in text
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}"):
        assert (await _get(server, "/v1/models", {**BEARER, "Host": host}))[0] == 200


async def test_a_foreign_origin_is_403_and_the_own_origin_passes(serve: Serve) -> None:
    server = await serve()
    status, _, text = await _get(server, "/v1/models", {**BEARER, "Origin": "https://evil.example"})
    assert status == 403 and "Origin" in text
    own = {**BEARER, "Origin": f"http://127.0.0.1:{server.port}"}
    assert (await _get(server, "/v1/models", own))[0] == 200


async def test_host_and_origin_are_refused_even_with_no_token(serve: Serve) -> None:
    server = await serve()
    assert (await _get(server, "/v1/models", {"Origin": "http://evil.example"}))[0] == 403


async def test_a_50_mb_body_is_413_before_it_is_read(serve: Serve) -> None:
    server = await serve()
    body = b"x" * (50 * 2**20)
    async with aiohttp.ClientSession() as session, session.post(
            server.url + "/v1/images/generations", data=body,
            headers={**BEARER, "Content-Type": "application/json"}) as reply:
        assert reply.status == 413
        assert (await reply.json())["error"]["code"] == "request_too_large"


async def test_a_chunked_body_over_the_limit_is_413(serve: Serve) -> None:
    server = await serve(max_body_bytes=2**20)

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(3):
            yield b"x" * 2**20

    async with aiohttp.ClientSession() as session, session.post(
            server.url + "/v1/images/generations", data=chunks(),
            headers={**BEARER, "Content-Type": "application/json"}) as reply:
        assert reply.status == 413


async def test_a_client_past_its_concurrent_requests_gets_429(serve: Serve) -> None:
    server = await serve(ScriptedProvider("local", script=["slow:0.5"] * 3), per_client=2)
    body = {"prompt": "a boat", "size": "64x64"}
    async with aiohttp.ClientSession() as session:
        async def post() -> int:
            async with session.post(server.url + "/v1/images/generations", json=body,
                                    headers=BEARER) as reply:
                await reply.read()
                return reply.status

        statuses = sorted(await asyncio.gather(*(post() for _ in range(3))))
    assert statuses == [200, 200, 429]


async def test_the_token_never_reaches_a_log_line_or_reply(
        serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = await serve()
    for headers in (BEARER, {"Authorization": "Bearer wrong-token-xyz"}, {}):
        _, _, text = await _get(server, "/v1/models", headers)
        assert TOKEN not in text
    assert TOKEN not in caplog.text


def test_own_hosts_are_the_bound_address_localhost_and_loopback() -> None:
    assert own_hosts("127.0.0.1", 7860) == {"127.0.0.1:7860", "localhost:7860"}
    assert own_hosts("192.168.1.5", 80) == {"192.168.1.5:80", "localhost:80", "127.0.0.1:80"}


def test_listening_beyond_loopback_warns() -> None:
    assert exposure_warning("127.0.0.1") is None and exposure_warning("::1") is None
    warning = exposure_warning("0.0.0.0")
    assert warning is not None and "other machines" in warning


async def test_another_host_is_served_only_when_asked_and_with_a_warning(
        serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    server = await serve()
    assert server.host == "127.0.0.1" and "other machines" not in caplog.text
    wide = await serve(host="0.0.0.0")
    assert "listens on 0.0.0.0: other machines" in caplog.text
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{wide.port}/v1/models", headers=BEARER) as reply:
        assert reply.status == 200


def test_the_token_is_made_once_kept_in_the_keyring_and_replaced_on_request(
        memory_keyring: InMemoryKeyring) -> None:
    keys = KeyStore(env={})
    first = api_token(keys)
    assert len(first) >= 32 and api_token(keys) == first
    assert keys.status(API_TOKEN).source.value == "keyring"
    second = new_api_token(keys)
    assert second != first and api_token(keys) == second


def test_the_environment_token_wins_over_the_keyring() -> None:
    keys = KeyStore(env={"IMAGEDESK_API_TOKEN": "from-the-environment-123"})
    assert api_token(keys) == "from-the-environment-123"


async def test_a_host_name_the_user_allows_is_served(serve: Serve) -> None:
    """Open WebUI in Docker reaches the machine as host.docker.internal."""
    server = await serve(allowed_hosts=["host.docker.internal"])
    headers = {**BEARER, "Host": f"host.docker.internal:{server.port}"}
    assert (await _get(server, "/v1/models", headers))[0] == 200
    assert (await _get(server, "/v1/models", {**BEARER, "Host": f"other:{server.port}"}))[0] \
        == 403


async def test_32_concurrent_clients_are_all_answered_and_no_job_is_lost(serve: Serve) -> None:
    server = await serve(ScriptedProvider("local", steps=1))

    async def one(i: int) -> int:
        async with aiohttp.ClientSession() as session, session.post(
                server.url + "/v1/images/generations", headers=BEARER,
                json={"prompt": f"picture {i}", "size": "64x64"}) as reply:
            await reply.read()
            return reply.status

    statuses = await asyncio.gather(*(one(i) for i in range(32)))
    assert statuses == [200] * 32
    jobs = await server.engine.jobs()
    assert len(jobs) == 32 and {j.state.value for j in jobs} == {"succeeded"}


async def test_an_unexpected_failure_is_a_500_without_its_details(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine(tmp_path, ScriptedProvider("local"))

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError(f"cannot open /home/someone/private.db with {TOKEN}")

    server = ApiServer(engine, TOKEN, port=0)
    server.app.router.add_get("/v1/broken", broken)
    await server.start()
    try:
        status, _, text = await _get(server, "/v1/broken", BEARER)
    finally:
        await server.stop()
        await engine.close()
    assert status == 500 and '"code": "internal_error"' in text
    assert "/home/someone" not in text + caplog.text and TOKEN not in text + caplog.text
