"""Every documented setting changes something a user would see (issue 11.14).

Each test opens the real app (``bootstrap.open_app``) with the setting given as its
``IMAGEDESK_*`` variable (or in settings.json), and shows the difference against the
default: a request sent or not to the fake OpenAI server, a route's skip reason or
order, a breaker that opens, a rate limit that makes a job wait, a file's folder or
size. Scripted providers stand in only where the real one needs a GPU or a Redis
server; the settings still build the slot (breaker, limits, place) around them.
``test_every_documented_setting_is_proved_here`` keeps the list complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import types
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from PIL import Image

from desktop_app.bootstrap import AppContext
from desktop_app.config import default_policy, load_settings
from desktop_app.config.fields import LEAVES
from desktop_app.domain.errors import (
    CircuitOpen,
    ContentRejected,
    InvalidRequest,
    Misconfigured,
    OutOfMemory,
    Transient,
)
from desktop_app.domain.image_work import ImageToImage, RequestKind
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest, OutputFormat, RouteMode, RoutingPolicy
from desktop_app.engine.events import JobWaiting
from desktop_app.providers.base import (
    CancelToken,
    Capabilities,
    ImageProvider,
    ProviderKind,
    SizeRule,
)
from desktop_app.providers.local_diffusion.gpu_worker import device_choice
from desktop_app.providers.local_diffusion.gpu_worker.device_choice import Device
from desktop_app.providers.local_diffusion.gpu_worker.loading import apply_memory_options
from desktop_app.providers.local_diffusion.messages import DeviceInfo
from desktop_app.providers.local_diffusion.provider import LocalDiffusionProvider
from desktop_app.providers.remote_bullmq.config import WorkerConfig
from desktop_app.providers.remote_bullmq.worker import RemoteWorker
from desktop_app.resilience.breaker import BreakerState, CircuitBreaker
from desktop_app.resilience.clock import FakeClock
from desktop_app.store.files import read_image_metadata
from tests.fakes.fake_openai import FakeOpenAI, Fault, Reply
from tests.fakes.model_files import write_model
from tests.fakes.scripted_provider import ScriptedProvider
from tests.providers.remote_bullmq.support import (
    PASSWORD,
    REDIS_SERVER,
    RedisServer,
    StandInGPU,
)
from tests.settings_effects import (
    OPENAI_KEY,
    PROVED,
    opened,
    order,
    proves,
    request,
    route,
    run,
    skips,
    swap,
)
from tests.waiting import wait_until

# Window settings, proved with real widgets where the window is (each file's test
# changes the setting and observes the window or the worker).
PROVED_ELSEWHERE = {
    "local.warm_on_start": "tests/ui/test_warm_on_start.py",
    "ui.theme": "tests/ui/test_window_settings.py",
    "ui.recent_prompts_max": "tests/ui/test_window_settings.py",
    "ui.serve_api": "tests/ui/test_api_setting.py",
    "ui.api_port": "tests/ui/test_api_setting.py",
}

REMOTE_ON = {"remote.enabled": "true", "remote.redis_url": "redis://127.0.0.1:1/0"}
PROVIDERS = {"local": {}, "openai": {}, "remote": REMOTE_ON}


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


# -- on/off, order, placement ---------------------------------------------------------


@proves("local.enabled", "openai.enabled", "remote.enabled")
async def test_enabled_takes_a_provider_in_or_out_of_the_route(tmp_path: Path) -> None:
    async with opened(tmp_path / "a") as ctx:
        plan = await route(ctx)
        assert set(order(plan)) == {"local", "openai"} and "remote" not in skips(plan)
    async with opened(tmp_path / "b", {"local.enabled": "false", "openai.enabled": "false",
                                       **REMOTE_ON}) as ctx:
        plan = await route(ctx)
        assert skips(plan)["local"] == "disabled in Settings"
        assert skips(plan)["openai"] == "disabled in Settings"
        assert "Redis at 127.0.0.1:1 is unreachable" in skips(plan)["remote"]  # now tried


@proves("remote.redis_url")
async def test_redis_url_is_where_remote_workers_are_looked_for(tmp_path: Path) -> None:
    async with opened(tmp_path, {"remote.enabled": "true",
                                 "remote.redis_url": "redis://127.0.0.1:2/0"}) as ctx:
        assert "127.0.0.1:2 is unreachable" in skips(await route(ctx))["remote"]


@proves("local.priority", "openai.priority")
async def test_priority_orders_the_route(tmp_path: Path) -> None:
    off_cpu = {"routing.cpu_after_cloud": "false"}
    async with opened(tmp_path / "a", off_cpu) as ctx:
        assert order(await route(ctx)) == ["local", "openai"]
    async with opened(tmp_path / "b", {**off_cpu, "local.priority": "20"}) as ctx:
        assert order(await route(ctx)) == ["openai", "local"]
    async with opened(tmp_path / "c", {**off_cpu, "openai.priority": "-5"}) as ctx:
        assert order(await route(ctx)) == ["openai", "local"]


def _gpu_and_workers(ctx: AppContext) -> None:
    swap(ctx, "local", ScriptedProvider("local", ProviderKind.LOCAL))  # a free "GPU"
    swap(ctx, "remote", ScriptedProvider("remote", ProviderKind.REMOTE))


@proves("remote.priority", "remote.placement")
async def test_remote_priority_and_placement_place_the_workers(tmp_path: Path) -> None:
    async with opened(tmp_path / "a", REMOTE_ON) as ctx:  # after_local, 5: before the cloud
        _gpu_and_workers(ctx)
        assert order(await route(ctx)) == ["local", "remote", "openai"]
    async with opened(tmp_path / "b", {**REMOTE_ON, "remote.priority": "50"}) as ctx:
        _gpu_and_workers(ctx)
        assert order(await route(ctx)) == ["local", "openai", "remote"]
    async with opened(tmp_path / "c", {**REMOTE_ON, "remote.placement": "before_local"}) as ctx:
        _gpu_and_workers(ctx)
        assert order(await route(ctx)) == ["remote", "local", "openai"]
    async with opened(tmp_path / "d", {**REMOTE_ON,
                                       "remote.placement": "when_local_busy"}) as ctx:
        _gpu_and_workers(ctx)
        plan = await route(ctx)
        assert order(plan) == ["local", "openai"]
        assert skips(plan)["remote"] == "standing by while local is free"


@proves("routing.cpu_after_cloud", "local.device")
async def test_a_local_provider_on_the_cpu_ranks_after_the_cloud(tmp_path: Path) -> None:
    # this machine has no GPU: "auto" finds the CPU
    async with opened(tmp_path / "a") as ctx:
        assert order(await route(ctx)) == ["openai", "local"]
    async with opened(tmp_path / "b", {"routing.cpu_after_cloud": "false"}) as ctx:
        assert order(await route(ctx)) == ["local", "openai"]
    async with opened(tmp_path / "c", {"local.device": "cuda"}) as ctx:  # asked for the GPU
        assert order(await route(ctx)) == ["local", "openai"]


def _slow_gpu_and_paid_cloud(ctx: AppContext) -> None:
    gpu = ScriptedProvider("local")
    gpu.caps = dataclasses.replace(gpu.caps, estimated_latency_s=60.0)
    cloud = ScriptedProvider("openai", ProviderKind.CLOUD, cost_per_image=0.04)
    cloud.caps = dataclasses.replace(cloud.caps, estimated_latency_s=20.0)
    swap(ctx, "local", gpu)
    swap(ctx, "openai", cloud)


@proves("routing.strategy", "routing.target_s")
async def test_the_routing_strategy_orders_new_jobs_by_time_and_money(tmp_path: Path) -> None:
    off_cpu = {"routing.cpu_after_cloud": "false"}
    orders = {}
    for key, settings in {
            "default": {}, "fastest": {"routing.strategy": "fastest"},
            "cheapest in 120 s": {"routing.strategy": "cheapest", "routing.target_s": "120"},
            "cheapest in 30 s": {"routing.strategy": "cheapest", "routing.target_s": "30"},
    }.items():
        async with opened(tmp_path / key.replace(" ", "_"), {**off_cpu, **settings}) as ctx:
            _slow_gpu_and_paid_cloud(ctx)
            orders[key] = order(await route(ctx, faced(ctx)))
    assert orders == {"default": ["local", "openai"], "fastest": ["openai", "local"],
                      "cheapest in 120 s": ["local", "openai"],
                      "cheapest in 30 s": ["openai", "local"]}


@proves("routing.max_cost_per_job_usd")
async def test_a_cost_cap_per_job_skips_a_provider_that_would_cost_more(tmp_path: Path) -> None:
    off_cpu = {"routing.cpu_after_cloud": "false"}
    async with opened(tmp_path / "a", {**off_cpu, "routing.max_cost_per_job_usd": "0.01"}) as ctx:
        _slow_gpu_and_paid_cloud(ctx)
        plan = await route(ctx, faced(ctx))
        assert order(plan) == ["local"]
        assert skips(plan)["openai"] == ("could cost up to $0.04, over this job's cap of "
                                         "$0.01")
    async with opened(tmp_path / "b", {**off_cpu, "routing.max_cost_per_job_usd": "0.10"}) as ctx:
        _slow_gpu_and_paid_cloud(ctx)
        assert order(await route(ctx, faced(ctx))) == ["local", "openai"]
    # unreadable: the cloud is held off rather than left uncapped
    loaded = load_settings(tmp_path / "none.json",
                           {"IMAGEDESK_ROUTING__MAX_COST_PER_JOB_USD": "lots"}).settings
    reason = loaded.cloud_off_reason()
    assert reason is not None and "max_cost_per_job_usd" in reason


# -- routing defaults: what both faces start a new job with ----------------------


def faced(ctx: AppContext, **fields: Any) -> GenerationRequest:
    """A request as the editor or the CLI builds it: the settings' default policy."""
    return request(policy=default_policy(ctx.settings), **fields)


