"""The profile's styles, kept as an Automatic1111 ``styles.csv`` (columns ``name``,
``prompt``, ``negative_prompt``), so a user's A1111 file can be imported as it is and
ours opened by A1111. The file is the user's: reading it is bounded, and a row that
cannot be read is reported, never fatal.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

from desktop_app.domain.errors import ImageDeskError, InvalidRequest
from desktop_app.domain.styles import Style

MAX_FILE_BYTES = 2_000_000
MAX_STYLES = 5_000
COLUMNS = ("name", "prompt", "negative_prompt")


class StylesFileError(ImageDeskError):
    """A styles file that cannot be read at all (not CSV text, no name column, too big)."""


def read_styles_csv(path: Path) -> tuple[list[Style], list[str]]:
    """The styles in an A1111 ``styles.csv``, and a line for each row left out."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise StylesFileError(f"{path.name} is larger than "
                                  f"{MAX_FILE_BYTES // 1_000_000} MB; is it a styles file?")
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise StylesFileError(f"{path.name} is not UTF-8 text; save it as UTF-8 CSV.") from None
    except OSError as error:
        raise StylesFileError(f"{path} cannot be read ({error.strerror or error}).") from None
    return parse_styles_csv(text, path.name)


def parse_styles_csv(text: str, name: str = "styles.csv") -> tuple[list[Style], list[str]]:
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        fields = [f.strip().lower() for f in reader.fieldnames or []]
    except csv.Error as error:
        raise StylesFileError(f"{name} is not a CSV file ({error}).") from None
    if "name" not in fields:
        raise StylesFileError(f"{name} has no 'name' column; an Automatic1111 styles file "
                              "starts with: name,prompt,negative_prompt")
    reader.fieldnames = fields
    styles: dict[str, Style] = {}
    skipped: list[str] = []
    try:
        for row_number, row in enumerate(reader, start=2):
            if len(styles) >= MAX_STYLES:
                skipped.append(f"rows after {MAX_STYLES} styles were left out")
                break
            try:
                style = Style(str(row.get("name") or ""), str(row.get("prompt") or ""),
                              str(row.get("negative_prompt") or ""))
            except InvalidRequest as error:
                skipped.append(f"row {row_number}: {error.message}")
                continue
            styles[style.name] = style  # a later row of the same name wins, as in A1111
    except csv.Error as error:
        raise StylesFileError(f"{name} is not a CSV file ({error}).") from None
    return list(styles.values()), skipped


def write_styles_csv(path: Path, styles: list[Style]) -> None:
    """Write atomically, in A1111's column order."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for style in styles:
        writer.writerow((style.name, style.prompt, style.negative_prompt))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(out.getvalue())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class StyleLibrary:
    """The profile's ``styles.csv``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def all(self) -> list[Style]:
        if not self.path.exists():
            return []
        return read_styles_csv(self.path)[0]

    def get(self, names: list[str] | tuple[str, ...]) -> list[Style]:
        """The named styles in the order given; ``InvalidRequest`` names one that is missing."""
        known = {style.name: style for style in self.all()}
        found = []
        for name in names:
            if name not in known:
                choices = ", ".join(sorted(known)[:10]) or "none yet"
                raise InvalidRequest(f"There is no style named {name!r} (styles: {choices}). "
                                     "Add it in the window or with 'imagedesk styles add'.",
                                     field="styles")
            found.append(known[name])
        return found

    def save(self, style: Style) -> None:
        styles = {s.name: s for s in self.all()}
        styles[style.name] = style
        write_styles_csv(self.path, list(styles.values()))

    def remove(self, name: str) -> bool:
        styles = self.all()
        kept = [s for s in styles if s.name != name]
        if len(kept) == len(styles):
            return False
        write_styles_csv(self.path, kept)
        return True

    def import_file(self, source: Path) -> tuple[int, list[str]]:
        """Merge an A1111 styles file (a name already here is replaced); how many
        styles came in and the rows left out."""
        incoming, skipped = read_styles_csv(source)
        styles = {s.name: s for s in self.all()}
        styles.update((s.name, s) for s in incoming)
        write_styles_csv(self.path, list(styles.values()))
        return len(incoming), skipped

    def export_file(self, target: Path) -> int:
        styles = self.all()
        write_styles_csv(target, styles)
        return len(styles)
