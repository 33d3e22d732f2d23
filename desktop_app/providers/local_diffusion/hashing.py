"""Short, stable hashes of model weights for the gallery's metadata.

A single file gets the first 10 hex digits of its SHA-256 (what Automatic1111
calls the "AutoV2" hash, so the two apps agree). A folder gets the SHA-256 of
its files' relative paths and content hashes. Files in a Hugging Face cache
are links to blobs named by their content hash, which is used as is; other
hashes are cached by path, size and modification time, so each file is read
once.

The cache is the model library's (``library_hashes.HashCache``): read bounded, a
damaged file or entry ignored rather than trusted, written atomically through a
temporary file of its own, so the worker and the window can both write it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from desktop_app.providers.local_diffusion.library_hashes import SHORT, HashCache


def model_hash(location: Path, cache_file: Path) -> str:
    """10 hex digits identifying the weights at ``location`` (a file or a folder)."""
    cache = HashCache(cache_file)
    try:
        if location.is_file():
            return cache.sha256(location)[:SHORT]
        digest = hashlib.sha256()
        for path in sorted(p for p in location.rglob("*") if p.is_file()):
            rel = path.relative_to(location).as_posix()
            if rel.startswith(".") or "/." in rel:
                continue
            digest.update(f"{rel}\0{cache.sha256(path)}\n".encode())
        return digest.hexdigest()[:SHORT]
    finally:
        cache.save()