@proves("routing.mode")
async def test_routing_mode_is_where_new_jobs_go(tmp_path: Path) -> None:
    async with opened(tmp_path / "a", {"routing.mode": "local"}) as ctx:
        plan = await route(ctx, faced(ctx))
        assert order(plan) == ["local"]
        assert skips(plan)["openai"] == "disabled by policy: local only"
    async with opened(tmp_path / "b", {"routing.mode": "cloud"}) as ctx:
        plan = await route(ctx, faced(ctx))
        assert order(plan) == ["openai"] and "cloud only" in skips(plan)["local"]


@proves("routing.allow_cloud_fallback")
async def test_no_cloud_fallback_keeps_new_jobs_off_the_cloud(tmp_path: Path) -> None:
    async with opened(tmp_path / "a") as ctx:
        assert "openai" in order(await route(ctx, faced(ctx)))
    async with opened(tmp_path / "b", {"routing.allow_cloud_fallback": "false"}) as ctx:
        plan = await route(ctx, faced(ctx))
        assert order(plan) == ["local"]
        assert "openai" in skips(plan)


SMALL = Capabilities(sizes=SizeRule(multiple_of=8, min_side=64, max_side=512),
                     max_images_per_call=1, supports_seed=True)


@proves("routing.allow_adaptation")
async def test_no_adaptation_skips_a_provider_the_job_does_not_fit(tmp_path: Path) -> None:
    async with opened(tmp_path / "a", {"routing.mode": "local"}) as ctx:
        swap(ctx, "local", ScriptedProvider("local", caps=SMALL))
        (candidate,) = (await route(ctx, faced(ctx, width=1024, height=1024))).candidates
        assert candidate.fit.adaptations  # resized to fit, and recorded
    async with opened(tmp_path / "b", {"routing.mode": "local",
                                       "routing.allow_adaptation": "false"}) as ctx:
        swap(ctx, "local", ScriptedProvider("local", caps=SMALL))
        plan = await route(ctx, faced(ctx, width=1024, height=1024))
        assert order(plan) == [] and "capabilities don't fit" in skips(plan)["local"]


