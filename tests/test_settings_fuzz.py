"""Untrusted settings (the file, the environment) end in settings plus typed
problems, in bounded time, whatever they hold; and a valid spending cap is never
replaced by a more permissive one."""

from __future__ import annotations

import json
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_app.config import (
    ProblemSource,
    Settings,
    SettingsProblem,
    env_override_names,
    load_settings,
    save_settings,
)
from desktop_app.config.fields import GROUPS, LEAVES

BOUNDED = settings(deadline=timedelta(seconds=2), max_examples=150)
NAMES = sorted({part for path in (*LEAVES, *GROUPS) for part in path})
VARIABLES = [name for name, _, _ in env_override_names()]

scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**400))
           | st.floats() | st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
keys = st.sampled_from(NAMES) | st.text(max_size=10)
groups = st.recursive(st.dictionaries(keys, values, max_size=6),
                      lambda inner: st.dictionaries(keys, inner | values, max_size=6),
                      max_leaves=3)
documents = st.dictionaries(st.sampled_from([*NAMES, "schema_version"]) | st.text(max_size=8),
                            groups | values, max_size=8)
env_maps = st.dictionaries(
    st.sampled_from(VARIABLES) | st.sampled_from(VARIABLES).map(lambda v: v + "X")
    | st.text(max_size=12).map(lambda t: "IMAGEDESK_" + t),
    st.text(max_size=30) | values.map(json.dumps), max_size=6)


def load(raw: bytes, env: dict[str, str]) -> tuple[Settings, list[SettingsProblem], Path]:
    folder = Path(tempfile.mkdtemp())
    path = folder / "settings.json"
    path.write_bytes(raw)
    result = load_settings(path, env=env)
    assert isinstance(result.settings, Settings)
    assert all(isinstance(p, SettingsProblem) and p.line() for p in result.problems)
    assert path.read_bytes() == raw  # reading never writes
    return result.settings, result.problems, path


@BOUNDED
@given(documents, env_maps)
def test_any_json_document_and_environment_end_in_settings_and_typed_problems(
        document: dict[str, Any], env: dict[str, str]) -> None:
    loaded, problems, path = load(json.dumps(document).encode(), env)
    for problem in problems:
        if problem.source is ProblemSource.ENVIRONMENT:
            assert problem.variable in env
    # saving what was read and reading it back loses no value and invents no problem
    save_settings(loaded, path)
    again = load_settings(path, env=env)
    assert again.settings.model_dump() == loaded.model_dump()
    assert {p.setting for p in again.problems} <= {p.setting for p in problems}


@BOUNDED
@given(st.binary(max_size=3000) | documents.map(lambda d: json.dumps(d).encode()).flatmap(
    lambda raw: st.integers(0, len(raw)).map(lambda cut: raw[:cut])))
def test_any_bytes_end_in_settings_and_typed_problems(raw: bytes) -> None:
    load(raw, {})


caps = st.none() | st.floats(min_value=0, max_value=1_000_000) | st.integers(0, 1_000_000)


@BOUNDED
@given(caps, documents, env_maps.map(lambda env: {k: v for k, v in env.items()
                                                   if "BUDGET" not in k}))
def test_a_valid_spending_cap_is_never_replaced_by_a_more_permissive_one(
        cap: float | None, noise: dict[str, Any], env: dict[str, str]) -> None:
    document = dict(noise)
    budget = document.get("budget")
    document["budget"] = {**(budget if isinstance(budget, dict) else {}), "daily_usd": cap}
    document.pop("schema_version", None)
    loaded, _, _ = load(json.dumps(document).encode(), env)
    assert loaded.budget.daily_usd == cap


@BOUNDED
@given(values, documents)
def test_an_unreadable_spending_cap_keeps_the_cloud_off(cap: Any, noise: dict[str, Any]) -> None:
    document = {**noise, "budget": {"daily_usd": cap}}
    document.pop("schema_version", None)
    loaded, problems, _ = load(json.dumps(document).encode(), {})
    if any(p.setting == "budget.daily_usd" for p in problems):
        assert loaded.cloud_off_reason() is not None
        assert loaded.budget.daily_usd is None  # the hold, not the value, protects the money
    else:
        assert loaded.budget.daily_usd is not None or cap is None
