""""Local only" means this machine only: a job in that mode never reaches the user's
remote GPU workers (other machines, over the network) any more than the cloud —
the same rule as a private job. The real engine, with a remote slot that must
receive nothing."""

from __future__ import annotations

from pathlib import Path

from desktop_app.domain.errors import OutOfMemory
from desktop_app.domain.job import JobState, Outcome
from desktop_app.domain.request import GenerationRequest, RouteMode, RoutingPolicy
from desktop_app.providers.base import Capabilities, ProviderKind
from tests.fakes.scripted_engine import engine_in, slot_for
from tests.fakes.scripted_provider import ScriptedProvider

LOCAL_ONLY = RoutingPolicy(mode=RouteMode.LOCAL_ONLY)
REQ = GenerationRequest("a lighthouse", width=64, height=64, seed=3, n=1, policy=LOCAL_ONLY)
REMOTE_SKIP = "disabled by policy: local only"


async def test_a_local_only_job_whose_local_attempt_fails_never_goes_to_a_remote_worker(
        tmp_path: Path) -> None:
    local = ScriptedProvider("local", script=[OutOfMemory("CUDA out of memory")])
    remote = ScriptedProvider("remote", ProviderKind.REMOTE)
    cloud = ScriptedProvider("openai", ProviderKind.CLOUD)
    engine = engine_in(tmp_path, [slot_for(local, 0), slot_for(remote, 10),
                                  slot_for(cloud, 20)])
    try:
        job = await engine.submit(REQ)
        await engine.run_until_idle()
        done = await engine.job(job.id)
        assert done is not None and done.state is JobState.FAILED
        assert remote.calls == [] and cloud.calls == []
        skipped = {a.provider: a.message for a in done.attempts
                   if a.outcome is Outcome.SKIPPED}
        assert skipped.get("remote") == REMOTE_SKIP, done.attempts
    finally:
        await engine.close()


async def test_remote_workers_placed_before_this_machine_are_passed_over_in_local_only(
        tmp_path: Path) -> None:
    local, remote = ScriptedProvider("local"), ScriptedProvider("remote", ProviderKind.REMOTE)
    engine = engine_in(tmp_path, [slot_for(remote, -10), slot_for(local, 0)])
    try:
        plan = await engine.route_preview(REQ)
        assert [c.slot.name for c in plan.candidates] == ["local"]
        assert {s.provider: s.reason for s in plan.skipped} == {"remote": REMOTE_SKIP}
        job = await engine.submit(REQ)
        await engine.run_until_idle()
        done = await engine.job(job.id)
        assert done is not None and done.state is JobState.SUCCEEDED and done.provider == "local"
        assert remote.calls == []
        [image] = await engine.images_of(done)
        assert image.provenance["left_machine"] is False
        # in auto mode the same remote worker is used: only the mode kept it out
        auto = await engine.route_preview(REQ.replace(policy=RoutingPolicy()))
        assert [c.slot.name for c in auto.candidates] == ["remote", "local"]
    finally:
        await engine.close()


async def test_the_local_only_prompt_limit_ignores_remote_workers(tmp_path: Path) -> None:
    remote = ScriptedProvider("remote", ProviderKind.REMOTE,
                              caps=Capabilities(max_prompt_chars=10))
    engine = engine_in(tmp_path, [slot_for(ScriptedProvider("local"), 0),
                                  slot_for(remote, 10)])
    try:
        limits = engine.prompt_limits()
        assert limits[RouteMode.LOCAL_ONLY] == (32_000, "local")
        assert limits[RouteMode.AUTO] == (10, "remote")
    finally:
        await engine.close()