@proves("routing.allow_failover_after_refusal")
async def test_refusal_failover_setting_lets_a_refused_prompt_move_on(tmp_path: Path) -> None:
    for home, settings, expected in ((tmp_path / "a", {}, JobState.FAILED),
                                     (tmp_path / "b", {"routing.allow_failover_after_refusal":
                                                       "true"}, JobState.SUCCEEDED)):
        async with opened(home, {**REMOTE_ON, "openai.enabled": "false", **settings}) as ctx:
            local = ScriptedProvider("local", script=[ContentRejected("refused")])
            workers = ScriptedProvider("remote", ProviderKind.REMOTE)
            swap(ctx, "local", local)
            swap(ctx, "remote", workers)
            job = await run(ctx, faced(ctx))
            assert job.state is expected
            assert len(workers.calls) == (1 if expected is JobState.SUCCEEDED else 0)


# -- retries and deadlines ------------------------------------------------------------


async def _retries(home: Path, settings: dict[str, str]) -> tuple[int, list[float]]:
    clock = FakeClock()
    settings = {"openai.enabled": "false", "local.breaker.min_calls": "6", **settings}
    async with opened(home, settings, clock=clock) as ctx:  # the breaker stays out of it
        local = ScriptedProvider("local", script=[Transient("busy")] * 10)
        swap(ctx, "local", local)
        job = await run(ctx, request())
        assert job.state is JobState.FAILED
        return len(local.calls), [s for s in clock.slept if s > 0]


@proves("routing.retry_max_attempts")
async def test_retry_max_attempts_is_how_often_a_provider_is_called(tmp_path: Path) -> None:
    calls, _ = await _retries(tmp_path / "a", {})
    assert calls == 3
    calls, _ = await _retries(tmp_path / "b", {"routing.retry_max_attempts": "5",
                                               "routing.retry_base_s": "0.01"})
    assert calls == 5


@proves("routing.retry_base_s", "routing.retry_max_s")
async def test_retry_waits_follow_base_and_max(tmp_path: Path) -> None:
    _, waits = await _retries(tmp_path / "a", {})
    assert len(waits) == 2 and waits[0] <= 1.0 and waits[1] <= 2.0
    _, waits = await _retries(tmp_path / "b", {"routing.retry_base_s": "20",
                                               "routing.retry_max_s": "20"})
    assert 10.0 <= waits[0] <= 20.0 and 10.0 <= waits[1] <= 20.0  # capped by retry_max_s
    _, waits = await _retries(tmp_path / "c", {"routing.retry_base_s": "20",
                                               "routing.retry_max_s": "100"})
    assert 10.0 <= waits[0] <= 20.0 and 20.0 < waits[1] <= 40.0  # doubled


@proves("routing.job_deadline_s")
async def test_job_deadline_ends_retrying(tmp_path: Path) -> None:
    calls, _ = await _retries(tmp_path / "a", {"routing.retry_max_attempts": "6",
                                               "routing.retry_base_s": "10"})
    assert calls == 6
    calls, _ = await _retries(tmp_path / "b", {"routing.retry_max_attempts": "6",
                                               "routing.retry_base_s": "10",
                                               "routing.job_deadline_s": "15"})
    assert calls < 6


# -- circuit breakers -----------------------------------------------------------------


def _breaker(ctx: AppContext, name: str) -> CircuitBreaker:
    return ctx.engine.slot(name).breaker


def _fail(breaker: CircuitBreaker, n: int = 1, duration: float = 0.1) -> None:
    for _ in range(n):
        breaker.try_acquire().failure(Transient("boom"), duration)


def _succeed(breaker: CircuitBreaker, n: int = 1, duration: float = 0.1) -> None:
    for _ in range(n):
        breaker.try_acquire().success(duration)


def _b(name: str, **fields: object) -> dict[str, str]:
    return {**PROVIDERS[name], **{f"{name}.breaker.{k}": str(v) for k, v in fields.items()}}


COUNT = {"window": "count", "window_size": 6}


@pytest.mark.parametrize("name", PROVIDERS)
async def test_breaker_min_calls(tmp_path: Path, name: str) -> None:
    proves(f"{name}.breaker.min_calls")(test_breaker_min_calls)
    async with opened(tmp_path / "a", _b(name, **COUNT, min_calls=2)) as ctx:
        _fail(_breaker(ctx, name))
        assert _breaker(ctx, name).state is BreakerState.CLOSED
    async with opened(tmp_path / "b", _b(name, **COUNT, min_calls=1)) as ctx:
        _fail(_breaker(ctx, name))
        assert _breaker(ctx, name).state is BreakerState.OPEN


@pytest.mark.parametrize("name", PROVIDERS)
async def test_breaker_failure_rate(tmp_path: Path, name: str) -> None:
    for home, rate, expected in ((tmp_path / "a", 0.5, BreakerState.OPEN),
                                 (tmp_path / "b", 0.6, BreakerState.CLOSED)):
        async with opened(home, _b(name, **COUNT, min_calls=2, failure_rate=rate)) as ctx:
            _succeed(_breaker(ctx, name))
            _fail(_breaker(ctx, name))
            assert _breaker(ctx, name).state is expected


