"""The LoRA and embedding files a job's prompt names, found in the model library
(GUI side: no torch; blocking file reads, so callers run it in a worker thread).

A LoRA is named by its file's stem, as A1111 does (``<lora:film_grain:0.8>`` is
``film_grain.safetensors`` in a ``Lora`` folder); an embedding by its stem written
as a word of the prompt. Each comes back with the short hash A1111 writes in the
infotext: a LoRA's ``sshs_model_hash`` metadata or kohya's "addnet" hash (the
SHA-256 of the file after its header), an embedding's file SHA-256, both cut to
12 hex digits (``Lora hashes`` / ``TI hashes``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.prompt_networks import embedding_words, parse_loras
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.local_diffusion.library import FAMILY_NAMES, Entry, roots, scan
from desktop_app.providers.local_diffusion.library_facts import CACHE_NAME, FactsCache
from desktop_app.providers.local_diffusion.library_hashes import (
    ADDNET_CACHE_NAME,
    HashCache,
    cache_path,
)
from desktop_app.providers.local_diffusion.library_header import (
    EMBEDDING,
    LORA,
    SD1,
    SDXL,
    HeaderUnreadable,
    read_header,
)
from desktop_app.providers.local_diffusion.messages import NetworkFile
from desktop_app.providers.local_diffusion.model_source import hf_cache_root

A1111_SHORT = 12  # A1111's Lora and textual-inversion short hashes
_HEX = re.compile(r"^(0x)?[0-9a-fA-F]{12,64}$")


@dataclasses.dataclass(frozen=True)
class NetworkIndex:
    """The library's LoRAs and embeddings by name, and where it looked."""

    loras: dict[str, Entry]
    embeddings: dict[str, Entry]
    searched: tuple[Path, ...]

    def lora(self, name: str) -> Entry | None:
        found = self.loras.get(name)
        if found is None:  # A1111 matches the case; a file system may not
            found = next((e for n, e in self.loras.items() if n.lower() == name.lower()), None)
        return found


@dataclasses.dataclass(frozen=True)
class JobNetworks:
    prompt: str  # what the text encoder reads: no LoRA tags, embeddings spelled as their files
    negative_prompt: str
    loras: tuple[NetworkFile, ...]
    embeddings: tuple[NetworkFile, ...]

    def details(self) -> dict[str, str]:
        """The A1111 infotext fields of this job's networks (saving writes them)."""
        out = {}
        if self.loras:
            out["loras"] = ", ".join(f"{f.name}:{f.weight:g}" for f in self.loras)
            out["lora_hashes"] = _hash_list(self.loras)
        if self.embeddings:
            out["ti_hashes"] = _hash_list(self.embeddings)
        return out


def network_index(models_dir: Path, folders: Sequence[Path],
                  hf_cache: Path | None = None) -> NetworkIndex:
    """Every LoRA and embedding of the library (headers only; blocking)."""
    where = roots(hf_cache_root(hf_cache), models_dir, folders)
    library = scan(where, None, FactsCache(models_dir / CACHE_NAME))
    loras: dict[str, Entry] = {}
    embeddings: dict[str, Entry] = {}
    for entry in library.entries:
        table = loras if entry.kind == LORA else embeddings if entry.kind == EMBEDDING else None
        if table is not None:
            table.setdefault(entry.name, entry)  # the first found wins, as in the listing
    return NetworkIndex(loras, embeddings,
                        tuple(r.folder for r in where if not r.hf_cache))


