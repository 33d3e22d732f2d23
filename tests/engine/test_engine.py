"""The engine as both faces drive it: real SQLite, real image files, scripted providers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from desktop_app.domain.errors import InvalidRequest, OutOfMemory
from desktop_app.domain.job import JobState, Outcome
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.budget import Budget
from desktop_app.engine.engine import Engine
from desktop_app.engine.events import Event, JobFinished, JobRouted
from desktop_app.providers.base import ProviderKind
from desktop_app.store.a1111 import parse_a1111_parameters
from desktop_app.store.database import integrity_ok, open_database
from desktop_app.store.jobs import JobQueue
from tests.fakes.scripted_engine import scripted_engine
from tests.fakes.scripted_provider import ScriptedProvider
from tests.waiting import wait_until

REQ = GenerationRequest(prompt="a lighthouse, at dusk: moody", width=128, height=128, seed=7,
                        steps=12)
EngineMaker = Callable[..., Engine]


@pytest.fixture
async def make_engine(tmp_path: Path) -> AsyncIterator[EngineMaker]:
    engines: list[Engine] = []

    def make(*providers: ScriptedProvider, **kw: Any) -> Engine:
        engine = scripted_engine(tmp_path, *providers, **kw)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.close()


async def test_a_submitted_job_succeeds_and_its_image_lands_in_the_gallery(
        make_engine: EngineMaker, tmp_path: Path) -> None:
    engine = make_engine(ScriptedProvider("local"))
    job = await engine.submit(REQ)
    await engine.run_until_idle()
    done = await engine.job(job.id)
    assert done is not None and done.state is JobState.SUCCEEDED and done.provider == "local"
    [record] = await engine.images_of(done)
    assert record.path.is_file() and record.path.is_relative_to(tmp_path / "gallery")
    params = parse_a1111_parameters(Image.open(record.path).text["parameters"])  # type: ignore[attr-defined]
    assert params["Prompt"] == REQ.prompt
    assert params["Seed"] == "7" and params["Steps"] == "12" and params["Size"] == "128x128"
    assert [r.id for r in await engine.search_images("lighthouse")] == [record.id]
    assert not list((tmp_path / "gallery").rglob("*.tmp*"))


async def test_failover_is_recorded_on_the_job_and_announced(make_engine: EngineMaker) -> None:
    engine = make_engine(ScriptedProvider("local", script=[OutOfMemory("CUDA out of memory")]),
                         ScriptedProvider("openai", ProviderKind.CLOUD, cost_per_image=0.05))
    seen: list[Event] = []
    engine.hub.subscribe(seen.append)
    job = await engine.submit(REQ)
    await engine.run_until_idle()
    done = await engine.job(job.id)
    assert done is not None and done.provider == "openai"
    assert done.fallback_reason == "local: OutOfMemory — CUDA out of memory"
    assert done.cost_usd == pytest.approx(0.05)
    assert any(isinstance(e, JobRouted) and e.provider == "openai" for e in seen)
    statuses = {s.name: s for s in await engine.provider_statuses()}
    assert statuses["openai"].today.cost_usd == pytest.approx(0.05)
    assert statuses["local"].today.failures == {"OutOfMemory": 1}


async def test_a_job_no_provider_can_serve_fails_with_every_reason(
        make_engine: EngineMaker) -> None:
    engine = make_engine(ScriptedProvider("local", script=[OutOfMemory("CUDA out of memory")]))
    job = await engine.submit(REQ)
    await engine.run_until_idle()
    done = await engine.job(job.id)
    assert done is not None and done.state is JobState.FAILED and done.error == "OutOfMemory"
    assert done.error_message is not None and "CUDA out of memory" in done.error_message


async def test_blocked_terms_reject_before_anything_is_queued(make_engine: EngineMaker) -> None:
    engine = make_engine(ScriptedProvider("local"), blocked_terms=["gore"])
    with pytest.raises(InvalidRequest, match='blocked term "gore"'):
        await engine.submit(REQ.replace(prompt="a scene with gore"))
    assert await engine.jobs() == []


async def test_cancelling_a_queued_job_means_it_never_runs(make_engine: EngineMaker) -> None:
    local = ScriptedProvider("local")
    engine = make_engine(local)
    first, second = await engine.submit(REQ), await engine.submit(REQ)
    await engine.cancel(second.id)
    await engine.run_until_idle()
    assert len(local.calls) == 1
    cancelled = await engine.job(second.id)
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    retried = await engine.retry(second.id)
    assert retried.state is JobState.QUEUED
    await engine.run_until_idle()
    assert len(local.calls) == 2 and first.id != second.id


@pytest.mark.parametrize("behaviour", ["hang", "hang_deaf"])
async def test_cancelling_a_running_job_stops_it(make_engine: EngineMaker, behaviour: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop_app.engine import runner

    monkeypatch.setattr(runner, "CANCEL_GRACE_S", 0.2)  # a provider deaf to the token
    local = ScriptedProvider("local", script=[behaviour])
    engine = make_engine(local)
    job = await engine.submit(REQ)
    await engine.start()
    await wait_until(lambda: bool(engine.running_job_ids and local.calls),
                     what="the provider at work on the job")
    await engine.cancel(job.id)
    done = await asyncio.wait_for(engine.wait_for(job.id), 10)
    assert done.state is JobState.CANCELLED and done.image_ids == []
    following = await engine.submit(REQ)  # the runner carries on with the next job
    await asyncio.wait_for(engine.wait_for(following.id), 10)
    assert len(local.calls) == 2


async def test_a_paused_queue_runs_nothing_until_resumed(make_engine: EngineMaker) -> None:
    local = ScriptedProvider("local")
    engine = make_engine(local)
    await engine.pause()
    await engine.submit(REQ)
    await engine.run_until_idle()
    assert local.calls == [] and await engine.paused()
    await engine.resume()
    await engine.run_until_idle()
    assert len(local.calls) == 1


async def test_jobs_left_running_by_a_crash_are_resumed_on_start(
        make_engine: EngineMaker, tmp_path: Path) -> None:
    conn = open_database(tmp_path / "imagedesk.sqlite3")
    queue = JobQueue(conn)
    job = queue.add(REQ)
    queue.start(job.id)  # the app "dies" here
    conn.close()
    engine = make_engine(ScriptedProvider("local"))
    await engine.run_until_idle()
    done = await engine.job(job.id)
    assert done is not None and done.state is JobState.SUCCEEDED
    assert [a.outcome for a in done.attempts] == [Outcome.INTERRUPTED, Outcome.SUCCEEDED]


async def test_the_cloud_is_skipped_before_a_call_would_pass_the_daily_cap(
        make_engine: EngineMaker) -> None:
    cloud = ScriptedProvider("openai", ProviderKind.CLOUD, cost_per_image=0.6)
    engine = make_engine(cloud, budget=Budget(daily_usd=1.0))
    for _ in range(3):
        await engine.submit(REQ)
    await engine.run_until_idle()
    states = [j.state for j in await engine.jobs()]
    # a second $0.60 image would make $1.20 of a $1.00 cap: it is never made
    assert states.count(JobState.SUCCEEDED) == 1 and len(cloud.calls) == 1
    failed = [j for j in await engine.jobs() if j.state is JobState.FAILED]
    assert len(failed) == 2
    assert ("over budget: a call for 1 image on openai (up to $0.60) would pass the $1.00 "
            "daily cap ($0.60 spent today)") in str(failed[0].error_message)


async def test_metrics_survive_a_restart(make_engine: EngineMaker) -> None:
    engine = make_engine(ScriptedProvider("local"))
    await engine.submit(REQ)
    await engine.run_until_idle()
    await engine.close()
    again = make_engine(ScriptedProvider("local"))
    [local] = [s for s in await again.provider_statuses() if s.name == "local"]
    assert local.today.successes == 1 and local.today.images == 1
    assert local.metrics.successes == 0  # this session has done nothing yet


async def test_deleting_an_image_removes_file_and_index_together(
        make_engine: EngineMaker, tmp_path: Path) -> None:
    engine = make_engine(ScriptedProvider("local"))
    job = await engine.submit(REQ)
    await engine.run_until_idle()
    done = await engine.job(job.id)
    assert done is not None
    [record] = await engine.images_of(done)
    thumb = await engine.thumbnail(record.id)
    assert thumb is not None and thumb.is_file()
    await engine.delete_image(record.id)
    assert not record.path.exists() and await engine.image(record.id) is None
    conn = open_database(tmp_path / "imagedesk.sqlite3")
    assert integrity_ok(conn)


async def test_finished_events_carry_the_image_ids(make_engine: EngineMaker) -> None:
    engine = make_engine(ScriptedProvider("local"))
    finished: list[JobFinished] = []
    engine.hub.subscribe(lambda e: finished.append(e) if isinstance(e, JobFinished) else None)
    await engine.submit(REQ.replace(n=2))
    await engine.run_until_idle()
    assert len(finished) == 1 and len(finished[0].image_ids) == 2


@pytest.mark.parametrize(("mode", "kept"), [("block", 1), ("blur", 2)])
async def test_the_nsfw_check_blocks_or_blurs_what_scores_over_the_threshold(
        make_engine: EngineMaker, mode: str, kept: int) -> None:
    from desktop_app.engine.nsfw import NsfwMode, NsfwSettings

    scores = iter([0.95, 0.1])  # the first image is flagged, the second is not
    engine = make_engine(ScriptedProvider("local"),
                         nsfw=NsfwSettings(NsfwMode(mode), threshold=0.7),
                         nsfw_scorer=lambda data: next(scores))
    job = await engine.submit(REQ.replace(n=2))
    await engine.run_until_idle()
    done = await engine.job(job.id)
    assert done is not None and done.state is JobState.SUCCEEDED
    records = await engine.images_of(done)
    assert len(records) == kept
    if mode == "blur":
        flagged = [r for r in records if r.provenance["details"].get("nsfw_action") == "blurred"]
        assert len(flagged) == 1


async def test_a_job_whose_every_image_is_blocked_fails_saying_why(
        make_engine: EngineMaker) -> None:
    from desktop_app.engine.nsfw import NsfwMode, NsfwSettings

    engine = make_engine(ScriptedProvider("local"), nsfw=NsfwSettings(NsfwMode.BLOCK, 0.5),
                         nsfw_scorer=lambda data: 0.9)
    job = await engine.submit(REQ)
    await engine.run_until_idle()
    done = await engine.job(job.id)
    assert done is not None and done.state is JobState.FAILED
    assert done.error == "ContentRejected" and "NSFW check scored it 0.90" in str(
        done.error_message)
    assert await engine.search_images("") == []


async def test_only_the_process_holding_the_profile_lock_runs_the_queue(
        make_engine: EngineMaker, tmp_path: Path) -> None:
    import subprocess
    import sys

    from desktop_app.store.profile_lock import ProfileBusy, ProfileLock

    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; "
         "from desktop_app.store.profile_lock import ProfileLock; "
         f"lock = ProfileLock(Path({str(tmp_path / 'runner.lock')!r})); "
         "assert lock.try_acquire(); print('held', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        local = ScriptedProvider("local")
        engine = make_engine(local, lock=ProfileLock(tmp_path / "runner.lock"))
        job = await engine.submit(REQ)
        with pytest.raises(ProfileBusy, match=f"pid {holder.pid}"):
            await engine.run_until_idle()
        await engine.start()  # a window beside it waits for the other process
        await asyncio.sleep(0.3)
        assert local.calls == []
        holder.kill()
        holder.wait()
        done = await asyncio.wait_for(engine.wait_for(job.id), 10)
        assert done.state is JobState.SUCCEEDED  # took over once the other one exited
    finally:
        holder.kill()
        holder.wait()


async def test_an_image_job_is_refused_at_submit_until_its_source_is_stored(
        make_engine: EngineMaker, tmp_path: Path) -> None:
    from desktop_app.domain.request import ImageRef, ImageToImage
    from desktop_app.store.input_images import InputImages

    stray = ImageRef("ef" * 32, 64, 64)
    engine = make_engine(ScriptedProvider("local"), inputs=InputImages(tmp_path / "inputs"))
    with pytest.raises(InvalidRequest, match="is not stored"):
        await engine.submit(REQ.replace(work=ImageToImage(stray)))
    assert await engine.jobs() == []


async def test_a_provider_that_cannot_do_a_kind_is_skipped_saying_so_and_lineage_is_kept(
        make_engine: EngineMaker, tmp_path: Path) -> None:
    from desktop_app.domain.request import ImageToImage, RequestKind
    from desktop_app.providers.base import Capabilities
    from desktop_app.store.input_images import InputImages

    text_only = ScriptedProvider("cloud", ProviderKind.CLOUD)
    both = ScriptedProvider("local", caps=Capabilities(
        kinds=frozenset({RequestKind.TEXT_TO_IMAGE, RequestKind.IMAGE_TO_IMAGE})))
    engine = make_engine(text_only, both, inputs=InputImages(tmp_path / "inputs"))
    first = await engine.submit(REQ)
    await engine.run_until_idle()
    finished = await engine.job(first.id)
    assert finished is not None
    [made] = await engine.images_of(finished)
    source = await engine.use_as_source(made.id)
    assert source.gallery_id == made.id and (source.width, source.height) == (128, 128)
    job = await engine.submit(REQ.replace(work=ImageToImage(source, 0.4)))
    await engine.run_until_idle()
    done = await engine.job(job.id)
    assert done is not None and done.state is JobState.SUCCEEDED and done.provider == "local"
    assert any(a.provider == "cloud" and "cannot do image to image jobs" in a.message
               for a in done.attempts)
    assert both.calls[-1].work == ImageToImage(source, 0.4)
    [result] = await engine.images_of(done)
    assert result.kind == "img2img" and result.source_image_id == made.id
