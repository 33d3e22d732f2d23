"""A1111 short hashes (the first 10 hex digits of a file's SHA-256) of the model
library's files, remembered by path, size and modification time.

The cache is ``data/models/hash-cache.json``, the file the local worker's
``hashing.model_hash`` keeps in the same shape, so a checkpoint hashed by
either is not read again by the other. A cache file that cannot be read, or an
entry of the wrong shape, is ignored and rebuilt. Hashing reads multi-GB files:
``HashCache.sha256`` blocks, so faces call ``hash_off_thread`` (it runs in a
worker thread), never it directly on the thread that draws the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from desktop_app.providers.local_diffusion.json_cache import load_entries, write_atomically

CACHE_NAME = "hash-cache.json"
# A1111's Lora extension names a .safetensors LoRA by kohya's "addnet" hash: the
# SHA-256 of the file after its header (so editing the metadata keeps the hash)
ADDNET_CACHE_NAME = "lora-hash-cache.json"
SHORT = 10
_CHUNK = 4 * 2**20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def cache_path(models_dir: Path) -> Path:
    return models_dir / CACHE_NAME


class HashCache:
    """The cache file's entries: resolved path -> {size, mtime_ns, sha256}."""

    def __init__(self, file: Path, *, after_header: bool = False) -> None:
        self.file = file
        self.after_header = after_header  # the addnet hash: the bytes after the header
        self._entries = _load(file)
        self._changed = False

    def known(self, path: Path) -> str | None:
        """The file's SHA-256 when it is cached for its current size and time (or
        the file is a Hugging Face blob, named by it), else None; never reads it."""
        try:
            real = path.resolve()
            if (not self.after_header and real.parent.name == "blobs"
                    and _SHA256.match(real.name)):
                return real.name
            stat = real.stat()
        except (OSError, RuntimeError):
            return None
        entry = self._entries.get(str(real))
        if entry and entry["size"] == stat.st_size and entry["mtime_ns"] == stat.st_mtime_ns:
            return str(entry["sha256"])
        return None

    def sha256(self, path: Path) -> str:
        """The file's SHA-256, from the cache or by reading it in chunks (blocking)."""
        cached = self.known(path)
        if cached is not None:
            return cached
        real = path.resolve()
        stat = real.stat()
        digest = hashlib.sha256()
        with real.open("rb") as handle:
            if self.after_header:
                handle.seek(8 + int.from_bytes(handle.read(8), "little"))
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        value = digest.hexdigest()
        self._entries[str(real)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                                    "sha256": value}
        self._changed = True
        return value

    def save(self) -> None:
        """Write the cache atomically when it changed; a folder that cannot be written
        only costs a rehash next time."""
        if not self._changed:
            return
        with contextlib.suppress(OSError):
            self.file.parent.mkdir(parents=True, exist_ok=True)
            on_disk = _load(self.file)  # keep what the worker added meanwhile
            on_disk.update(self._entries)
            write_atomically(self.file, on_disk, indent=0, sort_keys=True)
            self._changed = False


def _load(file: Path) -> dict[str, dict[str, Any]]:
    return load_entries(file, _valid)


def _valid(entry: object) -> bool:
    return (isinstance(entry, dict)
            and all(isinstance(entry.get(k), int) and not isinstance(entry.get(k), bool)
                    for k in ("size", "mtime_ns"))
            and isinstance(entry.get("sha256"), str) and bool(_SHA256.match(entry["sha256"])))


def hash_files(cache: HashCache, paths: Sequence[Path],
               progress: Callable[[int, int, Path], None] | None = None) -> dict[Path, str]:
    """Short hashes of ``paths`` (blocking; unreadable files are left out), the cache
    saved at the end. ``progress(done, total, path)`` is called before each file."""
    out: dict[Path, str] = {}
    try:
        for done, path in enumerate(paths):
            if progress is not None:
                progress(done, len(paths), path)
            with contextlib.suppress(OSError, RuntimeError):
                out[path] = cache.sha256(path)[:SHORT]
    finally:
        cache.save()
    return out


async def hash_off_thread(cache: HashCache, paths: Sequence[Path],
                          progress: Callable[[int, int, Path], None] | None = None
                          ) -> dict[Path, str]:
    """``hash_files`` in a worker thread, so the caller's loop (the window's) keeps
    running while multi-GB files are read."""
    return await asyncio.to_thread(hash_files, cache, paths, progress)
