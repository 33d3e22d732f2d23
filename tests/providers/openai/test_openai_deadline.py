"""Our own deadline bounds a whole call (the SDK's read timeout does not), and a
user's cancel ends a call at once.

The timing checks tell the mechanisms apart, they do not measure speed: each upper
bound is the time at which another mechanism (the server's reply, the SDK's read
timeout) would have ended the call, so a slow, loaded machine cannot trip them; the
lower bounds show the deadline did not fire early."""

from __future__ import annotations

import asyncio
import time

import pytest

from desktop_app.domain.errors import Cancelled, Transient
from tests.fakes.fake_openai import FakeOpenAI, Fault, Reply
from tests.providers.openai.conftest import ProviderFactory
from tests.providers.openai.support import Run, generate
from tests.waiting import wait_until


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_a_trickling_server_is_cut_off_at_the_deadline_not_the_sdk_timeout(
        server: FakeOpenAI, make_provider: ProviderFactory, streaming: bool) -> None:
    # each byte arrives well inside the 30 s read timeout, so only our deadline can stop it
    server.script([Reply(Fault.TRICKLE, interval=0.1)])
    provider = make_provider(deadline_s=1.0, timeout_s=30.0, stream_previews=streaming)
    started = time.monotonic()
    with pytest.raises(Transient, match="deadline"):
        await generate(provider)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 30.0  # ours (1 s), not the SDK's read timeout (30 s)


async def test_a_silent_server_is_cut_off_at_the_deadline(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.SLOW, delay=10)])
    started = time.monotonic()
    with pytest.raises(Transient, match="deadline"):
        await generate(make_provider(deadline_s=0.5, timeout_s=30.0))
    assert 0.45 <= time.monotonic() - started < 10.0  # before the server's reply (10 s)


async def test_the_sdk_read_timeout_is_a_transient_error(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.SLOW, delay=10)])
    started = time.monotonic()
    with pytest.raises(Transient, match="timed out"):
        await generate(make_provider(deadline_s=5.0, timeout_s=0.4))
    assert time.monotonic() - started < 5.0  # the read timeout, before our deadline (5 s)
    assert server.request_count == 1


async def test_a_users_cancel_ends_the_call_at_once(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.SLOW, delay=10)])
    run = Run()

    async def cancel_once_the_server_has_it() -> None:
        await wait_until(lambda: server.request_count == 1, what="the request")
        run.cancel.cancel("stopped from the queue")

    canceller = asyncio.ensure_future(cancel_once_the_server_has_it())
    started = time.monotonic()
    with pytest.raises(Cancelled, match="stopped from the queue"):
        await generate(make_provider(deadline_s=30.0), None, run)
    assert time.monotonic() - started < 10.0  # not the server's reply (10 s) or the deadline
    await canceller


async def test_a_job_cancelled_before_the_call_makes_no_request(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    run = Run()
    run.cancel.cancel()
    with pytest.raises(Cancelled):
        await generate(make_provider(), None, run)
    assert server.request_count == 0


async def test_cancelling_the_task_propagates_and_frees_the_call(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.SLOW, delay=10), Reply(Fault.OK)])
    provider = make_provider(deadline_s=5.0)
    task = asyncio.ensure_future(generate(provider))
    await wait_until(lambda: server.request_count == 1, what="the request")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    images = await asyncio.wait_for(generate(provider), 3.0)  # the provider still works
    assert len(images) == 1