@pytest.mark.parametrize("name", PROVIDERS)
async def test_breaker_window_and_window_size(tmp_path: Path, name: str) -> None:
    clock = FakeClock()
    # the same two failures 20 s apart: a 10 s time window has forgotten the first
    for home, window, expected in ((tmp_path / "a", "count", BreakerState.OPEN),
                                   (tmp_path / "b", "time", BreakerState.CLOSED)):
        async with opened(home, _b(name, window=window, window_size=10, min_calls=2),
                          clock=clock) as ctx:
            _fail(_breaker(ctx, name))
            clock.advance(20)
            _fail(_breaker(ctx, name))
            assert _breaker(ctx, name).state is expected
    # success, success, failure: 1 in 2 over the last two calls, 1 in 3 over four
    for home, size, expected in ((tmp_path / "c", 2, BreakerState.OPEN),
                                 (tmp_path / "d", 4, BreakerState.CLOSED)):
        async with opened(home, _b(name, window="count", window_size=size, min_calls=2)) as ctx:
            _succeed(_breaker(ctx, name), 2)
            _fail(_breaker(ctx, name))
            assert _breaker(ctx, name).state is expected


@pytest.mark.parametrize("name", PROVIDERS)
async def test_breaker_slow_calls(tmp_path: Path, name: str) -> None:
    # two successes of 5 s and 0.1 s: slow past 1 s, not past 10 s
    for home, fields, expected in (
            (tmp_path / "a", {"slow_call_s": 10, "slow_rate": 0.5}, BreakerState.CLOSED),
            (tmp_path / "b", {"slow_call_s": 1, "slow_rate": 0.5}, BreakerState.OPEN),
            (tmp_path / "c", {"slow_call_s": 1, "slow_rate": 0.6}, BreakerState.CLOSED)):
        async with opened(home, _b(name, **COUNT, min_calls=2, **fields)) as ctx:
            breaker = _breaker(ctx, name)
            _succeed(breaker, duration=5.0)
            _succeed(breaker, duration=0.1)
            assert breaker.state is expected


@pytest.mark.parametrize("name", PROVIDERS)
async def test_breaker_open_times(tmp_path: Path, name: str) -> None:
    clock = FakeClock()
    async with opened(tmp_path / "a", _b(name, **COUNT, min_calls=1, open_base_s=40,
                                         open_max_s=600), clock=clock) as ctx:
        _fail(_breaker(ctx, name))
        assert _breaker(ctx, name).retry_after() == pytest.approx(40)
        if name != "remote":  # remote's Redis is unreachable anyway
            assert "next try in 40 s" in skips(await route(ctx))[name]
        clock.advance(40)
        _fail(_breaker(ctx, name))  # the trial fails: open twice as long
        assert _breaker(ctx, name).retry_after() == pytest.approx(80)
    async with opened(tmp_path / "b", _b(name, **COUNT, min_calls=1, open_base_s=40,
                                         open_max_s=50), clock=clock) as ctx:
        _fail(_breaker(ctx, name))
        clock.advance(40)
        _fail(_breaker(ctx, name))
        assert _breaker(ctx, name).retry_after() == pytest.approx(50)


@pytest.mark.parametrize("name", PROVIDERS)
async def test_breaker_trials(tmp_path: Path, name: str) -> None:
    clock = FakeClock()
    for home, calls, timeout in ((tmp_path / "a", 1, 300), (tmp_path / "b", 2, 5)):
        async with opened(home, _b(name, **COUNT, min_calls=1, open_base_s=10,
                                   half_open_calls=calls, trial_timeout_s=timeout),
                          clock=clock) as ctx:
            breaker = _breaker(ctx, name)
            _fail(breaker)
            clock.advance(10)
            breaker.try_acquire()  # the first trial call, still out
            if calls == 1:
                with pytest.raises(CircuitOpen):
                    breaker.try_acquire()
                clock.advance(6)
                assert breaker.state is BreakerState.HALF_OPEN  # 300 s to come back
            else:
                breaker.try_acquire()  # a second trial at once
                clock.advance(6)
                assert breaker.state is BreakerState.OPEN  # trials out past 5 s failed


for _name in PROVIDERS:
    proves(*(f"{_name}.breaker.{field}" for field in (
        "min_calls", "failure_rate", "window", "window_size", "slow_call_s", "slow_rate",
        "open_base_s", "open_max_s", "half_open_calls", "trial_timeout_s")))(
        test_breaker_trials)


# -- OpenAI, through the real SDK to the fake server ---------------------------------------

CLOUD = RouteMode.CLOUD_ONLY
def square() -> GenerationRequest:
    return request(width=1024, height=1024, mode=CLOUD)


@proves("openai.base_url", "openai.model", "openai.stream_previews")
async def test_openai_calls_go_where_and_as_the_settings_say(tmp_path: Path,
                                                              fake_server: FakeOpenAI) -> None:
    async with opened(tmp_path / "a", base_url=fake_server.base_url) as ctx:
        assert (await run(ctx, square())).state is JobState.SUCCEEDED
    async with opened(tmp_path / "b", {"openai.model": "dall-e-3",
                                       "openai.stream_previews": "false"},
                      base_url=fake_server.base_url) as ctx:
        assert (await run(ctx, square())).state is JobState.SUCCEEDED
    first, second = (r.body or {} for r in fake_server.image_requests())
    assert first["model"] == "gpt-image-2" and first.get("stream") is True
    assert second["model"] == "dall-e-3" and not second.get("stream")
    async with opened(tmp_path / "c") as ctx:  # elsewhere (a closed port): not to this server
        assert (await run(ctx, square())).state is JobState.FAILED
    assert len(fake_server.image_requests()) == 2


@proves("openai.organization", "openai.project")
async def test_openai_organization_and_project_are_sent(tmp_path: Path,
                                                       fake_server: FakeOpenAI) -> None:
    async with opened(tmp_path / "a", base_url=fake_server.base_url) as ctx:
        await run(ctx, square())
    async with opened(tmp_path / "b", {"openai.organization": "org-acme",
                                       "openai.project": "proj_42"},
                      base_url=fake_server.base_url) as ctx:
        await run(ctx, square())
    first, second = (r.headers for r in fake_server.image_requests())
    assert "openai-organization" not in first and "openai-project" not in first
    assert second["openai-organization"] == "org-acme" and second["openai-project"] == "proj_42"


