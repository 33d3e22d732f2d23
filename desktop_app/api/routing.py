"""Which providers an API request may use, from the model name a client gives.

``auto`` (or nothing, or an OpenAI model name such as ``gpt-image-1``, which a
client sends by habit) follows the user's routing settings; ``local`` and
``cloud`` restrict the route; a provider's name (``openai``) pins the job to it."""

from __future__ import annotations

import dataclasses

from desktop_app.api.errors import ApiError
from desktop_app.domain.request import RouteMode, RoutingPolicy
from desktop_app.providers import registry  # descriptors only: no provider SDK loads

ROUTES = ("auto", "local", "cloud")
_OPENAI_MODEL_PREFIXES = ("gpt-image", "dall-e")


def model_names() -> list[str]:
    """What a client may give as ``model``."""
    return [*ROUTES, *(n for n in registry.names() if n not in ROUTES)]


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
    raise ApiError(400, f"Unknown model {shown!r}: use {', '.join(model_names())}.",
                   param="model", code="model_not_found")
