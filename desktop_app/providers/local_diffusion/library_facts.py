"""What each model file's header said, remembered by path, size and modification
time in ``data/models/library-cache.json``, so that listing the library again
reads no header that has not changed (a checkpoint's header names thousands of
tensors; parsing 500 of them is most of a cold scan).

A cache file that cannot be read, or an entry of the wrong shape, is ignored
and rebuilt.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

from desktop_app.providers.local_diffusion.json_cache import load_entries, write_atomically
from desktop_app.providers.local_diffusion.library_header import (
    CHECKPOINT,
    EMBEDDING,
    LORA,
    SD1,
    SD2,
    SDXL,
    UNKNOWN,
    HeaderUnreadable,
    kind_and_family,
    read_header,
)

CACHE_NAME = "library-cache.json"
_KINDS = (CHECKPOINT, LORA, EMBEDDING, None)
_FAMILIES = (SD1, SD2, SDXL, UNKNOWN)
_MAX_PROBLEM_CHARS = 500


@dataclasses.dataclass(frozen=True)
class HeaderFacts:
    kind: str | None  # what the tensor names say; None: they do not say
    family: str
    problem: str | None  # why the header could not be read


class FactsCache:
    def __init__(self, file: Path | None) -> None:
        self.file = file
        self._entries = _load(file) if file is not None else {}
        self._changed = False

    def facts(self, path: Path, size: int, mtime_ns: int) -> HeaderFacts:
        """The header's facts, from the cache or by reading the header."""
        key = str(path)
        entry = self._entries.get(key)
        # a LoRA of no known family is read again: a newer ImageDesk may know its layout
        # (its header is small; a checkpoint's is not, and is kept)
        stale_lora = entry is not None and entry["kind"] == LORA and entry["family"] == UNKNOWN
        if entry and not stale_lora and entry["size"] == size and entry["mtime_ns"] == mtime_ns:
            return HeaderFacts(entry["kind"], entry["family"], entry["problem"])
        try:
            kind, family = kind_and_family(read_header(path))
            found = HeaderFacts(kind, family, None)
        except HeaderUnreadable as error:
            found = HeaderFacts(None, UNKNOWN, error.message[:_MAX_PROBLEM_CHARS])
        self._entries[key] = {"size": size, "mtime_ns": mtime_ns,
                              **dataclasses.asdict(found)}
        self._changed = True
        return found

    def save(self) -> None:
        if not self._changed or self.file is None:
            return
        with contextlib.suppress(OSError):
            self.file.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.file, self._entries, separators=(",", ":"))
            self._changed = False


def _load(file: Path) -> dict[str, dict[str, Any]]:
    return load_entries(file, _valid)


def _valid(entry: object) -> bool:
    if not isinstance(entry, dict):
        return False
    problem = entry.get("problem")
    return (all(type(entry.get(k)) is int for k in ("size", "mtime_ns"))
            and entry.get("kind") in _KINDS and entry.get("family") in _FAMILIES
            and (problem is None or (isinstance(problem, str)
                                     and len(problem) <= _MAX_PROBLEM_CHARS)))
