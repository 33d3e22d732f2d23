from __future__ import annotations

import dataclasses
import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from desktop_app.config import (
    AppPaths,
    ProblemKind,
    ProblemSource,
    Settings,
    SettingsError,
    env_override_names,
    gallery_folder,
    load_settings,
    migrate,
    save_settings,
)
from desktop_app.domain.request import OutputFormat, RouteMode

FIXED_NOW = datetime(2025, 3, 4, 5, 6, 7)


def fixed_now() -> datetime:
    return FIXED_NOW


@pytest.fixture
def settings_path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "settings.json"


# --- defaults -------------------------------------------------------------------------


def test_missing_file_gives_the_documented_defaults(settings_path: Path) -> None:
    result = load_settings(settings_path, env={})
    s = result.settings
    assert result.problems == []
    assert s.schema_version == 1
    assert (s.local.enabled, s.local.priority, s.local.model, s.local.device) == (
        True, 0, "builtin:tiny", "auto")
    assert s.local.allow_cpu and not s.local.allow_download and s.local.concurrency == 1
    assert s.local.breaker.window == "count" and s.local.breaker.window_size == 6
    assert s.local.breaker.slow_call_s == 600 and s.local.breaker.open_max_s == 300
    assert s.local.rate_limits == []
    assert (s.openai.priority, s.openai.model, s.openai.base_url) == (10, "gpt-image-2", None)
    assert (s.openai.timeout_s, s.openai.deadline_s, s.openai.concurrency) == (120, 180, 2)
    assert s.openai.breaker.window == "time" and s.openai.breaker.min_calls == 4
    assert s.openai.breaker.open_max_s == 600 and s.openai.breaker.trial_timeout_s == 180
    assert [(r.limit, r.period_s) for r in s.openai.rate_limits] == [(5, 60), (200, 86400)]
    assert s.routing.mode is RouteMode.AUTO and s.routing.cpu_after_cloud
    assert not s.routing.allow_failover_after_refusal
    assert (s.budget.daily_usd, s.budget.monthly_usd) == (None, None)
    assert s.content.nsfw_check == "off" and s.content.blocked_terms == []
    assert s.output.folder is None and s.output.format is OutputFormat.PNG
    assert s.ui.recent_prompts_max == 50
    assert not settings_path.exists()  # reading never creates the file


def test_breaker_settings_map_field_for_field_onto_the_resilience_config() -> None:
    from desktop_app.resilience.breaker import BreakerConfig
    from desktop_app.resilience.rate_limit import RateSpec

    s = Settings()
    for section in (s.local, s.openai):
        config = BreakerConfig(**section.breaker.model_dump())
        assert dataclasses.asdict(config) == section.breaker.model_dump()
        specs = [RateSpec(**r.model_dump()) for r in section.rate_limits]
        assert [(spec.limit, spec.period_s) for spec in specs] == [
            (r.limit, r.period_s) for r in section.rate_limits]


# --- save and load --------------------------------------------------------------------


def test_saved_settings_load_back_equal(settings_path: Path, tmp_path: Path) -> None:
    changed = Settings().updated({
        "openai": {"model": "dall-e-3", "base_url": "http://127.0.0.1:9000/v1"},
        "budget": {"daily_usd": 2.5, "monthly_usd": 40},
        "content": {"blocked_terms": ["gore", " spiders "], "nsfw_check": "blur"},
        "output": {"folder": tmp_path / "out", "format": "webp"},
        "local": {"breaker": {"min_calls": 2}, "rate_limits": [{"limit": 1, "period_s": 5}]},
        "routing": {"mode": "cloud"},
    })
    save_settings(changed, settings_path)
    loaded = load_settings(settings_path, env={})
    assert loaded.problems == []
    assert loaded.settings == changed
    assert loaded.settings.content.blocked_terms == ["gore", "spiders"]
    assert loaded.settings.local.breaker.window_size == 6  # the rest of the group kept


def test_saved_file_is_readable_json_with_the_schema_version(settings_path: Path) -> None:
    save_settings(Settings(), settings_path)
    text = settings_path.read_text(encoding="utf-8")
    assert text.startswith("{\n  ") and text.endswith("}\n")
    assert json.loads(text)["schema_version"] == 1