@proves("openai.timeout_s")
async def test_openai_timeout_gives_up_on_a_silent_server(tmp_path: Path,
                                                         fake_server: FakeOpenAI) -> None:
    once = {"routing.retry_max_attempts": "1"}
    fake_server.script([Reply(Fault.OK, delay=1.5), Reply(Fault.OK, delay=1.5)])
    async with opened(tmp_path / "a", once, base_url=fake_server.base_url) as ctx:
        assert (await run(ctx, square())).state is JobState.SUCCEEDED
    async with opened(tmp_path / "b", {**once, "openai.timeout_s": "0.5"},
                      base_url=fake_server.base_url) as ctx:
        job = await run(ctx, square())
        assert job.state is JobState.FAILED and "Transient" in (job.error or "")


@proves("openai.deadline_s")
async def test_openai_deadline_cuts_a_trickling_reply(tmp_path: Path,
                                                      fake_server: FakeOpenAI) -> None:
    fake_server.default = Reply(Fault.TRICKLE, interval=0.2)  # bytes keep coming: no timeout
    for home, deadline in ((tmp_path / "a", "1"), (tmp_path / "b", "2")):
        async with opened(home, {"routing.retry_max_attempts": "1", "openai.timeout_s": "1",
                                 "openai.deadline_s": deadline},
                          base_url=fake_server.base_url) as ctx:
            job = await run(ctx, square())
            assert job.state is JobState.FAILED
            assert f"did not finish within the {deadline} s" in (job.error_message or "")


# -- money --------------------------------------------------------------------------------


@proves("budget.daily_usd", "budget.monthly_usd")
async def test_a_spending_cap_of_zero_keeps_the_cloud_out(tmp_path: Path) -> None:
    async with opened(tmp_path / "a") as ctx:
        assert "openai" in order(await route(ctx))
    for home, cap in ((tmp_path / "b", "budget.daily_usd"), (tmp_path / "c",
                                                             "budget.monthly_usd")):
        async with opened(home, {cap: "0"}) as ctx:
            plan = await route(ctx)
            assert "openai" not in order(plan) and "over" in skips(plan)["openai"]


async def _waits(home: Path, name: str, settings: dict[str, str], jobs: int) -> list[float]:
    """Seconds each job waited for ``name``'s rate limit, ``jobs`` jobs 10 s apart."""
    clock = FakeClock()
    kind = {"local": ProviderKind.LOCAL, "openai": ProviderKind.CLOUD,
            "remote": ProviderKind.REMOTE}[name]
    others = {n: "false" for n in ("local.enabled", "openai.enabled") if not n.startswith(name)}
    async with opened(home, {**PROVIDERS[name], **others, **settings}, clock=clock) as ctx:
        swap(ctx, name, ScriptedProvider(name, kind))
        waits: list[float] = []
        ctx.engine.hub.subscribe(
            lambda e: waits.append(round(e.seconds)) if isinstance(e, JobWaiting) else None)
        for _ in range(jobs):
            assert (await run(ctx, request(policy=RoutingPolicy(provider=name)))).state \
                is JobState.SUCCEEDED
            clock.advance(10)
        return waits


@pytest.mark.parametrize("name", PROVIDERS)
async def test_rate_limits_make_a_job_wait(tmp_path: Path, name: str) -> None:
    assert await _waits(tmp_path / "a", name, {}, 3) == []
    limited = {f"{name}.rate_limits": '[{"limit": 2, "period_s": 60}]'}
    assert await _waits(tmp_path / "b", name, limited, 3) == [40]  # sliding: the 1st leaves


@pytest.mark.parametrize("name", PROVIDERS)
async def test_rate_strategy_decides_how_long(tmp_path: Path, name: str) -> None:
    limited = {f"{name}.rate_limits": '[{"limit": 2, "period_s": 60}]'}
    fixed = {**limited, f"{name}.rate_strategy": "fixed_window"}
    bucket = {**limited, f"{name}.rate_strategy": "token_bucket"}
    assert await _waits(tmp_path / "a", name, fixed, 3) == [20]  # until the minute turns
    assert await _waits(tmp_path / "b", name, bucket, 3) == [10]  # one token per 30 s


for _name in PROVIDERS:
    proves(f"{_name}.rate_limits")(test_rate_limits_make_a_job_wait)
    proves(f"{_name}.rate_strategy")(test_rate_strategy_decides_how_long)


