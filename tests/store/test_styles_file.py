"""The profile's styles file is an Automatic1111 styles.csv, both ways."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.styles import Style
from desktop_app.store.styles import StyleLibrary, StylesFileError, parse_styles_csv

A1111_FILE = ('name,prompt,negative_prompt\n'
              '"Cinematic","cinematic still of {prompt}, shallow depth of field","cartoon, '
              'anime"\n'
              'Film grain,"film grain, 35mm",\n'
              ',orphan prompt,\n'
              '"Multi\nline","a, b",c\n')


def a1111_reads(path: Path) -> dict[str, tuple[str, str]]:
    """What Automatic1111's StyleDatabase.load_from_csv reads from a file."""
    with path.open(encoding="utf-8-sig", newline="") as file:
        reader = csv.DictReader(file, skipinitialspace=True)
        return {row["name"]: (row.get("prompt", ""), row.get("negative_prompt", ""))
                for row in reader}


def test_an_a1111_file_imports_with_each_bad_row_reported(tmp_path: Path) -> None:
    source = tmp_path / "styles.csv"
    source.write_text(A1111_FILE, encoding="utf-8")
    library = StyleLibrary(tmp_path / "profile" / "styles.csv")
    count, skipped = library.import_file(source)
    assert count == 2 and len(skipped) == 2
    assert any("row 4" in line for line in skipped)  # the nameless row
    assert library.get(["Cinematic"]) == [Style(
        "Cinematic", "cinematic still of {prompt}, shallow depth of field", "cartoon, anime")]


def test_exported_styles_read_back_in_automatic1111(tmp_path: Path) -> None:
    library = StyleLibrary(tmp_path / "styles.csv")
    library.save(Style("Cinematic", 'still of {prompt}, "quoted", 35mm', "cartoon"))
    library.save(Style("Plain", "film grain"))
    library.save(Style("Plain", "film grain, replaced"))  # a name is unique
    target = tmp_path / "export" / "styles.csv"
    assert library.export_file(target) == 2
    assert a1111_reads(target) == {
        "Cinematic": ('still of {prompt}, "quoted", 35mm', "cartoon"),
        "Plain": ("film grain, replaced", "")}
    assert library.remove("Plain") and not library.remove("Plain")
    assert [s.name for s in library.all()] == ["Cinematic"]


def test_an_unknown_style_is_named_with_the_ones_there_are(tmp_path: Path) -> None:
    library = StyleLibrary(tmp_path / "styles.csv")
    library.save(Style("Cinematic", "x"))
    with pytest.raises(InvalidRequest, match="no style named 'Noir'.*Cinematic"):
        library.get(["Noir"])


@pytest.mark.parametrize(("content", "message"), [
    (b"\xff\xfe\x00\x00", "not UTF-8"),
    (b"prompt,negative_prompt\nx,y\n", "no 'name' column"),
    (b"a" * 2_000_001, "larger than 2 MB"),
])
def test_a_file_that_is_not_a_styles_file_says_so(tmp_path: Path, content: bytes,
                                                  message: str) -> None:
    source = tmp_path / "styles.csv"
    source.write_bytes(content)
    with pytest.raises(StylesFileError, match=message):
        StyleLibrary(tmp_path / "mine.csv").import_file(source)
    assert not (tmp_path / "mine.csv").exists()  # nothing half-written


@settings(max_examples=200, deadline=timedelta(seconds=2),
          suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet='name,prompt"\n\r\x00ab{}', max_size=300))
def test_any_text_reads_as_styles_or_a_clear_error(text: str) -> None:
    try:
        styles, skipped = parse_styles_csv(text)
    except StylesFileError as error:
        assert str(error)
        return
    assert all(s.name and "\n" not in s.name for s in styles)
    assert all(isinstance(line, str) for line in skipped)
