"""The profile's routing defaults as the policy a new job starts with, in both faces
(the prompt editor's initial choices, the CLI's defaults before its flags)."""

from __future__ import annotations

from desktop_app.config.model import Settings
from desktop_app.domain.request import RoutingPolicy


def default_policy(settings: Settings) -> RoutingPolicy:
    """The ``routing`` section's defaults for a new job; a job may narrow them."""
    routing = settings.routing
    return RoutingPolicy(
        mode=routing.mode,
        allow_cloud_fallback=routing.allow_cloud_fallback,
        allow_adaptation=routing.allow_adaptation,
        allow_failover_after_refusal=routing.allow_failover_after_refusal,
    )