class _Counting(ScriptedProvider):
    """Holds every call until ``release`` is set; ``peak``: the most calls in at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.release = asyncio.Event()
        self.now = self.peak = 0

    async def generate(self, *args: Any, **kwargs: Any) -> list[GeneratedImage]:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await self.release.wait()
            return await super().generate(*args, **kwargs)
        finally:
            self.now -= 1


def _in_flight(provider: _Counting, calls: int) -> bool:
    return provider.now == calls


@pytest.mark.parametrize("name, kind", [("openai", ProviderKind.CLOUD),
                                        ("remote", ProviderKind.REMOTE)])
async def test_concurrency_is_how_many_jobs_a_provider_serves_at_once(
        tmp_path: Path, name: str, kind: ProviderKind) -> None:
    peaks = []
    for home, concurrency in ((tmp_path / "a", 1), (tmp_path / "b", 3)):
        async with opened(home, {**PROVIDERS[name], f"{name}.concurrency": str(concurrency),
                                 "local.enabled": "false"}) as ctx:
            provider = _Counting(name, kind)
            swap(ctx, name, provider)
            jobs = [await ctx.engine.submit(request(policy=RoutingPolicy(provider=name)))
                    for _ in range(3)]
            await ctx.engine.start()
            await wait_until(functools.partial(_in_flight, provider, concurrency), 10,
                             "the calls to start")
            await asyncio.sleep(0.3)  # time for a call too many to start, were it allowed
            provider.release.set()
            for job in jobs:
                assert (await ctx.engine.wait_for(job.id)).state is JobState.SUCCEEDED
            peaks.append(provider.peak)
    assert peaks == [1, 3]


proves("openai.concurrency", "remote.concurrency")(
    test_concurrency_is_how_many_jobs_a_provider_serves_at_once)


# -- content ------------------------------------------------------------------------------


@proves("content.blocked_terms")
async def test_a_blocked_term_refuses_the_prompt_before_it_is_queued(tmp_path: Path) -> None:
    async with opened(tmp_path / "a") as ctx:
        await ctx.engine.submit(request("a gory scene"))
    async with opened(tmp_path / "b", {"content.blocked_terms": '["gory"]'}) as ctx:
        with pytest.raises(InvalidRequest, match="gory"):
            await ctx.engine.submit(request("a gory scene"))
        assert await ctx.engine.jobs() == []


@proves("content.private_terms")
async def test_a_private_term_keeps_the_job_on_this_machine_even_by_failover(
        tmp_path: Path) -> None:
    made = {}
    for key, settings in {"none": {}, "private": {
            "content.private_terms": '["Lighthouse"]'}}.items():
        async with opened(tmp_path / key, settings) as ctx:
            swap(ctx, "local", ScriptedProvider("local", script=[OutOfMemory("CUDA oom")]))
            cloud = ScriptedProvider("openai", ProviderKind.CLOUD)
            swap(ctx, "openai", cloud)
            job = await run(ctx, request("a lighthouse at dusk"))
            images = await ctx.engine.images_of(job)
            left = [meta.provenance["left_machine"] for meta in map(read_image_metadata, (
                i.path for i in images)) if meta is not None and meta.provenance is not None]
            made[key] = (job.state, len(cloud.calls), job.request.policy.private, left)
    assert made == {"none": (JobState.SUCCEEDED, 1, False, [True]),
                    "private": (JobState.FAILED, 0, True, [])}


@proves("content.private_folders")
async def test_a_source_from_a_private_folder_keeps_its_jobs_on_this_machine(
        tmp_path: Path) -> None:
    family = tmp_path / "family"
    family.mkdir()
    photo = family / "photo.png"
    Image.new("RGB", (64, 64), (120, 80, 40)).save(photo)
    sent = {}
    for key, settings in {"none": {}, "private": {
            "content.private_folders": json.dumps([str(family)])}}.items():
        async with opened(tmp_path / key, settings) as ctx:
            swap(ctx, "local", ScriptedProvider("local", script=[OutOfMemory("CUDA oom")]))
            cloud = ScriptedProvider("openai", ProviderKind.CLOUD)
            cloud.caps = dataclasses.replace(cloud.caps, kinds=frozenset(RequestKind))
            swap(ctx, "openai", cloud)
            source = await ctx.engine.add_input_image(photo)
            job = await run(ctx, request("a warmer light", work=ImageToImage(source, 0.4)))
            sent[key] = (job.state, len(cloud.calls), job.request.policy.private)
    assert sent == {"none": (JobState.SUCCEEDED, 1, False),
                    "private": (JobState.FAILED, 0, True)}


@proves("content.nsfw_check", "content.nsfw_threshold")
async def test_the_nsfw_check_blurs_or_blocks_past_its_threshold(tmp_path: Path) -> None:
    # the real classifier; a flat image scores far below 0.7 but above 0.01
    outcomes = {}
    for key, settings in {
            "off": {"content.nsfw_threshold": "0.01"},
            "block": {"content.nsfw_check": "block"},
            "block low": {"content.nsfw_check": "block", "content.nsfw_threshold": "0.01"},
            "blur low": {"content.nsfw_check": "blur", "content.nsfw_threshold": "0.01"}}.items():
        async with opened(tmp_path / key, {"openai.enabled": "false", **settings}) as ctx:
            swap(ctx, "local", ScriptedProvider("local"))
            job = await run(ctx, request())
            images = await ctx.engine.images_of(job)
            outcomes[key] = (job.state, len(images))
    assert outcomes == {"off": (JobState.SUCCEEDED, 1), "block": (JobState.SUCCEEDED, 1),
                        "block low": (JobState.FAILED, 0), "blur low": (JobState.SUCCEEDED, 1)}


# -- output ----------------------------------------------------------------------------------


@proves("output.folder")
async def test_images_land_in_the_output_folder(tmp_path: Path) -> None:
    folder = tmp_path / "pictures"
    async with opened(tmp_path / "a", {"openai.enabled": "false"}) as ctx:
        swap(ctx, "local", ScriptedProvider("local"))
        (image,) = await ctx.engine.images_of(await run(ctx, request()))
        assert not image.path.is_relative_to(folder)
    async with opened(tmp_path / "b", {"openai.enabled": "false",
                                       "output.folder": str(folder)}) as ctx:
        swap(ctx, "local", ScriptedProvider("local"))
        (image,) = await ctx.engine.images_of(await run(ctx, request()))
        assert image.path.is_relative_to(folder) and image.path.is_file()


@proves("output.quality")
async def test_output_quality_sets_the_jpeg_encoding(tmp_path: Path) -> None:
    sizes = []
    for home, quality in ((tmp_path / "a", "5"), (tmp_path / "b", "100")):
        async with opened(home, {"openai.enabled": "false", "output.quality": quality}) as ctx:
            swap(ctx, "local", ScriptedProvider("local"))
            job = await run(ctx, request(width=256, height=256,
                                         output_format=OutputFormat.JPEG))
            (image,) = await ctx.engine.images_of(job)
            with Image.open(image.path) as picture:
                picture.load()
                sizes.append((picture.format, image.path.stat().st_size))
    (low_format, low), (high_format, high) = sizes
    assert low_format == high_format == "JPEG" and low < high


@pytest.mark.slow
@proves("output.format")
def test_output_format_is_what_the_cli_saves_without_format(tmp_path: Path,
                                                            fake_server: FakeOpenAI) -> None:
    env = {**os.environ, "IMAGEDESK_HOME": str(tmp_path), "OPENAI_API_KEY": OPENAI_KEY,
           "IMAGEDESK_OPENAI__BASE_URL": fake_server.base_url, "IMAGEDESK_OUTPUT__FORMAT": "webp"}
    done = subprocess.run(
        [sys.executable, "-m", "desktop_app", "generate", "a fox", "--provider", "openai",
         "--size", "1024x1024", "--json"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    (path,) = json.loads(done.stdout)["images"]
    assert path.endswith(".webp")
    with Image.open(path) as picture:
        assert picture.format == "WEBP"


# -- the local pipeline, in its real worker -----------------------------------------------


class _Hub(http.server.BaseHTTPRequestHandler):
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_error(404)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.mark.slow
@proves("local.model", "local.scheduler", "local.attention_slicing", "local.vae_tiling",
        "local.idle_shutdown_s", "local.allow_download", "local.allow_cpu")
async def test_local_settings_reach_the_diffusion_worker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{hub.server_address[1]}")
    _Hub.paths = []
    changed = {"local.scheduler": "euler", "local.attention_slicing": "true",
               "local.vae_tiling": "true", "local.idle_shutdown_s": "1",
               "local.model": "org/not-here", "local.allow_download": "true"}
    try:
        async with opened(tmp_path / "a") as plain, opened(tmp_path / "b", changed) as tuned, \
                opened(tmp_path / "c", {"local.allow_cpu": "false"}) as no_cpu:
            default = plain.engine.slot("local").provider
            custom = tuned.engine.slot("local").provider
            # three workers start at once (each loads torch: seconds)
            first, second, refused = await asyncio.gather(
                _generate(default, request(steps=2, seed=1)),
                _generate(custom, request(steps=2, seed=1, model="builtin:tiny")),
                _generate(no_cpu.engine.slot("local").provider, request(steps=2)),
                return_exceptions=True)
            # this machine has no GPU: without CPU generation nothing runs
            assert isinstance(refused, Misconfigured)
            assert "CPU generation is turned off" in refused.message
            assert isinstance(first, list) and isinstance(second, list)
            assert first[0].details["scheduler_class"] == "DDIMScheduler"
            assert first[0].details["memory_saving"] == "off"
            assert first[0].details["model"].startswith("Built-in")
            assert second[0].details["scheduler_class"] == "EulerDiscreteScheduler"
            assert second[0].details["memory_saving"] == "on"

            with pytest.raises(Misconfigured, match="not in your Hugging Face cache"):
                await _generate(default, request(steps=2, model="org/not-here"))
            assert _Hub.paths == []  # no download allowed: the Hub was not asked
            with pytest.raises(Misconfigured, match="org/not-here could not be downloaded"):
                await _generate(custom, request(steps=2))  # the settings' model
            assert any("org/not-here" in path for path in _Hub.paths)  # it asked the Hub
            await wait_until(lambda: _worker_pid(custom) is None, 30,
                             "the idle worker's shutdown")
            assert _worker_pid(default) is not None  # 600 s by default
    finally:
        hub.shutdown()
        hub.server_close()


class _RecordingPipe:
    """Stands in for a diffusers pipeline on a CUDA machine (this one has none)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.vae = self

    def enable_attention_slicing(self) -> None:
        self.calls.append("attention slicing")

    def enable_tiling(self) -> None:
        self.calls.append("vae tiling")

    def enable_slicing(self) -> None:
        self.calls.append("vae slicing")

    def enable_model_cpu_offload(self) -> None:
        self.calls.append("cpu offload")

    def to(self, device: str) -> None:
        self.calls.append(f"to {device}")


