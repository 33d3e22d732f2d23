"""Short, stable hashes of model weights for the gallery's metadata.

A single file gets the first 10 hex digits of its SHA-256 (what Automatic1111
calls the "AutoV2" hash, so the two apps agree). A folder gets the SHA-256 of
its files' relative paths and content hashes. Files in a Hugging Face cache
are links to blobs named by their content hash, which is used as is; other
hashes are cached by path, size and modification time, so each file is read
once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path

_BLOB_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 4 * 1024 * 1024


def _file_sha256(path: Path, cache: dict[str, dict[str, object]]) -> str:
    real = path.resolve()
    if path.is_symlink() and real.parent.name == "blobs" and _BLOB_SHA256.match(real.name):
        return real.name
    stat = real.stat()
    key = str(real)
    entry = cache.get(key)
    if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
        return str(entry["sha256"])
    digest = hashlib.sha256()
    with real.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    cache[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": value}
    return value


def _load_cache(path: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_cache(path: Path, cache: dict[str, dict[str, object]]) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache, indent=0, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)


def model_hash(location: Path, cache_file: Path) -> str:
    """10 hex digits identifying the weights at ``location`` (a file or a folder)."""
    cache = _load_cache(cache_file)
    if location.is_file():
        value = _file_sha256(location, cache)
    else:
        digest = hashlib.sha256()
        for path in sorted(p for p in location.rglob("*") if p.is_file()):
            rel = path.relative_to(location).as_posix()
            if rel.startswith(".") or "/." in rel:
                continue
            digest.update(f"{rel}\0{_file_sha256(path, cache)}\n".encode())
        value = digest.hexdigest()
    _save_cache(cache_file, cache)
    return value[:10]
