"""The wildcards folder: ``__name__`` in a prompt draws a line from ``name.txt`` here
(``__colors/warm__`` from ``colors/warm.txt``). Lines starting with ``#`` are
comments; blank lines are skipped. Files are the user's, so each read is bounded
and a name can never reach outside the folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from desktop_app.domain.dynamic_prompts import WildcardError

MAX_FILE_BYTES = 1_000_000
MAX_LINES = 10_000


class WildcardFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[str, tuple[tuple[int, int], tuple[str, ...]]] = {}

    def lines(self, name: str) -> tuple[str, ...]:
        """The usable lines of wildcard ``name``; ``WildcardError`` says what to fix."""
        path = self._path(name)
        try:
            stat = path.stat()
        except OSError:
            raise WildcardError(
                f"There is no wildcard file for __{name}__: add {name}.txt to "
                f"{self.folder}.") from None
        stamp = (stat.st_size, stat.st_mtime_ns)
        cached = self._cache.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        if stat.st_size > MAX_FILE_BYTES:
            raise WildcardError(f"The wildcard file {name}.txt is larger than "
                                f"{MAX_FILE_BYTES // 1_000_000} MB.")
        try:
            text = path.read_bytes()[:MAX_FILE_BYTES].decode("utf-8-sig")
        except UnicodeDecodeError:
            raise WildcardError(f"The wildcard file {name}.txt is not UTF-8 text; save it "
                                "as UTF-8.") from None
        except OSError as error:
            raise WildcardError(f"The wildcard file {name}.txt cannot be read "
                                f"({error.strerror or error}).") from None
        found = tuple(line.strip() for line in text.splitlines()[:MAX_LINES]
                      if line.strip() and not line.lstrip().startswith("#"))
        self._cache[name] = (stamp, found)
        return found

    def names(self) -> list[str]:
        """Every wildcard the folder offers, as it is written in a prompt."""
        if not self.folder.is_dir():
            return []
        found = []
        for root, dirs, files in os.walk(self.folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            relative = Path(root).relative_to(self.folder)
            found += [(relative / f[:-4]).as_posix().removeprefix("./")
                      for f in sorted(files) if f.endswith(".txt")]
            if len(found) > MAX_LINES:
                break
        return found

    def _path(self, name: str) -> Path:
        parts = name.split("/")
        if any(part in ("", ".", "..") or part != part.strip() for part in parts):
            raise WildcardError(f"__{name}__ is not a wildcard name: use letters, digits, "
                                "'-', '_' and '/' between folder names.")
        return self.folder.joinpath(*parts).with_name(parts[-1] + ".txt")