@proves("local.cpu_offload")
async def test_cpu_offload_keeps_the_model_in_system_memory_on_a_gpu(tmp_path: Path) -> None:
    # Offloading only exists on CUDA, which this machine lacks: the worker's own
    # memory step runs on a recording pipeline with the settings the app sends it.
    cuda = Device("cuda", None, DeviceInfo("cuda", "a GPU", 8 * 2**30, "float16", "2"))
    placed = []
    for home, settings in ((tmp_path / "a", {}), (tmp_path / "b", {"local.cpu_offload": "true"})):
        async with opened(home, settings) as ctx:
            provider = ctx.engine.slot("local").provider
            assert isinstance(provider, LocalDiffusionProvider)
            pipe = _RecordingPipe()
            apply_memory_options(pipe, provider._settings(), cuda)
            placed.append(pipe.calls)
    assert placed == [["to cuda"], ["cpu offload"]]


@proves("local.vae_slicing")
async def test_vae_slicing_decodes_a_batch_one_image_at_a_time(tmp_path: Path) -> None:
    # the real pipeline's flag is read back in tests/providers/local_diffusion/
    # test_memory_options.py; here: the setting reaches the worker's memory step
    cpu = Device("cpu", None, DeviceInfo("cpu", "CPU", None, "float32", "2"))
    done = []
    for home, settings in ((tmp_path / "a", {}), (tmp_path / "b", {"local.vae_slicing": "true"})):
        async with opened(home, settings) as ctx:
            provider = ctx.engine.slot("local").provider
            assert isinstance(provider, LocalDiffusionProvider)
            pipe = _RecordingPipe()
            done.append(apply_memory_options(pipe, provider._settings(), cpu).applied)
            assert pipe.calls[-1] == "to cpu"
    assert done == [(), ("vae slicing",)]


class _FakeCudaTorch:
    """torch as the worker sees it on an NVIDIA machine (this one has none)."""

    __version__ = "2.13.0"
    float16, float32 = "torch.float16", "torch.float32"

    class version:
        cuda = "12.4"

    class cuda:
        @staticmethod
        def is_available() -> bool:
            return True

        @staticmethod
        def current_device() -> int:
            return 0

        @staticmethod
        def get_device_properties(index: int) -> Any:
            return types.SimpleNamespace(name="RTX 4060", total_memory=8 * 2**30)


