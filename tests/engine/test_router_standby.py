"""Remote workers placed "when the local GPU is busy or unavailable"."""

from __future__ import annotations

from collections.abc import Callable

from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.router import plan_route
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import Health, HealthState, ProviderKind
from tests.fakes.scripted_provider import ScriptedProvider

MakeSlot = Callable[..., ProviderSlot]


async def plan(make_slot: MakeSlot, *, local_in_flight: int = 0,
               local_health: Health | None = None) -> tuple[list[str], dict[str, str]]:
    local = make_slot(ScriptedProvider("local", health=local_health), priority=0)
    local.in_flight = local_in_flight
    remote = make_slot(ScriptedProvider("remote", ProviderKind.REMOTE), priority=1,
                       standby_for=ProviderKind.LOCAL)
    cloud = make_slot(ScriptedProvider("openai", ProviderKind.CLOUD), priority=10)
    route = await plan_route(GenerationRequest(prompt="x", width=64, height=64),
                             [local, remote, cloud])
    return [c.slot.name for c in route.candidates], {s.provider: s.reason for s in route.skipped}


async def test_standby_remote_waits_while_the_local_gpu_is_free(make_slot: MakeSlot) -> None:
    order, skipped = await plan(make_slot)
    assert order == ["local", "openai"]
    assert skipped["remote"] == "standing by while local is free"


async def test_standby_remote_goes_first_while_the_local_gpu_is_busy(make_slot: MakeSlot) -> None:
    order, _ = await plan(make_slot, local_in_flight=1)
    assert order == ["remote", "local", "openai"]


async def test_standby_remote_serves_when_the_local_gpu_is_unavailable(
        make_slot: MakeSlot) -> None:
    order, skipped = await plan(make_slot,
                                local_health=Health(HealthState.UNAVAILABLE, "no CUDA"))
    assert order == ["remote", "openai"] and "local" in skipped
