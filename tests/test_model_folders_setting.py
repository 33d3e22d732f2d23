"""``local.model_folders``: full paths only, ``~`` expanded, each folder once; a bad
value from the environment falls back to the file's and says what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop_app.config import Settings, SettingsError, load_settings


def test_folders_are_full_paths_listed_once_with_home_expanded() -> None:
    folders = ["~/sd/models", "/srv/models", "/srv/models"]
    local = Settings().updated({"local": {"model_folders": folders}}).local
    assert local.model_folders == [Path.home() / "sd" / "models", Path("/srv/models")]


def test_a_relative_folder_is_refused_with_what_to_write_instead() -> None:
    with pytest.raises(SettingsError, match="must be a full path"):
        Settings().updated({"local": {"model_folders": ["models"]}})


def test_a_bad_variable_keeps_the_files_folders_and_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"local": {"model_folders": ["/srv/models"]}}))
    loaded = load_settings(path, {"IMAGEDESK_LOCAL__MODEL_FOLDERS": "[\"relative\"]"})
    assert loaded.settings.local.model_folders == [Path("/srv/models")]
    [problem] = loaded.problems
    assert problem.variable == "IMAGEDESK_LOCAL__MODEL_FOLDERS"
    assert "full path" in problem.line()
