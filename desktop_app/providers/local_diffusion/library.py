"""The model library: the models the user already has, found where they are, never
copied (GUI side: no torch, bounded work, no hashing here).

Roots, in order: the Hugging Face cache (diffusers repos with a
``model_index.json``), ImageDesk's own models folder, then the folders the user
added (``local.model_folders``). In a folder laid out like Automatic1111's
``stable-diffusion-webui/models`` or ComfyUI's ``models``, the usual subfolders
say what a file is (``Stable-diffusion``/``checkpoints``, ``Lora``/``loras``,
``embeddings``); elsewhere the tensor names do (``library_header``). Folders of
other kinds of model (VAE, ControlNet, upscalers...) are skipped.

A scan reads directory entries and safetensors headers only; ``Entry.hash`` is
filled from the hash cache when known. Hashing unknown files is
``library_hashes.hash_off_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from desktop_app.providers.local_diffusion.config import BUILTIN_TINY, BUILTIN_TINY_LABEL
from desktop_app.providers.local_diffusion.library_facts import CACHE_NAME, FactsCache
from desktop_app.providers.local_diffusion.library_hashes import (
    SHORT,
    HashCache,
    cache_path,
    hash_off_thread,
)
from desktop_app.providers.local_diffusion.library_header import (
    CHECKPOINT,
    EMBEDDING,
    LORA,
    SD1,
    SD2,
    SDXL,
    UNKNOWN,
)
from desktop_app.providers.local_diffusion.model_source import hf_cache_root

MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin", ".pth")
PREVIEW_SUFFIXES = (".preview.png", ".png", ".preview.jpg", ".jpg", ".jpeg", ".webp")
MAX_DEPTH = 8  # below a root; A1111 and ComfyUI users nest a few folders deep
MAX_ENTRIES = 50_000  # directory entries looked at per root
MAX_INDEX_BYTES = 2**20

# folder name (lower case) -> what the files under it are
KIND_FOLDERS = {
    "stable-diffusion": CHECKPOINT, "checkpoints": CHECKPOINT,
    "lora": LORA, "loras": LORA, "lycoris": LORA,
    "embeddings": EMBEDDING, "textual_inversion": EMBEDDING,
}
# folders of models the library does not list (not whole pipelines, LoRAs or embeddings)
OTHER_FOLDERS = frozenset({
    "vae", "vae_approx", "controlnet", "clip", "clip_vision", "text_encoders", "unet",
    "diffusion_models", "upscale_models", "esrgan", "realesrgan", "swinir", "ldsr",
    "gfpgan", "codeformer", "hypernetworks", "style_models", "gligen", "photomaker",
    "insightface", "facerestore_models", "ultralytics", "sams", "deepbooru", "blip",
    "karlo", "vae-approx", "configs", "extensions", "venv", ".git", "__pycache__",
    "repositories", "outputs", "output", "input", "custom_nodes", "node_modules",
    "site-packages", "log", "logs", "cache",
})
TINY_FOLDER = "builtin-tiny"  # where LocalDiffusionConfig.tiny_model_dir builds it
KIND_ORDER = (CHECKPOINT, LORA, EMBEDDING)
SUPPORTED_FAMILIES = (SD1, SDXL)
FAMILY_NAMES = {SD1: "SD 1.x", SD2: "SD 2.x", SDXL: "SDXL", UNKNOWN: "unknown"}


@dataclasses.dataclass(frozen=True)
class Entry:
    """One model the library found."""

    name: str  # the file's name without its suffix, or the Hugging Face id
    kind: str  # checkpoint | lora | embedding
    family: str  # sd1 | sd2 | sdxl | unknown
    path: Path
    size: int  # bytes (a folder: its files together)
    source: str  # "Hugging Face cache", "ImageDesk", or the user's folder
    hash: str | None = None  # A1111 short hash; None until hashed (folders: never)
    preview: Path | None = None
    note: str | None = None  # why it cannot be loaded, or what to know about it
    loadable: bool = True

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "family": self.family,
                "hash": self.hash, "path": str(self.path), "size": self.size,
                "source": self.source, "preview": str(self.preview) if self.preview else None,
                "loadable": self.loadable, "note": self.note}


@dataclasses.dataclass(frozen=True)
class Library:
    entries: tuple[Entry, ...]
    notes: tuple[str, ...]  # roots that could not be scanned (fully), in words

    def hashable(self) -> list[Path]:
        """Single files whose hash is not known yet."""
        return [e.path for e in self.entries if e.hash is None and e.path.is_file()]

    def with_hashes(self, hashes: dict[Path, str]) -> Library:
        return dataclasses.replace(self, entries=tuple(
            dataclasses.replace(e, hash=hashes.get(e.path, e.hash)) for e in self.entries))


@dataclasses.dataclass(frozen=True)
class Root:
    folder: Path
    source: str
    hf_cache: bool = False


async def find_models(models_dir: Path, user_folders: Sequence[Path], *, hashed: bool = True,
                      progress: Callable[[int, int, Path], None] | None = None,
                      hf_cache: Path | None = None) -> Library:
    """The library, scanned in a worker thread; with ``hashed``, every file's short
    hash too (read in a worker thread as well; cached in ``models_dir``)."""
    cache = HashCache(cache_path(models_dir))
    where = roots(hf_cache_root(hf_cache), models_dir, user_folders)
    library = await asyncio.to_thread(scan, where, cache,
                                      FactsCache(models_dir / CACHE_NAME))
    if hashed:
        library = library.with_hashes(await hash_off_thread(cache, library.hashable(),
                                                            progress))
    return library


def roots(hf_cache: Path, models_dir: Path, user_folders: Sequence[Path]) -> list[Root]:
    """Where to look, in order; an A1111 ``models`` folder brings its sibling
    ``embeddings`` folder (A1111 keeps embeddings next to ``models``, not in it)."""
    out = [Root(hf_cache, "Hugging Face cache", hf_cache=True), Root(models_dir, "ImageDesk")]
    for folder in user_folders:
        out.append(Root(folder, str(folder)))
        sibling = folder.parent / "embeddings"
        if (folder.name.lower() == "models" and (folder / "Stable-diffusion").is_dir()
                and sibling.is_dir()):
            out.append(Root(sibling, str(folder)))
    return out


def scan(where: Sequence[Root], cache: HashCache | None = None,
         facts: FactsCache | None = None) -> Library:
    """Every model under ``where``; a file reachable twice is listed once. Headers
    unchanged since ``facts`` saw them are not read again."""
    facts = facts or FactsCache(None)
    entries: list[Entry] = []
    notes: list[str] = []
    seen: set[Path] = set()
    for root in where:
        if not root.folder.is_dir():
            if not root.hf_cache and root.source != "ImageDesk":
                notes.append(f"{root.folder} does not exist or is not a folder; remove it "
                             "with `imagedesk models remove-folder` or fix the path")
            continue
        found = sorted(_hf_cache(root) if root.hf_cache else _walk(root, notes, facts),
                       key=lambda e: (KIND_ORDER.index(e.kind), e.name.lower(), str(e.path)))
        for entry in found:
            key = _real(entry.path)
            if key in seen:
                continue
            seen.add(key)
            if root.source == "ImageDesk" and entry.path.name == TINY_FOLDER:
                entry = dataclasses.replace(entry, name=BUILTIN_TINY, note=BUILTIN_TINY_LABEL)
            if cache is not None and entry.path.is_file():
                known = cache.known(entry.path)
                entry = dataclasses.replace(entry, hash=known[:SHORT] if known else None)
            entries.append(entry)
    facts.save()
    return Library(tuple(entries), tuple(notes))


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


# -- folders ---------------------------------------------------------------------------

def _walk(root: Root, notes: list[str], facts: FactsCache) -> Iterator[Entry]:
    """Depth-first, bounded by depth and entry count; a folder seen before (a
    symlink loop) is not entered again."""
    visited: set[tuple[int, int]] = set()
    budget = [MAX_ENTRIES]
    stack: list[tuple[Path, int, str | None]] = [(root.folder, 0, None)]
    while stack:
        folder, depth, hint = stack.pop()
        try:
            stat = folder.stat()
        except OSError:
            continue
        if (stat.st_dev, stat.st_ino) in visited:
            continue
        visited.add((stat.st_dev, stat.st_ino))
        if (folder / "model_index.json").is_file() and depth > 0:
            yield _diffusers_folder(folder, folder.name, root.source)
            continue
        try:
            with os.scandir(folder) as listing:
                items = sorted(listing, key=lambda item: item.name)
        except OSError:
            if depth == 0:
                notes.append(f"{folder} cannot be read; check its permissions")
            continue
        subfolders = []
        here = {item.name for item in items}
        for item in items:
            budget[0] -= 1
            if budget[0] < 0:
                notes.append(f"{root.folder} holds more than {MAX_ENTRIES} files; the "
                             "scan stopped there: add its model folders one by one")
                return
            try:
                is_dir = item.is_dir()
            except OSError:
                continue
            if is_dir:
                lowered = item.name.lower()
                if lowered in OTHER_FOLDERS or depth + 1 > MAX_DEPTH:
                    continue
                subfolders.append((Path(item.path), depth + 1, KIND_FOLDERS.get(lowered, hint)))
            elif item.name.lower().endswith(MODEL_SUFFIXES) and not item.name.startswith("."):
                entry = _file(Path(item.path), hint, root.source, facts, here)
                if entry is not None:
                    yield entry
        stack.extend(reversed(subfolders))


def _file(path: Path, hint: str | None, source: str, facts: FactsCache,
          siblings: set[str]) -> Entry | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    size = stat.st_size
    suffix = path.suffix.lower()
    name = path.name[: -len(suffix)]
    preview = _preview(path.parent, name, siblings)
    if suffix != ".safetensors":
        if hint is None and suffix in (".bin", ".pth"):
            return None  # loose .bin files are parts of other things, not library models
        return Entry(name, hint or CHECKPOINT, UNKNOWN, path, size, source, preview=preview,
                     loadable=False,
                     note=f"a {suffix} file is a Python pickle, which ImageDesk does not load "
                          "because it can run code; use a .safetensors version")
    found = facts.facts(path, size, stat.st_mtime_ns)
    if found.problem is not None:
        return Entry(name, hint or CHECKPOINT, UNKNOWN, path, size, source, preview=preview,
                     loadable=False, note=f"this file {found.problem}")
    family = found.family
    kind = found.kind or hint or CHECKPOINT
    note = None
    if family == UNKNOWN:
        note = (f"not recognised as an SD 1.x or SDXL {kind} (ImageDesk supports "
                f"{' and '.join(FAMILY_NAMES[f] for f in SUPPORTED_FAMILIES)})")
    elif family not in SUPPORTED_FAMILIES:
        note = f"{FAMILY_NAMES[family]} is not supported yet"
    elif hint is not None and kind != hint:
        note = f"a {kind}, though it sits in a folder of {hint}s"
    return Entry(name, kind, family, path, size, source, preview=preview,
                 loadable=family in SUPPORTED_FAMILIES, note=note)


def _preview(folder: Path, name: str, siblings: set[str]) -> Path | None:
    for suffix in PREVIEW_SUFFIXES:
        if name + suffix in siblings and (folder / f"{name}{suffix}").is_file():
            return folder / f"{name}{suffix}"
    return None


# -- diffusers folders and the Hugging Face cache --------------------------------------

def _hf_cache(root: Root) -> Iterator[Entry]:
    """``models--org--name/snapshots/<rev>`` with a ``model_index.json``: the newest
    snapshot of each repo (the one ``refs/main`` names, when it is there)."""
    try:
        repos = sorted(p for p in root.folder.iterdir() if p.name.startswith("models--"))
    except OSError:
        return
    for repo in repos[:MAX_ENTRIES]:
        snapshot = _snapshot(repo)
        if snapshot is not None:
            name = repo.name.removeprefix("models--").replace("--", "/")
            yield _diffusers_folder(snapshot, name, root.source)


def _snapshot(repo: Path) -> Path | None:
    snapshots = repo / "snapshots"
    try:
        ref = (repo / "refs" / "main").read_text(encoding="utf-8").strip()[:80]
        if ref and (snapshots / ref / "model_index.json").is_file():
            return snapshots / ref
    except (OSError, UnicodeDecodeError):
        pass
    try:
        with_index = [s for s in snapshots.iterdir() if (s / "model_index.json").is_file()]
    except OSError:
        return None
    return max(with_index, key=lambda s: s.stat().st_mtime, default=None)


def _diffusers_folder(folder: Path, name: str, source: str) -> Entry:
    family, note = UNKNOWN, None
    try:
        with (folder / "model_index.json").open("rb") as handle:
            index = json.loads(handle.read(MAX_INDEX_BYTES))
        pipeline = str(index.get("_class_name", "")) if isinstance(index, dict) else ""
    except (OSError, ValueError, RecursionError, UnicodeDecodeError):
        pipeline, note = "", "its model_index.json cannot be read"
    if "XL" in pipeline:
        family = SDXL
    elif pipeline.startswith("StableDiffusion") and "3" not in pipeline:
        family = SD2 if _cross_attention_dim(folder) == 1024 else SD1
    if note is None and family == UNKNOWN:
        note = f"a {pipeline or 'diffusers'} pipeline, not SD 1.x or SDXL"
    elif note is None and family not in SUPPORTED_FAMILIES:
        note = f"{FAMILY_NAMES[family]} is not supported yet"
    return Entry(name, CHECKPOINT, family, folder, _folder_size(folder), source,
                 preview=None, note=note, loadable=family in SUPPORTED_FAMILIES)


def _cross_attention_dim(folder: Path) -> object:
    try:
        with (folder / "unet" / "config.json").open("rb") as handle:
            config = json.loads(handle.read(MAX_INDEX_BYTES))
    except (OSError, ValueError, RecursionError, UnicodeDecodeError):
        return None
    return config.get("cross_attention_dim") if isinstance(config, dict) else None


def _folder_size(folder: Path) -> int:
    total = 0
    for count, (here, _dirs, files) in enumerate(os.walk(folder)):
        if count > 64:  # a diffusers folder has a handful of subfolders
            break
        for name in files:
            with contextlib.suppress(OSError):  # follows HF blob links
                total += os.stat(os.path.join(here, name)).st_size
    return total
