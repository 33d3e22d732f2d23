"""The model library's small JSON caches (hashes, header facts): read bounded and
forgiving (a damaged or foreign file reads as empty, a bad entry is dropped), written
atomically (a crash leaves the old file or the new one, never half of one)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_CACHE_BYTES = 64 * 2**20


def load_entries(file: Path, valid: Callable[[object], bool]) -> dict[str, dict[str, Any]]:
    try:
        with file.open("rb") as handle:
            raw = handle.read(MAX_CACHE_BYTES + 1)
        data = json.loads(raw) if len(raw) <= MAX_CACHE_BYTES else None
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(key): entry for key, entry in data.items() if valid(entry)}


def write_atomically(file: Path, entries: dict[str, Any], **dump: Any) -> None:
    """Raise ``OSError`` when the folder cannot be written (the caller decides)."""
    fd, temp = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=file.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(entries, handle, **dump)
        os.replace(temp, file)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
