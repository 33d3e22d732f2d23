"""``resource_path`` finds resources/ in a checkout and inside a frozen bundle."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from desktop_app.resources import is_frozen, resource_path

ROOT = Path(__file__).resolve().parents[2]


def test_from_source_resources_are_next_to_the_package() -> None:
    assert not is_frozen()
    assert resource_path("prices.json") == ROOT / "resources" / "prices.json"
    assert resource_path("icons", "imagedesk.svg").is_file()


def test_in_a_bundle_resources_are_in_the_bundle_data_folder(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert is_frozen()
    assert resource_path("styles", "app.qss") == tmp_path / "resources" / "styles" / "app.qss"
