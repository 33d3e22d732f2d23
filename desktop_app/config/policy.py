"""The routing settings as a new job's default ``RoutingPolicy``.

Both faces start a job's policy here (the prompt editor's controls, the CLI's
flags) and change only what the user changed for that job, so the rule that
turns settings into a policy lives once.
"""

from __future__ import annotations

from desktop_app.config.model import Settings
from desktop_app.domain.request import RoutingPolicy

# An unreadable value of one of these must not fall back to "send it to the cloud".
_FALLBACK_GUARDS = frozenset({"routing.allow_cloud_fallback", "routing.mode"})


def default_policy(settings: Settings) -> RoutingPolicy:
    """``settings.routing`` as the policy a new job runs under unless the user
    says otherwise. Fails closed: when the cloud-fallback or mode setting could
    not be read, the default does not fall back to the cloud."""
    routing = settings.routing
    unreadable = any(p.setting in _FALLBACK_GUARDS for p in settings.problems())
    return RoutingPolicy(
        mode=routing.mode,
        allow_cloud_fallback=routing.allow_cloud_fallback and not unreadable,
        allow_adaptation=routing.allow_adaptation,
        allow_failover_after_refusal=routing.allow_failover_after_refusal,
        strategy=routing.strategy, target_s=routing.target_s,
        max_cost_usd=routing.max_cost_per_job_usd,
    )
