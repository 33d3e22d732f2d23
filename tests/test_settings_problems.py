"""One bad value in settings.json falls back alone, is reported by name, is kept
on disk, and — when it guards money or privacy — keeps the cloud off (issue 12.2;
finite ranges: issue 12.6)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from desktop_app.bootstrap import AppContext, apply_settings, open_app
from desktop_app.config import ProblemKind, Settings, load_settings, save_settings
from desktop_app.domain.request import GenerationRequest, RouteMode, RoutingPolicy
from desktop_app.engine.router import plan_route
from tests.fakes.keyring_memory import InMemoryKeyring, installed_keyring


def write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture
def settings_path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "settings.json"


GOOD: dict[str, dict[str, object]] = {"budget": {"daily_usd": 0, "monthly_usd": 12.5},
        "content": {"blocked_terms": ["gore"], "nsfw_check": "block"},
        "openai": {"model": "dall-e-3", "timeout_s": 60},
        "routing": {"allow_cloud_fallback": False}, "ui": {"theme": "dark"}}


@pytest.mark.parametrize("section, name, bad, guards", [
    ("budget", "monthly_usd", "five", True),
    ("budget", "monthly_usd", -3, True),
    ("budget", "monthly_usd", 1e400, True),  # JSON 1e400 reads as infinity
    ("content", "nsfw_check", "sometimes", True),
    ("routing", "allow_cloud_fallback", "perhaps", True),
    ("openai", "timeout_s", float("inf"), False),
    ("ui", "theme", 7, False),
])
def test_one_bad_value_falls_back_alone_and_the_rest_is_used(
    settings_path: Path, section: str, name: str, bad: object, guards: bool
) -> None:
    data = json.loads(json.dumps(GOOD))
    data[section][name] = bad
    settings_path.parent.mkdir(parents=True)
    settings_path.write_text(json.dumps(data).replace("Infinity", "1e400"))
    result = load_settings(settings_path, env={})
    (problem,) = result.problems
    assert problem.setting == f"{section}.{name}" and problem.kind is ProblemKind.INVALID_VALUE
    assert problem.cloud_off is guards
    assert ("cloud is off until this is fixed" in problem.line()) is guards
    s = result.settings
    expected = Settings().updated({k: {f: v for f, v in fields.items()
                                       if (k, f) != (section, name)} for k, fields in GOOD.items()})
    assert s.model_dump() == expected.model_dump()  # every other value of the file is used
    assert (s.cloud_off_reason() is not None) is guards


@pytest.mark.parametrize("dotted, bad, allowed", [
    ("openai.breaker.window_size", 1e400, "number, > 0, <= 86400"),
    ("local.rate_limits", [{"limit": 5, "period_s": 1e400}], "period_s"),
    ("routing.job_deadline_s", 1e12, "number, > 0, <= 604800"),
    ("openai.priority", 10**40, "integer, >= -1000, <= 1000"),
    ("local.idle_shutdown_s", float("nan"), "number, > 0, <= 604800"),
])
def test_every_number_has_a_finite_range_named_in_the_problem(
    settings_path: Path, dotted: str, bad: object, allowed: str
) -> None:
    section, *rest = dotted.split(".")
    data: dict[str, Any] = {section: {}}
    node = data[section]
    for part in rest[:-1]:
        node = node.setdefault(part, {})
    node[rest[-1]] = bad
    settings_path.parent.mkdir(parents=True)
    settings_path.write_text(json.dumps(data).replace("Infinity", "1e400"))
    result = load_settings(settings_path, env={})
    (problem,) = result.problems
    assert problem.setting == dotted and allowed in problem.message
    assert result.settings.model_dump() == Settings().model_dump()


def test_a_partial_group_keeps_its_sections_own_defaults(settings_path: Path) -> None:
    write(settings_path, {"openai": {"breaker": {"min_calls": 5}}})
    breaker = load_settings(settings_path, env={}).settings.openai.breaker
    assert (breaker.window, breaker.window_size, breaker.min_calls) == ("time", 120, 5)


def test_unknown_key_in_the_budget_keeps_the_cloud_off(settings_path: Path) -> None:
    write(settings_path, {"budget": {"daly_usd": 0}})
    result = load_settings(settings_path, env={})
    (problem,) = result.problems
    assert problem.setting == "budget.daly_usd" and problem.cloud_off
    assert "may be a spending or content limit" in problem.message
    assert "budget.daly_usd" in (result.settings.cloud_off_reason() or "")


def test_a_bad_value_is_written_back_on_save_until_the_user_changes_it(
    settings_path: Path
) -> None:
    write(settings_path, {"budget": {"daily_usd": "five"}, "local": {"turbo": True}})
    loaded = load_settings(settings_path, env={}).settings
    save_settings(loaded.updated({"ui": {"theme": "dark"}}), settings_path)  # Settings → OK
    on_disk = json.loads(settings_path.read_text())
    assert on_disk["budget"]["daily_usd"] == "five" and on_disk["local"]["turbo"] is True
    assert on_disk["ui"]["theme"] == "dark"
    again = load_settings(settings_path, env={})
    assert {p.setting for p in again.problems} == {"budget.daily_usd", "local.turbo"}
    assert again.settings.cloud_off_reason() is not None  # still off: nothing was fixed

    fixed = again.settings.updated({"budget": {"daily_usd": 5}})
    assert {p.setting for p in fixed.problems()} == {"local.turbo"}
    assert fixed.cloud_off_reason() is None
    save_settings(fixed, settings_path)
    assert json.loads(settings_path.read_text())["budget"]["daily_usd"] == 5
    assert load_settings(settings_path, env={}).settings.cloud_off_reason() is None


# --- what the engine does with it -------------------------------------------------------


@pytest.fixture
async def held_ctx(tmp_path: Path) -> AsyncIterator[AppContext]:
    write(tmp_path / "config" / "settings.json", {"budget": {"daily_usd": "five"}})
    with installed_keyring(InMemoryKeyring()):
        ctx = open_app({"IMAGEDESK_HOME": str(tmp_path), "OPENAI_API_KEY": "sk-test-" + "k" * 40,
                        "IMAGEDESK_REMOTE__ENABLED": "true",
                        "IMAGEDESK_REMOTE__REDIS_URL": "redis://127.0.0.1:1/0"})
        try:
            yield ctx
        finally:
            await ctx.engine.close()


async def _skips(ctx: AppContext) -> dict[str, str]:
    request = GenerationRequest(prompt="a cat", policy=RoutingPolicy(mode=RouteMode.CLOUD_ONLY))
    plan = await plan_route(request, ctx.engine.slots)
    return {skip.provider: skip.reason for skip in plan.skipped}


async def test_an_unreadable_cap_keeps_every_cloud_provider_off_with_the_reason(
    held_ctx: AppContext
) -> None:
    (problem,) = held_ctx.settings_problems
    assert problem.setting == "budget.daily_usd" and problem.cloud_off
    skips = await _skips(held_ctx)
    for name in ("openai", "remote"):
        assert skips[name].startswith("off until the settings are fixed: budget.daily_usd")
    assert "local" in skips  # skipped by the job's policy, not held
    assert "settings" not in skips["local"]


async def test_fixing_the_cap_in_settings_lets_the_cloud_back(held_ctx: AppContext) -> None:
    await apply_settings(held_ctx, held_ctx.settings.updated({"budget": {"daily_usd": 3}}))
    assert held_ctx.settings_problems == []
    skips = await _skips(held_ctx)
    assert "openai" not in skips
    assert json.loads(held_ctx.paths.settings_path.read_text())["budget"]["daily_usd"] == 3


def test_a_budget_that_is_not_a_group_keeps_the_cloud_off(settings_path: Path) -> None:
    write(settings_path, {"budget": 5, "ui": {"theme": "dark"}})
    result = load_settings(settings_path, env={})
    (problem,) = result.problems
    assert problem.setting == "budget" and problem.cloud_off
    assert result.settings.ui.theme == "dark"
