"""The wildcards folder: comments and blanks skipped, nested names, no escape from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop_app.domain.dynamic_prompts import WildcardError
from desktop_app.store.wildcards import WildcardFolder


def test_lines_skip_comments_and_blanks_and_nested_folders_work(tmp_path: Path) -> None:
    (tmp_path / "colors").mkdir()
    (tmp_path / "hair.txt").write_text("# hair colours\nred hair\n\n  blue hair  \n",
                                       encoding="utf-8")
    (tmp_path / "colors" / "warm.txt").write_text("\ufeffamber\r\ncrimson\r\n",
                                                  encoding="utf-8")
    folder = WildcardFolder(tmp_path)
    assert folder.lines("hair") == ("red hair", "blue hair")
    assert folder.lines("colors/warm") == ("amber", "crimson")
    assert folder.names() == ["hair", "colors/warm"]


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "hair.txt"
    path.write_text("red\n", encoding="utf-8")
    folder = WildcardFolder(tmp_path)
    assert folder.lines("hair") == ("red",)
    path.write_text("red\ngreen and blue\n", encoding="utf-8")
    assert folder.lines("hair") == ("red", "green and blue")


def test_a_missing_file_says_where_to_add_it(tmp_path: Path) -> None:
    with pytest.raises(WildcardError, match=r"add hair\.txt to .*wild"):
        WildcardFolder(tmp_path / "wild").lines("hair")


@pytest.mark.parametrize("name", ["../secret", "a//b", "./x", "a/../../b"])
def test_a_name_cannot_reach_outside_the_folder(tmp_path: Path, name: str) -> None:
    (tmp_path / "secret.txt").write_text("do not read\n", encoding="utf-8")
    with pytest.raises(WildcardError, match="not a wildcard name"):
        WildcardFolder(tmp_path / "wild").lines(name)


def test_a_file_that_is_not_text_or_too_large_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00bad")
    (tmp_path / "huge.txt").write_bytes(b"a\n" * 600_000)
    folder = WildcardFolder(tmp_path)
    with pytest.raises(WildcardError, match="not UTF-8"):
        folder.lines("bin")
    with pytest.raises(WildcardError, match="larger than 1 MB"):
        folder.lines("huge")
