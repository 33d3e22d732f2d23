"""The README is what users read: its environment table must list exactly the
settings there are, each with the values it accepts (ranges included) and its
default, and every setting it names in passing must exist."""

from __future__ import annotations

import re
from pathlib import Path

from desktop_app.config import env_override_names
from desktop_app.config.fields import GROUPS, LEAVES

README = Path(__file__).resolve().parents[1] / "README.md"
ROW = re.compile(r"^\| `(IMAGEDESK_[A-Z0-9_]+)` \| (.*?) \| `(.*?)` \|$", re.MULTILINE)
# `section.field` in backticks; file names (settings.json, window.ini...) are not settings
DOTTED = re.compile(r"`((?:local|openai|remote|routing|budget|content|output|ui)\.[a-z_.]+)`")


def readme_rows() -> list[tuple[str, str, str]]:
    return [(name, values.replace(" / ", " | "), default)
            for name, values, default in ROW.findall(README.read_text())]


def row_text(row: tuple[str, str, str]) -> str:
    name, values, default = row
    return f"| `{name}` | {values.replace(' | ', ' / ')} | `{default}` |"


def test_the_environment_table_lists_exactly_the_settings_with_ranges_and_defaults() -> None:
    rows = readme_rows()
    expected = env_override_names()
    names = [name for name, _, _ in rows]
    assert len(names) == len(set(names)), "a variable is listed twice"
    missing = [row_text(row) for row in expected if row[0] not in names]
    stale = sorted(set(names) - {n for n, _, _ in expected})
    assert missing == [], "add these rows to README.md's environment table:\n" + "\n".join(
        missing)
    assert stale == [], f"README.md lists variables that name no setting: {stale}"
    wrong = [row_text(row) for row in expected if row not in rows]
    assert wrong == [], ("README.md's environment table gives other values or defaults than "
                         "the settings model; the rows should read:\n" + "\n".join(wrong))


def test_the_table_gives_every_number_its_range() -> None:
    for name, values, _ in readme_rows():
        if values.startswith(("integer", "number")):
            assert "<=" in values and (">" in values), f"{name} has no range: {values}"


def test_every_setting_the_readme_names_exists() -> None:
    known = {".".join(path) for path in (*LEAVES, *GROUPS)}
    named = set(DOTTED.findall(README.read_text()))
    assert named, "the pattern finds nothing: the test would prove nothing"
    assert sorted(named - known) == []


def test_readme_opens_with_the_two_commands() -> None:
    head = README.read_text()[:400]
    assert "make run" in head and "make test" in head
