"""What the API's handlers find on the application: the engine, the API's jobs and
the routing policy new jobs start from (the routing settings, read when asked)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from desktop_app.api.jobs import ApiJobs
from desktop_app.domain.request import RoutingPolicy
from desktop_app.engine.engine import Engine

ENGINE_KEY = web.AppKey("engine", Engine)
JOBS_KEY = web.AppKey("jobs", ApiJobs)
POLICY_KEY: web.AppKey[Callable[[], RoutingPolicy]] = web.AppKey("policy")