@proves("local.fp16")
async def test_fp16_halves_the_weights_on_a_gpu(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device_choice, "import_torch", lambda: _FakeCudaTorch)
    chosen = []
    for home, settings in ((tmp_path / "a", {}), (tmp_path / "b", {"local.fp16": "false"})):
        async with opened(home, settings) as ctx:
            provider = ctx.engine.slot("local").provider
            assert isinstance(provider, LocalDiffusionProvider)
            device = device_choice.choose_device(provider._settings())
            chosen.append((device.dtype, device.info.dtype))
    assert chosen == [("torch.float16", "float16"), ("torch.float32", "float32")]


async def _generate(provider: ImageProvider, req: GenerationRequest) -> list[GeneratedImage]:
    return await provider.generate(req, lambda _progress: None, CancelToken())


def _worker_pid(provider: ImageProvider) -> int | None:
    assert isinstance(provider, LocalDiffusionProvider)
    return provider.worker_pid


# -- remote workers, on a real redis-server ------------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)")
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def _worker_on(server: RedisServer, queue: str,
                     results: Path | None = None) -> AsyncIterator[StandInGPU]:
    gpu = StandInGPU()
    config = WorkerConfig(heartbeat_s=0.2, lock_s=2.0, stalled_check_s=0.5, cancel_poll_s=0.05,
                          warm_up=False, shutdown_grace_s=5.0, results_folder=results, name="w1")
    worker = RemoteWorker(server.url, queue, local=gpu, password=PASSWORD, config=config)
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(worker.serve(stop))
    await wait_until(lambda: worker._state == "ready", 10, "the worker's start")
    try:
        yield gpu
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


def _remote(server: RedisServer, **fields: str) -> dict[str, str]:
    return {"remote.enabled": "true", "remote.redis_url": server.url,
            **{f"remote.{k}": v for k, v in fields.items()}}


WITH_PASSWORD = {"IMAGEDESK_REMOTE_PASSWORD": PASSWORD}


async def _timed(coro: Awaitable[object]) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        await coro
    except Exception as error:
        return time.monotonic() - started, error
    return time.monotonic() - started, None


@pytest.mark.slow
@proves("remote.queue", "remote.no_worker_grace_s")
async def test_remote_jobs_go_to_the_queue_the_settings_name(
        tmp_path: Path, redis_server: RedisServer) -> None:
    async with _worker_on(redis_server, "studio") as gpu, \
            opened(tmp_path / "a", _remote(redis_server, no_worker_grace_s="0.5"),
                   env=WITH_PASSWORD) as default_queue, \
            opened(tmp_path / "b", _remote(redis_server, no_worker_grace_s="6"),
                   env=WITH_PASSWORD) as patient, \
            opened(tmp_path / "c", _remote(redis_server, queue="studio"),
                   env=WITH_PASSWORD) as studio:
        (quick, quick_error), (slow, slow_error), (_, served) = await asyncio.gather(*(
            _timed(_generate(ctx.engine.slot("remote").provider, request()))
            for ctx in (default_queue, patient, studio)))
        assert served is None and gpu.calls == 1  # the worker on "studio" served "studio"
        for error in (quick_error, slow_error):  # nobody serves "imagedesk" here
            assert isinstance(error, Transient)
            assert "No remote worker is alive on queue 'imagedesk'" in error.message
        assert slow >= 6.0 and quick < slow  # the longer grace waited longer for a worker


@proves("remote.transport", "remote.shared_folder")
async def test_the_folder_transport_reads_images_from_the_shared_folder(
        tmp_path: Path, redis_server: RedisServer) -> None:
    shared, elsewhere = tmp_path / "shared", tmp_path / "elsewhere"
    shared.mkdir()
    elsewhere.mkdir()
    async with _worker_on(redis_server, "imagedesk", results=shared):
        async with opened(tmp_path / "a", _remote(redis_server, shared_folder=str(elsewhere)),
                          env=WITH_PASSWORD) as ctx:  # through Redis: the folder is not used
            assert len(await _generate(ctx.engine.slot("remote").provider, request())) == 1
        async with opened(tmp_path / "b", _remote(redis_server, transport="folder",
                                                  shared_folder=str(elsewhere)),
                          env=WITH_PASSWORD) as ctx:
            with pytest.raises(Transient, match="missing from folder"):
                await _generate(ctx.engine.slot("remote").provider, request())
        async with opened(tmp_path / "c", _remote(redis_server, transport="folder",
                                                  shared_folder=str(shared)),
                          env=WITH_PASSWORD) as ctx:
            assert len(await _generate(ctx.engine.slot("remote").provider, request())) == 1


@proves("local.model_folders")
def test_model_folders_are_where_models_list_finds_models(tmp_path: Path) -> None:
    write_model(tmp_path / "a1111" / "models" / "Lora" / "add_detail.safetensors", "sd1_lora")

    def names(**settings: str) -> list[str]:
        env = {**os.environ, "IMAGEDESK_HOME": str(tmp_path / "home"),
               "HF_HUB_CACHE": str(tmp_path / "hf"), **settings}
        done = subprocess.run([sys.executable, "-m", "desktop_app", "models", "list", "--json"],
                              env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return [m["name"] for m in json.loads(done.stdout)["models"]]

    assert names() == []
    folders = json.dumps([str(tmp_path / "a1111" / "models")])
    assert names(IMAGEDESK_LOCAL__MODEL_FOLDERS=folders) == ["add_detail"]


# -- the list ---------------------------------------------------------------------------


def test_every_documented_setting_is_proved_here() -> None:
    documented = {".".join(path) for path in LEAVES} - set(PROVED_ELSEWHERE)
    assert sorted(documented - set(PROVED)) == []
    assert sorted(set(PROVED) - documented) == []  # a proof of a setting that is gone
    root = Path(__file__).resolve().parents[1]
    for setting, where in PROVED_ELSEWHERE.items():
        section, name = setting.split(".")
        text = (root / where).read_text(encoding="utf-8")
        variable = f"IMAGEDESK_{section.upper()}__{name.upper()}"
        assert name in text or variable in text, f"{where} does not change {setting}"
