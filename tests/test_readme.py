"""The README is what users read: it must keep naming every setting they can override."""

from __future__ import annotations

from pathlib import Path

from desktop_app.config import env_override_names

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_lists_every_environment_override() -> None:
    text = README.read_text()
    missing = [name for name, _, _ in env_override_names() if f"`{name}`" not in text]
    assert missing == [], f"add these to README.md's environment table: {missing}"


def test_readme_opens_with_the_two_commands() -> None:
    head = README.read_text()[:400]
    assert "make run" in head and "make test" in head
