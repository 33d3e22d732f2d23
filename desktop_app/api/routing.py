"""Which providers an API request may use, from the model name a client gives.

``auto`` (or nothing, or an OpenAI model name such as ``gpt-image-1``, which a
client sends by habit) follows the user's routing settings; ``local`` and
``cloud`` restrict the route; a provider's name (``openai``) pins the job to it."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from desktop_app.api.context import MODELS_KEY
from desktop_app.api.errors import ApiError
from desktop_app.domain.request import RouteMode, RoutingPolicy
from desktop_app.providers import registry  # descriptors only: no provider SDK loads

ROUTES = ("auto", "local", "cloud")
_OPENAI_MODEL_PREFIXES = ("gpt-image", "dall-e")


def model_names() -> list[str]:
    """What a client may give as ``model``."""
    return [*ROUTES, *(n for n in registry.names() if n not in ROUTES)]


async def model_choices(app: web.Application) -> list[str]:
    """Routes, providers, and the library's checkpoints by name."""
    return [*model_names(), *sorted(await app[MODELS_KEY]())]


async def resolve_model(app: web.Application, model: object,
                        defaults: RoutingPolicy) -> tuple[RoutingPolicy, str | None]:
    """The policy for ``model`` and, for a checkpoint of the library, its path (the job
    then runs on this machine's GPU, on that model)."""
    if isinstance(model, str) and model.strip() and model.strip().lower() not in (
            *ROUTES, *registry.names()) and not model.strip().lower().startswith(
            _OPENAI_MODEL_PREFIXES):
        library = await app[MODELS_KEY]()
        if model.strip() in library:
            return (dataclasses.replace(defaults, mode=RouteMode.AUTO, provider="local"),
                    library[model.strip()])
    return policy_for(model, defaults), None


def policy_for(model: object, defaults: RoutingPolicy) -> RoutingPolicy:
    if model is None or model == "":
        return defaults
    if not isinstance(model, str):
        raise ApiError(400, "model must be a string.", param="model", code="invalid_value")
    name = model.strip().lower()
    if name == "auto" or name.startswith(_OPENAI_MODEL_PREFIXES):
        return defaults
    if name in ("local", "cloud"):
        return dataclasses.replace(defaults, mode=RouteMode(name), provider=None)
    if name in registry.names():
        return dataclasses.replace(defaults, mode=RouteMode.AUTO, provider=name)
    shown = model if len(model) <= 40 else model[:40] + "…"
    raise ApiError(400, f"Unknown model {shown!r}: use {', '.join(model_names())} or a "
                        "checkpoint GET /v1/models lists.",
                   param="model", code="model_not_found")