def missing_loras(request: GenerationRequest, index: NetworkIndex,
                  model_family: str | None = None) -> InvalidRequest | None:
    """Why the request cannot run here for its LoRAs (not installed, not loadable, made
    for the other family than ``model_family``, when that is known)."""
    for tag in request.loras:
        entry = index.lora(tag.name)
        if entry is None:
            where = ", ".join(str(p) for p in index.searched)
            return InvalidRequest(
                f"The LoRA {tag.name!r} is not installed: ImageDesk looked for "
                f"{tag.name}.safetensors in {where} (and their Lora, loras and LyCORIS "
                "folders). Put the file there or add its folder with `imagedesk models "
                "add-folder PATH`.", field="prompt")
        if not entry.loadable or entry.path.suffix.lower() != ".safetensors":
            return InvalidRequest(f"The LoRA {tag.name!r} ({entry.path}) cannot be used: "
                                  f"{entry.note or 'it is not a .safetensors file'}.",
                                  field="prompt")
        if _other_family(entry.family, model_family):
            return InvalidRequest(
                f"The LoRA {tag.name!r} is made for {FAMILY_NAMES[entry.family]} models and "
                f"this job's model is {FAMILY_NAMES[str(model_family)]}: use an "
                f"{FAMILY_NAMES[str(model_family)]} LoRA or another model.", field="prompt")
    return None


def _other_family(family: str, model_family: str | None) -> bool:
    known = (SD1, SDXL)
    return model_family in known and family in known and family != model_family


def job_networks(request: GenerationRequest, index: NetworkIndex, models_dir: Path,
                 model_family: str | None = None) -> JobNetworks:
    """The files, weights and hashes of the request's LoRAs and embeddings; raises
    ``InvalidRequest`` for a LoRA that is not installed or made for the other family.
    Embeddings of the other family are left out, as A1111 skips them. Blocking
    (hashes files the first time; cached by path, size and time)."""
    problem = missing_loras(request, index, model_family)
    if problem is not None:
        raise problem
    text = parse_loras(request.prompt).text
    usable = [n for n, e in index.embeddings.items()
              if e.loadable and e.path.suffix.lower() == ".safetensors"
              and not _other_family(e.family, model_family)]
    used = embedding_words((text, request.negative_prompt), usable)
    if not request.loras and not used:  # most jobs: no hash cache to read or write
        return JobNetworks(text, request.negative_prompt, (), ())
    addnet = HashCache(models_dir / ADDNET_CACHE_NAME, after_header=True)
    full = HashCache(cache_path(models_dir))
    loras = []
    for tag in request.loras:
        entry = index.lora(tag.name)
        assert entry is not None
        loras.append(NetworkFile(tag.name, entry.path, tag.weight, _lora_hash(entry, addnet),
                                 tag.unet_weight))
    embeddings = tuple(
        NetworkFile(name, index.embeddings[name].path,
                    short_hash=_short(full, index.embeddings[name].path))
        for name in used)
    addnet.save()
    full.save()
    return JobNetworks(_spelled(text, used), _spelled(request.negative_prompt, used),
                       tuple(loras), embeddings)


def _lora_hash(entry: Entry, addnet: HashCache) -> str:
    """A1111 takes the trainer's ``sshs_model_hash`` when the file carries one."""
    try:
        stored = read_header(entry.path).metadata.get("sshs_model_hash", "")
    except HeaderUnreadable:
        stored = ""
    if _HEX.match(stored):
        return stored.removeprefix("0x").lower()[:A1111_SHORT]
    return _short(addnet, entry.path)


def _short(cache: HashCache, path: Path) -> str:
    try:
        return cache.sha256(path)[:A1111_SHORT]
    except OSError:
        return ""


def _hash_list(files: tuple[NetworkFile, ...]) -> str:
    """``name: hash, name2: hash2`` as A1111 writes it (":" and "," taken out of names)."""
    return ", ".join(f"{f.name.replace(':', '').replace(',', '')}: {f.short_hash}"
                     for f in files if f.short_hash)


def _spelled(text: str, names: list[str]) -> str:
    """Each embedding word written as its file's name: the token it is loaded as."""
    if not names:
        return text
    pattern = re.compile("|".join(
        rf"(?<![^\s,()\[\]{{}}<>:|\"']){re.escape(n)}(?![^\s,()\[\]{{}}<>:|\"'])"
        for n in sorted(names, key=len, reverse=True)), re.IGNORECASE)
    by_lower = {n.lower(): n for n in names}
    return pattern.sub(lambda m: by_lower[m.group(0).lower()], text)