def test_save_leaves_no_temp_file_and_replaces_the_old_one(settings_path: Path) -> None:
    save_settings(Settings(), settings_path)
    save_settings(Settings().updated({"ui": {"theme": "dark"}}), settings_path)
    assert sorted(p.name for p in settings_path.parent.iterdir()) == ["settings.json"]
    assert json.loads(settings_path.read_text())["ui"]["theme"] == "dark"


def test_failed_save_keeps_the_old_file_and_cleans_up(
    settings_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_settings(Settings(), settings_path)
    before = settings_path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        save_settings(Settings().updated({"ui": {"theme": "dark"}}), settings_path)
    assert settings_path.read_bytes() == before
    assert sorted(p.name for p in settings_path.parent.iterdir()) == ["settings.json"]


def test_saved_file_holds_no_secret_field(settings_path: Path) -> None:
    save_settings(Settings(), settings_path)
    text = settings_path.read_text().lower()
    for word in ("key", "password", "secret", "token"):
        assert word not in text


# --- bad files ------------------------------------------------------------------------


@pytest.mark.parametrize("content, reason", [
    (b"{not json", "not valid JSON"),
    (b"", "not valid JSON"),
    (b"[1, 2]", "does not hold a JSON object"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b"[" * 100_000, "not usable JSON"),
    (b'{"a": ' + b"9" * 5000 + b"}", "not usable JSON"),
])
def test_unreadable_file_is_left_untouched_reported_and_keeps_the_cloud_off(
    settings_path: Path, content: bytes, reason: str
) -> None:
    settings_path.parent.mkdir(parents=True)
    settings_path.write_bytes(content)
    for _ in range(2):  # on every start, not only the first
        result = load_settings(settings_path, env={})
        assert result.settings.model_dump() == Settings().model_dump()
        (problem,) = result.problems
        assert problem.kind is ProblemKind.UNREADABLE_FILE and problem.cloud_off
        assert problem.setting == "settings.json" and reason in problem.message
        assert result.settings.cloud_off_reason() is not None
    assert settings_path.read_bytes() == content  # never renamed nor rewritten by reading
    assert sorted(p.name for p in settings_path.parent.iterdir()) == ["settings.json"]


def test_a_settings_path_that_cannot_be_read_is_a_problem_that_keeps_the_cloud_off(
    settings_path: Path
) -> None:
    settings_path.mkdir(parents=True)  # a folder where the file should be
    result = load_settings(settings_path, env={})
    (problem,) = result.problems
    assert problem.kind is ProblemKind.UNREADABLE_FILE and problem.cloud_off
    assert str(settings_path) in problem.fix
    assert result.settings.cloud_off_reason() is not None


def test_saving_over_an_unreadable_file_keeps_a_copy_of_each_one(settings_path: Path) -> None:
    settings_path.parent.mkdir(parents=True)
    for content in (b"{first", b"{second"):
        settings_path.write_bytes(content)
        loaded = load_settings(settings_path, env={}).settings
        save_settings(loaded.updated({"ui": {"theme": "dark"}}), settings_path, now=fixed_now)
    kept = sorted(p.read_bytes() for p in settings_path.parent.glob("settings.json.bad-*"))
    assert kept == [b"{first", b"{second"]
    result = load_settings(settings_path, env={})
    assert result.problems == [] and result.settings.ui.theme == "dark"


def test_unknown_field_is_reported_by_name_and_every_other_value_is_kept(
    settings_path: Path
) -> None:
    settings_path.parent.mkdir(parents=True)
    settings_path.write_text(json.dumps({"openai": {"modle": "dall-e-3", "timeout_s": 60},
                                         "budget": {"daily_usd": 0}}))
    result = load_settings(settings_path, env={})
    (problem,) = result.problems
    assert problem.setting == "openai.modle" and problem.kind is ProblemKind.UNKNOWN_SETTING
    assert "openai.modle: unknown setting" in problem.line() and not problem.cloud_off
    assert result.settings.openai.timeout_s == 60
    assert result.settings.budget.daily_usd == 0  # a $0 cap survives a typo elsewhere
    assert result.settings.cloud_off_reason() is None


def test_a_key_in_the_settings_file_is_refused_without_echoing_it(settings_path: Path) -> None:
    key = "sk-proj-" + "Q" * 40
    settings_path.parent.mkdir(parents=True)
    settings_path.write_text(json.dumps({"openai": {"api_key": key}}))
    result = load_settings(settings_path, env={})
    (problem,) = result.problems
    assert problem.kind is ProblemKind.SECRET_IN_FILE
    assert "openai.api_key: keys and passwords are never kept in settings" in problem.line()
    assert "imagedesk keys set" in problem.line()
    assert key not in problem.line()


@pytest.mark.parametrize("changes, message", [
    ({"local": {"device": "gpu"}}, "local.device: Input should be 'auto', 'cuda', 'mps' or 'cpu'"),
    ({"local": {"model": "  "}}, "local.model: choose a model"),
    ({"local": {"breaker": {"min_calls": 9}}}, "min_calls (9) cannot exceed a count window"),
    ({"openai": {"base_url": "api.example.com"}}, "base_url must start with http://"),
    ({"openai": {"timeout_s": 300}}, "deadline_s (180) must be at least timeout_s (300)"),
    ({"budget": {"daily_usd": -1}}, "budget.daily_usd: Input should be greater than or equal to 0"),
    ({"output": {"folder": "relative/out"}}, "the output folder must be a full path"),
    ({"routing": {"retry_base_s": 60}}, "retry_max_s (30) must be at least retry_base_s (60)"),
])
def test_invalid_values_say_which_setting_and_what_to_change(
    changes: dict[str, dict[str, object]], message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings().updated(changes)
    assert message in str(caught.value)


def test_unknown_section_in_an_update_is_an_error() -> None:
    with pytest.raises(SettingsError, match="no settings section 'theme'"):
        Settings().updated({"theme": {"x": 1}})


def test_settings_cannot_be_changed_in_place() -> None:
    settings = Settings()
    with pytest.raises(ValueError):
        settings.openai.model = "dall-e-3"


# --- migrations -----------------------------------------------------------------------


def test_older_schema_is_migrated_forward_step_by_step() -> None:
    def rename_theme(data: dict[str, object]) -> dict[str, object]:
        ui = dict(data.pop("appearance"))  # type: ignore[call-overload]
        return {**data, "ui": ui}

    def add_budget(data: dict[str, object]) -> dict[str, object]:
        return {**data, "budget": {"daily_usd": 1.0}}

    migrated = migrate({"schema_version": 1, "appearance": {"theme": "dark"}},
                       current=3, migrations={1: rename_theme, 2: add_budget})
    assert migrated == {"schema_version": 3, "ui": {"theme": "dark"},
                        "budget": {"daily_usd": 1.0}}


def test_file_from_a_newer_version_is_read_as_far_as_understood_and_kept(
    settings_path: Path
) -> None:
    newer = {"schema_version": 7, "budget": {"daily_usd": 2.5},
             "openai": {"model": "dall-e-3", "vision": {"mode": "fast"}}, "plugins": ["x"]}
    settings_path.parent.mkdir(parents=True)
    settings_path.write_text(json.dumps(newer))
    result = load_settings(settings_path, env={})
    kinds = {p.setting: p.kind for p in result.problems}
    assert kinds == {"schema_version": ProblemKind.NEWER_VERSION,
                     "openai.vision": ProblemKind.UNKNOWN_SETTING,
                     "plugins": ProblemKind.UNKNOWN_SETTING}
    assert "written by a newer ImageDesk (settings version 7" in result.warnings[0]
    assert result.settings.budget.daily_usd == 2.5 and result.settings.openai.model == "dall-e-3"
    assert json.loads(settings_path.read_text()) == newer  # untouched by reading
    save_settings(result.settings.updated({"ui": {"theme": "dark"}}), settings_path)
    saved = json.loads(settings_path.read_text())
    assert saved["schema_version"] == 7 and saved["plugins"] == ["x"]
    assert saved["openai"]["vision"] == {"mode": "fast"} and saved["ui"]["theme"] == "dark"


def test_file_without_a_schema_version_is_read_as_version_one(settings_path: Path) -> None:
    settings_path.parent.mkdir(parents=True)
    settings_path.write_text(json.dumps({"ui": {"theme": "light"}}))
    result = load_settings(settings_path, env={})
    assert result.problems == [] and result.settings.ui.theme == "light"


# --- environment overrides ------------------------------------------------------------


def test_environment_overrides_each_kind_of_value(settings_path: Path) -> None:
    env = {
        "IMAGEDESK_OPENAI__MODEL": "dall-e-3",
        "IMAGEDESK_BUDGET__DAILY_USD": "2.5",
        "IMAGEDESK_LOCAL__ALLOW_CPU": "false",
        "IMAGEDESK_CONTENT__BLOCKED_TERMS": '["a","b"]',
        "IMAGEDESK_LOCAL__BREAKER__OPEN_MAX_S": "900",
        "IMAGEDESK_OPENAI__RATE_LIMITS": '[{"limit": 1, "period_s": 10}]',
        "IMAGEDESK_ROUTING__MODE": "local",
        "PATH": "/usr/bin",
        "IMAGEDESK_HOME": "/elsewhere",
    }
    result = load_settings(settings_path, env=env)
    s = result.settings
    assert s.openai.model == "dall-e-3"
    assert s.budget.daily_usd == 2.5
    assert s.local.allow_cpu is False
    assert s.content.blocked_terms == ["a", "b"]
    assert s.local.breaker.open_max_s == 900
    assert [(r.limit, r.period_s) for r in s.openai.rate_limits] == [(1, 10)]
    assert s.routing.mode is RouteMode.LOCAL_ONLY
    assert result.overrides["IMAGEDESK_OPENAI__MODEL"] == "openai.model"
    assert result.problems == []


def test_none_clears_an_optional_setting(settings_path: Path) -> None:
    save_settings(Settings().updated({"budget": {"daily_usd": 3}}), settings_path)
    result = load_settings(settings_path, env={"IMAGEDESK_BUDGET__DAILY_USD": "none"})
    assert result.settings.budget.daily_usd is None


@pytest.mark.parametrize("variable, value, message", [
    ("IMAGEDESK_BUDGET__DAILY_USD", "lots", "'lots' is not allowed (allowed: number, >= 0"),
    ("IMAGEDESK_LOCAL__ALLOW_CPU", "maybe", "Input should be a valid boolean"),
    ("IMAGEDESK_LOCAL__DEVICE", "gpu", "Input should be 'auto', 'cuda', 'mps' or 'cpu'"),
    ("IMAGEDESK_OPENAI__TIMEOUT_S", "0", "'0' is not allowed (allowed: number, > 0, <= 3600)"),
    ("IMAGEDESK_OPENAI__TIMEOUT_S", "inf", "'inf' is not allowed (allowed: number, > 0"),
    ("IMAGEDESK_CONTENT__BLOCKED_TERMS", "a,b", 'must be JSON, like ["a", "b"]'),
    ("IMAGEDESK_OPENAI__RATE_LIMITS", '[{"limit": 0, "period_s": 1}]', "0.limit"),
    ("IMAGEDESK_LOCAL__BREAKER", "[1]", 'must be a JSON object, like {"window": ...}'),
])
def test_bad_override_is_a_problem_naming_the_variable_and_the_file_value_stays(
    settings_path: Path, variable: str, value: str, message: str
) -> None:
    save_settings(Settings().updated({"budget": {"daily_usd": 4}, "openai": {"timeout_s": 90}}),
                  settings_path)
    result = load_settings(settings_path, env={variable: value})
    (problem,) = result.problems
    assert problem.variable == variable and problem.source is ProblemSource.ENVIRONMENT
    assert message in problem.line() and f"fix or unset {variable}" in problem.line()
    assert variable not in result.overrides
    s = result.settings
    assert (s.budget.daily_usd, s.openai.timeout_s, s.local.device) == (4, 90, "auto")
    guards = variable in ("IMAGEDESK_BUDGET__DAILY_USD", "IMAGEDESK_CONTENT__BLOCKED_TERMS",
                          "IMAGEDESK_OPENAI__RATE_LIMITS")
    assert problem.cloud_off is guards
    assert (s.cloud_off_reason() is not None) is guards


def test_override_conflicting_with_the_file_names_the_variable(settings_path: Path) -> None:
    save_settings(Settings().updated({"openai": {"deadline_s": 200}}), settings_path)
    result = load_settings(settings_path, env={"IMAGEDESK_OPENAI__TIMEOUT_S": "300"})
    (problem,) = result.problems
    assert problem.variable == "IMAGEDESK_OPENAI__TIMEOUT_S"
    assert "deadline_s (200) must be at least timeout_s (300)" in problem.message
    assert (result.settings.openai.timeout_s, result.settings.openai.deadline_s) == (120, 200)


def test_overrides_that_are_valid_together_are_applied_together(settings_path: Path) -> None:
    # issue 11.13: they used to be validated one at a time, in alphabetical order
    env = {"IMAGEDESK_REMOTE__ENABLED": "true",
           "IMAGEDESK_REMOTE__REDIS_URL": "redis://render-box:6379/0",
           "IMAGEDESK_OPENAI__DEADLINE_S": "700", "IMAGEDESK_OPENAI__TIMEOUT_S": "600"}
    result = load_settings(settings_path, env=env)
    assert result.problems == []
    s = result.settings
    assert s.remote.enabled and s.remote.redis_url == "redis://render-box:6379/0"
    assert (s.openai.timeout_s, s.openai.deadline_s) == (600, 700)
    assert set(result.overrides) == set(env)


def test_enabling_remote_without_a_url_is_a_problem_and_remote_stays_off(
    settings_path: Path
) -> None:
    result = load_settings(settings_path, env={"IMAGEDESK_REMOTE__ENABLED": "true"})
    (problem,) = result.problems
    assert problem.variable == "IMAGEDESK_REMOTE__ENABLED"
    assert "set redis_url before enabling remote workers" in problem.message
    assert result.settings.remote.enabled is False


def test_a_group_override_keeps_the_sections_own_defaults_and_reports_unknown_fields(
    settings_path: Path
) -> None:
    result = load_settings(settings_path, env={
        "IMAGEDESK_OPENAI__BREAKER": '{"min_calls": 5, "min_call": 2}',
        "IMAGEDESK_OPENAI__BREAKER__OPEN_MAX_S": "900"})
    breaker = result.settings.openai.breaker
    assert (breaker.window, breaker.window_size, breaker.min_calls, breaker.open_max_s) == (
        "time", 120, 5, 900)
    (problem,) = result.problems
    assert problem.variable == "IMAGEDESK_OPENAI__BREAKER"
    assert problem.setting == "openai.breaker.min_call" and not problem.cloud_off


def test_misspelt_override_is_a_problem_with_a_suggestion(settings_path: Path) -> None:
    result = load_settings(settings_path, env={"IMAGEDESK_OPENAI__MODLE": "dall-e-3"})
    assert result.settings.openai.model == "gpt-image-2"
    (problem,) = result.problems
    assert problem.kind is ProblemKind.UNKNOWN_VARIABLE and not problem.cloud_off
    assert problem.line() == ("IMAGEDESK_OPENAI__MODLE (openai.modle): is not an ImageDesk "
                              "setting and was ignored; did you mean IMAGEDESK_OPENAI__MODEL? "
                              "fix or unset IMAGEDESK_OPENAI__MODLE")


def test_misspelt_spending_cap_variable_keeps_the_cloud_off(settings_path: Path) -> None:
    result = load_settings(settings_path, env={"IMAGEDESK_BUDGET__DAILY_USDD": "0"})
    (problem,) = result.problems
    assert problem.cloud_off and "IMAGEDESK_BUDGET__DAILY_USD?" in problem.fix
    assert result.settings.cloud_off_reason() is not None


def test_overrides_are_not_written_back_when_saving(settings_path: Path) -> None:
    save_settings(Settings().updated({"openai": {"model": "gpt-image-1"}}), settings_path)
    env = {"IMAGEDESK_OPENAI__MODEL": "dall-e-3", "IMAGEDESK_BUDGET__DAILY_USD": "2.5"}
    loaded = load_settings(settings_path, env=env).settings
    edited = loaded.updated({"ui": {"theme": "dark"}, "budget": {"monthly_usd": 9}})
    save_settings(edited, settings_path)
    on_disk = json.loads(settings_path.read_text())
    assert on_disk["openai"]["model"] == "gpt-image-1"
    assert on_disk["budget"] == {"daily_usd": None, "monthly_usd": 9.0}
    assert on_disk["ui"]["theme"] == "dark"


def test_a_value_the_user_changed_after_an_override_is_saved(settings_path: Path) -> None:
    loaded = load_settings(settings_path, env={"IMAGEDESK_OPENAI__MODEL": "dall-e-3"}).settings
    save_settings(loaded.updated({"openai": {"model": "dall-e-2"}}), settings_path)
    assert json.loads(settings_path.read_text())["openai"]["model"] == "dall-e-2"


def test_override_list_names_every_leaf_setting_with_type_and_default() -> None:
    rows = {name: (kind, default) for name, kind, default in env_override_names()}
    assert rows["IMAGEDESK_OPENAI__MODEL"] == ("text", "gpt-image-2")
    assert rows["IMAGEDESK_LOCAL__ALLOW_CPU"] == ("true/false", "true")
    assert rows["IMAGEDESK_BUDGET__DAILY_USD"] == ("number, >= 0, <= 1000000, or none", "none")
    assert rows["IMAGEDESK_ROUTING__MODE"] == ("auto | local | cloud", "auto")
    assert rows["IMAGEDESK_CONTENT__BLOCKED_TERMS"] == ("JSON list of text", "[]")
    assert "IMAGEDESK_LOCAL__BREAKER__MIN_CALLS" in rows
    assert "IMAGEDESK_LOCAL__BREAKER" not in rows  # groups are listed field by field
    for section, model in Settings.model_fields.items():
        if section == "schema_version":
            continue
        fields = model.annotation.model_fields  # type: ignore[union-attr]
        for name in fields:
            if fields[name].exclude:  # kept only so old files load
                continue
            assert any(row.startswith(f"IMAGEDESK_{section.upper()}__{name.upper()}")
                       for row in rows), name


def test_every_listed_variable_is_accepted_with_its_default(settings_path: Path) -> None:
    env = {name: default for name, _, default in env_override_names()}
    result = load_settings(settings_path, env=env)
    assert result.problems == []
    assert result.settings.model_dump() == Settings().model_dump()
    assert len(result.overrides) == len(env)


# --- paths ----------------------------------------------------------------------------


def test_imagedesk_home_puts_every_folder_under_one_directory(tmp_path: Path) -> None:
    paths = AppPaths.discover({"IMAGEDESK_HOME": str(tmp_path / "portable")})
    home = tmp_path / "portable"
    assert (paths.data_dir, paths.config_dir, paths.cache_dir, paths.log_dir,
            paths.gallery_dir) == (home / "data", home / "config", home / "cache",
                                   home / "logs", home / "gallery")
    assert paths.db_path == home / "data" / "imagedesk.sqlite3"
    assert paths.settings_path == home / "config" / "settings.json"
    assert paths.thumbs_dir == home / "cache" / "thumbnails"
    assert paths.models_dir == home / "data" / "models"
    paths.ensure()
    assert all(p.is_dir() for p in (paths.data_dir, paths.config_dir, paths.cache_dir,
                                    paths.log_dir, paths.gallery_dir, paths.thumbs_dir))


def test_without_imagedesk_home_the_os_folders_are_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdata"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xconfig"))
    paths = AppPaths.discover({"IMAGEDESK_HOME": "  "})
    assert paths.data_dir == tmp_path / "xdata" / "ImageDesk"
    assert paths.settings_path == tmp_path / "xconfig" / "ImageDesk" / "settings.json"
    assert paths.gallery_dir.name == "ImageDesk"


def test_output_folder_setting_replaces_the_default_gallery(tmp_path: Path) -> None:
    paths = AppPaths.under(tmp_path)
    assert gallery_folder(Settings(), paths) == tmp_path / "gallery"
    chosen = Settings().updated({"output": {"folder": tmp_path / "mine"}})
    assert gallery_folder(chosen, paths) == tmp_path / "mine"


def test_an_old_local_concurrency_loads_is_ignored_and_dropped_on_save(
        settings_path: Path) -> None:
    """One GPU runs one job at a time: local.concurrency is no longer a setting
    (issue 11.3), but files written before still load without a problem."""
    settings_path.parent.mkdir(parents=True)
    settings_path.write_text(json.dumps({"schema_version": 1,
                                         "local": {"concurrency": 3, "priority": 2}}))
    result = load_settings(settings_path, env={})
    assert result.warnings == [] and result.settings.local.priority == 2
    assert result.settings.local.concurrency == 1
    save_settings(result.settings, settings_path)
    assert "concurrency" not in json.loads(settings_path.read_text())["local"]
    assert "IMAGEDESK_LOCAL__CONCURRENCY" not in {n for n, _, _ in env_override_names()}
