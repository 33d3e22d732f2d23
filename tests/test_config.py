from __future__ import annotations

import dataclasses
import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from desktop_app.config import (
    AppPaths,
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
    assert result.warnings == []
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
    assert loaded.warnings == []
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
    (b'{"openai": {"timeout_s": -5}}', "openai.timeout_s"),
])
def test_corrupt_file_starts_with_defaults_and_keeps_the_file_aside(
    settings_path: Path, content: bytes, reason: str
) -> None:
    settings_path.parent.mkdir(parents=True)
    settings_path.write_bytes(content)
    result = load_settings(settings_path, env={}, now=fixed_now)
    assert result.settings == Settings()
    kept = settings_path.with_name("settings.json.bad-20250304-050607")
    assert kept.read_bytes() == content
    assert not settings_path.exists()
    (warning,) = result.warnings
    assert warning.startswith("settings.json could not be read (")
    assert reason in warning
    assert f"started with defaults; your old file is kept at {kept}" in warning


def test_a_second_bad_file_in_the_same_second_does_not_overwrite_the_first(
    settings_path: Path
) -> None:
    settings_path.parent.mkdir(parents=True)
    for content in (b"{first", b"{second"):
        settings_path.write_bytes(content)
        load_settings(settings_path, env={}, now=fixed_now)
    kept = sorted(p.read_bytes() for p in settings_path.parent.glob("settings.json.bad-*"))
    assert kept == [b"{first", b"{second"]


def test_unknown_field_is_rejected_with_its_name(settings_path: Path) -> None:
    settings_path.parent.mkdir(parents=True)
    settings_path.write_text(json.dumps({"openai": {"modle": "dall-e-3"}}))
    (warning,) = load_settings(settings_path, env={}).warnings
    assert "openai.modle: unknown setting" in warning


def test_a_key_in_the_settings_file_is_refused_without_echoing_it(settings_path: Path) -> None:
    key = "sk-proj-" + "Q" * 40
    settings_path.parent.mkdir(parents=True)
    settings_path.write_text(json.dumps({"openai": {"api_key": key}}))
    result = load_settings(settings_path, env={})
    (warning,) = result.warnings
    assert "openai.api_key: keys and passwords are never kept in settings" in warning
    assert "imagedesk keys set" in warning
    assert key not in warning


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


def test_file_from_a_newer_version_is_set_aside_with_a_reason(settings_path: Path) -> None:
    settings_path.parent.mkdir(parents=True)
    settings_path.write_text(json.dumps({"schema_version": 7}))
    (warning,) = load_settings(settings_path, env={}, now=fixed_now).warnings
    assert "written by a newer ImageDesk (settings version 7" in warning
    assert settings_path.with_name("settings.json.bad-20250304-050607").exists()


def test_file_without_a_schema_version_is_read_as_version_one(settings_path: Path) -> None:
    settings_path.parent.mkdir(parents=True)
    settings_path.write_text(json.dumps({"ui": {"theme": "light"}}))
    result = load_settings(settings_path, env={})
    assert result.warnings == [] and result.settings.ui.theme == "light"


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
    assert result.warnings == []


def test_none_clears_an_optional_setting(settings_path: Path) -> None:
    save_settings(Settings().updated({"budget": {"daily_usd": 3}}), settings_path)
    result = load_settings(settings_path, env={"IMAGEDESK_BUDGET__DAILY_USD": "none"})
    assert result.settings.budget.daily_usd is None


@pytest.mark.parametrize("variable, value, message", [
    ("IMAGEDESK_BUDGET__DAILY_USD", "lots", "budget.daily_usd: Input should be a valid number"),
    ("IMAGEDESK_LOCAL__ALLOW_CPU", "maybe", "local.allow_cpu: Input should be a valid boolean"),
    ("IMAGEDESK_LOCAL__DEVICE", "gpu", "Input should be 'auto', 'cuda', 'mps' or 'cpu'"),
    ("IMAGEDESK_OPENAI__TIMEOUT_S", "0", "Input should be greater than 0"),
    ("IMAGEDESK_CONTENT__BLOCKED_TERMS", "a,b", 'must be JSON, like ["a", "b"]'),
    ("IMAGEDESK_OPENAI__RATE_LIMITS", '[{"limit": 0, "period_s": 1}]', "limit"),
])
def test_bad_override_is_an_error_naming_the_variable(
    settings_path: Path, variable: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(settings_path, env={variable: value})
    text = str(caught.value)
    assert variable in text and message in text
    assert "Fix or unset it." in text


def test_override_conflicting_with_the_file_names_the_variable(settings_path: Path) -> None:
    save_settings(Settings().updated({"openai": {"deadline_s": 200}}), settings_path)
    with pytest.raises(SettingsError, match="IMAGEDESK_OPENAI__TIMEOUT_S.*deadline_s"):
        load_settings(settings_path, env={"IMAGEDESK_OPENAI__TIMEOUT_S": "300"})


def test_misspelt_override_is_a_warning_with_a_suggestion(settings_path: Path) -> None:
    result = load_settings(settings_path, env={"IMAGEDESK_OPENAI__MODLE": "dall-e-3"})
    assert result.settings.openai.model == "gpt-image-2"
    assert result.warnings == ["IMAGEDESK_OPENAI__MODLE is not an ImageDesk setting and was "
                               "ignored; did you mean IMAGEDESK_OPENAI__MODEL?"]


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
    assert rows["IMAGEDESK_BUDGET__DAILY_USD"] == ("number, >= 0, or none", "none")
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
    assert result.warnings == []
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
