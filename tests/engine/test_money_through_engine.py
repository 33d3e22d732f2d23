"""Rate limits, spending caps and routing policy through the real engine: the
official SDK talks HTTP to the fake OpenAI server, jobs live in SQLite, and the
fake server's request log is the bill (issue 11, items 1, 9 and 10).

Time is a ``ManualClock``: jobs that wait for a rate-limit slot sleep on it
until the test moves it, so the test can count the requests of each window.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from desktop_app.domain.errors import OutOfMemory
from desktop_app.domain.job import Job, JobState
from desktop_app.domain.request import GenerationRequest, RouteMode, RoutingPolicy
from desktop_app.engine.budget import Budget
from desktop_app.engine.engine import Engine
from desktop_app.engine.events import Event, JobWaiting
from desktop_app.engine.runner import RunnerSettings
from desktop_app.providers.openai_images import OpenAIImagesConfig, OpenAIImagesProvider
from desktop_app.resilience.breaker import BreakerConfig
from desktop_app.resilience.clock import ManualClock
from desktop_app.resilience.rate_limit import ProviderRateLimiter, RateSpec
from desktop_app.resilience.retry import RetryPolicy
from tests.fakes.fake_openai import FakeOpenAI, Fault, Reply
from tests.fakes.scripted_engine import engine_in, slot_for
from tests.fakes.scripted_provider import ScriptedProvider, Step

KEY = "sk-test-MoneyKey5Rt8Yu2Io4Pq"
REQ = GenerationRequest(prompt="a lighthouse at dusk", width=1024, height=1024, seed=5)
DALL_E_3_IMAGE_USD = 0.04  # resources/prices.json: dall-e-3, standard, 1024x1024
NEXT_WINDOW = 60.001  # the sliding window frees its oldest slot a millisecond after 60 s


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as fake:
        yield fake


@dataclasses.dataclass
class Rig:
    engine: Engine
    server: FakeOpenAI
    clock: ManualClock
    local: ScriptedProvider | None
    events: list[Event]

    def waits(self) -> list[JobWaiting]:
        return [e for e in self.events if isinstance(e, JobWaiting)]

    def requests(self) -> int:
        return len(self.server.image_requests())

    async def finished(self, jobs: list[Job]) -> list[Job]:
        done = [await self.engine.job(j.id) for j in jobs]
        assert all(d is not None and d.state.finished for d in done)
        return [d for d in done if d is not None]


RigMaker = Callable[..., Rig]


@pytest.fixture
async def make_rig(server: FakeOpenAI, tmp_path: Path) -> AsyncIterator[RigMaker]:
    engines: list[Engine] = []

    def make(*, per_minute: int | None = None, local: list[Step] | None = None,
             budget: Budget | None = None, max_parallel_jobs: int = 3,
             **config: Any) -> Rig:
        clock = ManualClock()
        fields: dict[str, Any] = {"base_url": server.base_url, "deadline_s": 10.0,
                                  "timeout_s": 10.0, "stream_previews": False}
        fields.update(config)
        limiter = (ProviderRateLimiter("openai", [RateSpec(per_minute, 60)], clock=clock)
                   if per_minute else None)
        slots = [slot_for(
            OpenAIImagesProvider(OpenAIImagesConfig(**fields), lambda: KEY), 0, clock=clock,
            breaker=BreakerConfig.cloud(), limiter=limiter,
            retry=RetryPolicy(max_attempts=3, base_s=0.0, max_s=0.0), concurrency=3)]
        scripted = None
        if local is not None:
            scripted = ScriptedProvider("local", script=local)
            slots.append(slot_for(scripted, -10, clock=clock, concurrency=1))
        engine = engine_in(tmp_path, slots, clock=clock, rng=random.Random(4), budget=budget,
                           runner_settings=RunnerSettings(job_deadline_s=120.0,
                                                          max_parallel_jobs=max_parallel_jobs))
        engines.append(engine)
        events: list[Event] = []
        engine.hub.subscribe(events.append)
        return Rig(engine, server, clock, scripted, events)

    yield make
    for engine in engines:
        await engine.close()


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.005)


# -- rate limits ---------------------------------------------------------------------


@pytest.mark.parametrize("with_retry", [False, True], ids=["plain", "one-retry"])
async def test_seven_jobs_under_five_a_minute_all_succeed_and_each_request_takes_a_slot(
        make_rig: RigMaker, with_retry: bool) -> None:
    rig = make_rig(per_minute=5)
    if with_retry:  # a 503 retried at once: one more request in the first window
        rig.server.script([Reply(Fault.SERVER_ERROR, status=503)])
    jobs = [await rig.engine.submit(REQ) for _ in range(7)]
    runner = asyncio.ensure_future(rig.engine.run_until_idle())
    waiting = 3 if with_retry else 2

    await until(lambda: len({w.job_id for w in rig.waits()}) == waiting
                and rig.clock.sleepers == waiting, "the jobs beyond the limit wait")
    assert rig.requests() == 5  # the first window: exactly what the limit allows
    assert {w.text for w in rig.waits()} == {"waiting for openai's rate limit, 60 s"}
    await asyncio.sleep(0.2)  # nothing more reaches the server while they wait
    assert rig.requests() == 5 and not runner.done()

    rig.clock.advance(NEXT_WINDOW)  # the second window: the waiting jobs go on
    await asyncio.wait_for(runner, 30)
    done = await rig.finished(jobs)
    assert [j.state for j in done] == [JobState.SUCCEEDED] * 7
    assert rig.requests() == 5 + waiting
    waited = {w.job_id for w in rig.waits()}
    assert {jobs[5].id, jobs[6].id} <= waited  # the 6th and 7th always wait
    if not with_retry:
        assert waited == {jobs[5].id, jobs[6].id}


async def test_a_job_waiting_for_the_cloud_does_not_hold_up_a_local_job_behind_it(
        make_rig: RigMaker) -> None:
    rig = make_rig(per_minute=1, local=[], max_parallel_jobs=1)
    cloud_only = REQ.replace(policy=RoutingPolicy(mode=RouteMode.CLOUD_ONLY))
    local_only = REQ.replace(policy=RoutingPolicy(mode=RouteMode.LOCAL_ONLY))
    first, second = [await rig.engine.submit(cloud_only) for _ in range(2)]
    third = await rig.engine.submit(local_only)
    runner = asyncio.ensure_future(rig.engine.run_until_idle())

    for _ in range(2000):  # the local job finishes while the second cloud job waits
        local_job = await rig.engine.job(third.id)
        if local_job is not None and local_job.state is JobState.SUCCEEDED:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the local job never ran beside the waiting cloud job")
    await until(lambda: rig.clock.sleepers == 1, "the second cloud job waits")
    waiting = await rig.engine.job(second.id)
    assert waiting is not None and waiting.state is JobState.RUNNING
    assert [w.job_id for w in rig.waits()] == [second.id] and rig.requests() == 1

    rig.clock.advance(NEXT_WINDOW)
    await asyncio.wait_for(runner, 30)
    done = await rig.finished([first, second, third])
    assert [(j.state, j.provider) for j in done] == [
        (JobState.SUCCEEDED, "openai"), (JobState.SUCCEEDED, "openai"),
        (JobState.SUCCEEDED, "local")]


# -- spending caps ---------------------------------------------------------------------


async def test_three_parallel_four_image_jobs_never_pass_a_cap_of_two_images(
        make_rig: RigMaker) -> None:
    # dall-e-3 makes one image per call: each job is four calls, each reserved first
    rig = make_rig(model="dall-e-3", budget=Budget(daily_usd=2 * DALL_E_3_IMAGE_USD))
    jobs = [await rig.engine.submit(REQ.replace(n=4)) for _ in range(3)]
    await rig.engine.run_until_idle()
    done = await rig.finished(jobs)

    assert rig.requests() == 2  # two images billed, the cap; without reservations, 12
    assert sum(j.cost_usd for j in done) == pytest.approx(2 * DALL_E_3_IMAGE_USD)
    assert sum(len(j.image_ids) for j in done) == 2  # what was paid for is kept
    refused = [a.message for j in done for a in j.attempts if "over budget" in a.message]
    assert refused and all("$0.08 daily cap" in m for m in refused)
    failed = [j for j in done if j.state is JobState.FAILED]
    assert failed and all("$0.08 daily cap" in str(j.error_message) for j in failed)


async def test_a_call_dearer_than_what_is_left_of_the_cap_is_never_sent(
        make_rig: RigMaker) -> None:
    # gpt-image-2 makes all four images in one call; at "auto" quality each is held at
    # the dearest quality's price ($0.211), four of them far more than the cap
    rig = make_rig(budget=Budget(daily_usd=0.10))
    jobs = [await rig.engine.submit(REQ.replace(n=4)) for _ in range(3)]
    await rig.engine.run_until_idle()
    done = await rig.finished(jobs)
    assert rig.requests() == 0
    assert [j.state for j in done] == [JobState.FAILED] * 3
    assert ("over budget: a call for 4 images on openai (up to $0.84) would pass the $0.10 "
            "daily cap ($0.00 spent today)") in str(done[0].error_message)


async def test_over_the_cap_the_work_goes_to_the_local_provider(make_rig: RigMaker) -> None:
    rig = make_rig(model="dall-e-3", budget=Budget(daily_usd=DALL_E_3_IMAGE_USD), local=[])
    assert rig.local is not None
    rig.engine.slot("local").priority = 10  # the cloud is tried first
    jobs = [await rig.engine.submit(REQ.replace(n=2)) for _ in range(2)]
    await rig.engine.run_until_idle()
    done = await rig.finished(jobs)
    assert rig.requests() == 1  # the one image the cap allows
    assert [j.state for j in done] == [JobState.SUCCEEDED] * 2
    assert sum(len(j.image_ids) for j in done) == 4  # the other three made locally
    assert sum(j.cost_usd for j in done) == pytest.approx(DALL_E_3_IMAGE_USD)
    for job in done:
        [openai] = [a for a in job.attempts if a.provider == "openai"]
        assert openai.message.startswith("over budget") and "$0.04 daily cap" in openai.message


async def test_a_failed_call_releases_its_reservation(make_rig: RigMaker) -> None:
    rig = make_rig(model="dall-e-3", budget=Budget(daily_usd=DALL_E_3_IMAGE_USD))
    rig.server.script([Reply(Fault.SERVER_ERROR, status=503)] * 3)  # all three attempts
    failed = await rig.engine.submit(REQ)
    await rig.engine.run_until_idle()
    served = await rig.engine.submit(REQ)
    await rig.engine.run_until_idle()
    first, second = await rig.finished([failed, served])
    assert first.state is JobState.FAILED and first.error == "Transient"
    assert second.state is JobState.SUCCEEDED and rig.requests() == 4


# -- routing policy ----------------------------------------------------------------------


async def test_cloud_only_never_asks_the_local_provider_anything(make_rig: RigMaker) -> None:
    rig = make_rig(local=[])
    policy = RoutingPolicy(mode=RouteMode.CLOUD_ONLY)
    job = await rig.engine.submit(REQ.replace(policy=policy))
    await rig.engine.run_until_idle()
    [done] = await rig.finished([job])
    assert done.state is JobState.SUCCEEDED and done.provider == "openai"
    assert done.request.policy == policy  # stored with the job, read back from SQLite
    assert rig.local is not None
    assert rig.local.calls == [] and rig.local.health_calls == 0  # its worker never starts


async def test_without_cloud_fallback_a_failed_local_job_never_reaches_openai(
        make_rig: RigMaker) -> None:
    rig = make_rig(local=[OutOfMemory("CUDA out of memory")])
    policy = RoutingPolicy(mode=RouteMode.AUTO, allow_cloud_fallback=False)
    job = await rig.engine.submit(REQ.replace(policy=policy))
    await rig.engine.run_until_idle()
    [done] = await rig.finished([job])
    assert done.state is JobState.FAILED and done.error == "OutOfMemory"
    assert done.request.policy == policy
    assert rig.server.request_count == 0
    assert "openai: skipped — disabled by policy: cloud fallback turned off" in str(
        done.error_message)

