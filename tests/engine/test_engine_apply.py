"""``Engine.apply``: new settings reach a running engine through one call, and the
queries a face needs (route preview, prompt limits) answer from the engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest, RouteMode, RoutingPolicy
from desktop_app.engine.budget import Budget
from desktop_app.engine.engine import Engine, EngineConfig
from desktop_app.engine.nsfw import NsfwSettings
from desktop_app.engine.runner import RunnerSettings
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import Capabilities, ProviderKind
from tests.fakes.scripted_engine import engine_in, slot_for
from tests.fakes.scripted_provider import ScriptedProvider


def _slot(provider: ScriptedProvider, priority: int, *, enabled: bool = True) -> ProviderSlot:
    return slot_for(provider, priority, concurrency=1, enabled=enabled)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    made = engine_in(tmp_path, [_slot(ScriptedProvider("local"), 0)])
    yield made
    await made.close()


def _config(tmp_path: Path, slots: list[ProviderSlot], **kw: object) -> EngineConfig:
    values: dict[str, object] = dict(
        slots=slots, runner=RunnerSettings(), budget=Budget(), blocked_terms=(),
        nsfw=NsfwSettings(), gallery_folder=tmp_path / "gallery")
    values.update(kw)
    return EngineConfig(**values)  # type: ignore[arg-type]


async def test_applied_slots_route_and_replaced_providers_are_closed(
        engine: Engine, tmp_path: Path) -> None:
    old = engine.slot("local").provider
    cloud = ScriptedProvider("cloud", ProviderKind.CLOUD)
    await engine.apply(_config(tmp_path, [_slot(ScriptedProvider("local"), 0),
                                          _slot(cloud, 10)]))
    assert isinstance(old, ScriptedProvider) and old.closed
    plan = await engine.route_preview(GenerationRequest("a lighthouse"))
    assert [c.slot.name for c in plan.candidates] == ["local", "cloud"]
    plan = await engine.route_preview(GenerationRequest(
        "a lighthouse", policy=RoutingPolicy(mode=RouteMode.LOCAL_ONLY)))
    assert [c.slot.name for c in plan.candidates] == ["local"]
    assert {s.provider: s.reason for s in plan.skipped}["cloud"] == "disabled by policy: local only"


async def test_applied_blocked_terms_and_gallery_folder_take_effect_at_once(
        engine: Engine, tmp_path: Path) -> None:
    await engine.submit(GenerationRequest("a scene with gore"))
    await engine.apply(_config(tmp_path, list(engine.slots), blocked_terms=("gore",),
                               gallery_folder=tmp_path / "elsewhere"))
    with pytest.raises(InvalidRequest, match='blocked term "gore"'):
        await engine.submit(GenerationRequest("more gore"))
    job = await engine.submit(GenerationRequest("a lighthouse", n=1))
    await engine.run_job_now(job.id)
    done = await engine.wait_for(job.id)
    assert done.state is JobState.SUCCEEDED
    [image] = await engine.images_of(done)
    assert image.path.parent.is_relative_to(tmp_path / "elsewhere")


async def test_prompt_limits_follow_the_enabled_providers_each_mode_may_use(
        engine: Engine, tmp_path: Path) -> None:
    short_cloud = ScriptedProvider("cloud", ProviderKind.CLOUD,
                                   caps=Capabilities(max_prompt_chars=1000))
    disabled = _slot(ScriptedProvider("remote", ProviderKind.REMOTE,
                                      caps=Capabilities(max_prompt_chars=10)), 5,
                     enabled=False)
    await engine.apply(_config(tmp_path, [_slot(ScriptedProvider("local"), 0),
                                          _slot(short_cloud, 10), disabled]))
    limits = engine.prompt_limits()
    assert limits[RouteMode.AUTO] == (1000, "cloud")
    assert limits[RouteMode.CLOUD_ONLY] == (1000, "cloud")
    assert limits[RouteMode.LOCAL_ONLY] == (32_000, "local")  # no remote in local only
