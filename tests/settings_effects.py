"""Helpers for ``tests/test_every_setting.py``: open the real app (``bootstrap.open_app``)
with some ``IMAGEDESK_*`` variables, run a job through the real engine, and keep the
list of settings whose effect a test has shown (``proves``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from desktop_app.bootstrap import AppContext, open_app
from desktop_app.domain.job import Job
from desktop_app.domain.request import GenerationRequest, RouteMode, RoutingPolicy
from desktop_app.engine.router import RoutePlan
from desktop_app.providers.base import ImageProvider
from desktop_app.resilience.clock import Clock

OPENAI_KEY = "sk-test-every-setting-0123456789"

# setting (dotted) -> the test that shows its effect
PROVED: dict[str, str] = {}

F = TypeVar("F", bound=Callable[..., Any])


def proves(*settings: str) -> Callable[[F], F]:
    """Mark a test as the one showing what these settings change."""
    def mark(test: F) -> F:
        for setting in settings:
            PROVED.setdefault(setting, test.__name__)
        return test
    return mark


def variable(dotted: str) -> str:
    return "IMAGEDESK_" + "__".join(part.upper() for part in dotted.split("."))


@contextlib.asynccontextmanager
async def opened(home: Path, settings: Mapping[str, str] | None = None, *,
                 file: Mapping[str, Any] | None = None, base_url: str | None = None,
                 clock: Clock | None = None,
                 env: Mapping[str, str] | None = None) -> AsyncIterator[AppContext]:
    """The app as a face opens it, with ``settings`` ({"openai.model": "dall-e-3"})
    given as their environment variables and ``file`` as settings.json; OpenAI
    has a key and points at ``base_url`` (a closed port when None: no network)."""
    environ = {"IMAGEDESK_HOME": str(home), "OPENAI_API_KEY": OPENAI_KEY,
               "IMAGEDESK_OPENAI__BASE_URL": base_url or "http://127.0.0.1:9/v1", **(env or {})}
    environ.update({variable(k): v for k, v in (settings or {}).items()})
    if file is not None:
        path = home / "config" / "settings.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(file))
    ctx = open_app(environ, clock=clock)
    assert ctx.settings_problems == [], ctx.settings_problems  # every value was taken
    try:
        yield ctx
    finally:
        await ctx.engine.close()


def swap(ctx: AppContext, name: str, provider: ImageProvider) -> None:
    """Serve slot ``name`` (its breaker, limits and place still from settings) with
    ``provider``: a scripted stand-in where the real one needs a GPU or a server."""
    slot = ctx.engine.slot(name)
    assert slot.provider.name == provider.name
    slot.provider = provider


def request(prompt: str = "a lighthouse", *, mode: RouteMode = RouteMode.AUTO,
            **fields: Any) -> GenerationRequest:
    fields.setdefault("width", 64)
    fields.setdefault("height", 64)
    policy = fields.pop("policy", None) or RoutingPolicy(mode=mode)
    return GenerationRequest(prompt=prompt, policy=policy, **fields)


async def run(ctx: AppContext, req: GenerationRequest) -> Job:
    """Queue ``req`` and run it now, as ``imagedesk generate`` does; the finished job."""
    job = await ctx.engine.submit(req)
    await ctx.engine.run_job_now(job.id)
    return await ctx.engine.wait_for(job.id)


async def route(ctx: AppContext, req: GenerationRequest | None = None) -> RoutePlan:
    return await ctx.engine.route_preview(req or request())


def order(plan: RoutePlan) -> list[str]:
    return [c.slot.name for c in plan.candidates]


def skips(plan: RoutePlan) -> dict[str, str]:
    return {s.provider: s.reason for s in plan.skipped}
