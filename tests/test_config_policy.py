"""``default_policy``: the routing settings as a new job's policy, the one rule
both faces start from."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop_app.config import default_policy, load_settings
from desktop_app.domain.request import RouteMode, RoutingPolicy


def policy(tmp_path: Path, **env: str) -> RoutingPolicy:
    return default_policy(load_settings(tmp_path / "settings.json", env).settings)


def test_defaults_are_auto_with_cloud_fallback_and_no_refusal_failover(tmp_path: Path) -> None:
    assert policy(tmp_path) == RoutingPolicy()


def test_every_routing_setting_reaches_the_policy(tmp_path: Path) -> None:
    got = policy(tmp_path, IMAGEDESK_ROUTING__MODE="cloud",
                 IMAGEDESK_ROUTING__ALLOW_CLOUD_FALLBACK="false",
                 IMAGEDESK_ROUTING__ALLOW_ADAPTATION="false",
                 IMAGEDESK_ROUTING__ALLOW_FAILOVER_AFTER_REFUSAL="true")
    assert got == RoutingPolicy(mode=RouteMode.CLOUD_ONLY, allow_cloud_fallback=False,
                                allow_adaptation=False, allow_failover_after_refusal=True)


@pytest.mark.parametrize("variable", ["IMAGEDESK_ROUTING__ALLOW_CLOUD_FALLBACK",
                                      "IMAGEDESK_ROUTING__MODE"])
def test_an_unreadable_fallback_or_mode_does_not_fall_back_to_the_cloud(
        tmp_path: Path, variable: str) -> None:
    got = policy(tmp_path, **{variable: "maybe"})
    assert got.allow_cloud_fallback is False
