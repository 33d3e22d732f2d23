"""The model library on 500 model files laid out like an Automatic1111 install
(issue 14.2): a scan without hashing, the first full list (every file hashed:
cold cache) and a list with every hash cached (warm cache), each against a
baseline of the same run on the same tree: ``os.walk`` + ``stat`` of every file
for the scans, a plain ``hashlib.sha256`` loop over the files for the cold list.

Headers are as large as real ones (an SDXL checkpoint names ~2,500 tensors, an
SD 1.x one ~1,100, a LoRA ~700); the tensor data is small so that hashing 500
files fits in a benchmark run.

Run: .venv/bin/python bench/bench_model_library.py
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _harness import median, record

from desktop_app.providers.local_diffusion.library import find_models
from desktop_app.providers.local_diffusion.library_header import _fast_decoders

CHECKPOINTS_SD1, CHECKPOINTS_SDXL, LORAS, EMBEDDINGS = 60, 40, 300, 100
DATA_BYTES = 256 * 1024
HEADERS, HASHES = "library-cache.json", "hash-cache.json"


def _write(path: Path, names: list[str], seed: int) -> None:
    step = max(2, DATA_BYTES // max(1, len(names)) // 2 * 2)
    table: dict[str, object] = {"__metadata__": {"format": "pt"}}
    for i, name in enumerate(names):
        table[name] = {"dtype": "F16", "shape": [step // 2],
                       "data_offsets": [i * step, (i + 1) * step]}
    header = json.dumps(table).encode()
    header += b" " * (-len(header) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(header)) + header)
        handle.write(seed.to_bytes(8, "little") * (len(names) * step // 8 + 1))


def build_tree(root: Path) -> Path:
    models = root / "stable-diffusion-webui" / "models"
    sd1 = [f"model.diffusion_model.input_blocks.{i}.weight" for i in range(700)] + [
        f"cond_stage_model.transformer.text_model.encoder.layers.{i}.weight"
        for i in range(400)]
    sdxl = [f"model.diffusion_model.input_blocks.{i}.weight" for i in range(1700)] + [
        f"conditioner.embedders.{e}.layer.{i}.weight" for e in (0, 1) for i in range(400)]
    lora = [f"lora_unet_down_blocks_{i}_attn.lora_{d}.weight" for i in range(350)
            for d in ("down", "up")]
    seed = 0
    for count, folder, names in ((CHECKPOINTS_SD1, "Stable-diffusion", sd1),
                                 (CHECKPOINTS_SDXL, "Stable-diffusion/XL", sdxl),
                                 (LORAS, "Lora", lora), (EMBEDDINGS, "../embeddings",
                                                         ["emb_params"])):
        for _ in range(count):
            seed += 1
            _write(models / folder / f"model_{seed:04d}.safetensors", names, seed)
    return models


def walk_and_stat(root: Path) -> int:
    count = 0
    for here, _dirs, files in os.walk(root.parent):
        for name in files:
            os.stat(os.path.join(here, name))
            count += 1
    return count


def walk_and_parse(root: Path) -> int:
    """The work a cold scan cannot skip: every header read and parsed as JSON."""
    count = 0
    for here, _dirs, files in os.walk(root.parent):
        for name in files:
            with open(os.path.join(here, name), "rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                json.loads(handle.read(length))
            count += 1
    return count


def hash_all(root: Path) -> int:
    count = 0
    for here, _dirs, files in os.walk(root.parent):
        for name in files:
            if name.endswith(".safetensors"):
                digest = hashlib.sha256()
                with open(os.path.join(here, name), "rb") as handle:
                    while chunk := handle.read(4 * 2**20):
                        digest.update(chunk)
                count += 1
    return count


CPU: dict[str, list[float]] = {}


def timed(action: Callable[[], object], label: str = "") -> float:
    start, cpu = time.perf_counter(), time.process_time()
    action()
    CPU.setdefault(label, []).append(time.process_time() - cpu)
    return time.perf_counter() - start


def main() -> None:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as temp:
        base = Path(temp)
        models = build_tree(base)
        profile = base / "profile" / "models"

        def listing(hashed: bool, *, forget: tuple[str, ...] = ()) -> int:
            for name in forget:
                (profile / name).unlink(missing_ok=True)
            library = asyncio.run(find_models(profile, [models], hashed=hashed,
                                              hf_cache=base / "hf"))
            return len(library.entries)

        assert listing(False) == 500
        walks, parses, scans, warm_scans = [], [], [], []
        for _ in range(5):  # interleaved, so all see the same page cache
            walks.append(timed(lambda: walk_and_stat(models)))
            parses.append(timed(lambda: walk_and_parse(models), "parse"))
            scans.append(timed(lambda: listing(False, forget=(HEADERS,)), "scan"))
            warm_scans.append(timed(lambda: listing(False)))
        plain_hash = timed(lambda: hash_all(models))
        cold = timed(lambda: listing(True, forget=(HEADERS, HASHES)))
        warms, warm_walks = [], []
        for _ in range(5):
            warm_walks.append(timed(lambda: walk_and_stat(models)))
            warms.append(timed(lambda: listing(True)))
        size = sum(p.stat().st_size for p in models.parent.rglob("*.safetensors"))
    walk, scan, warm, warm_walk = median(walks), median(scans), median(warms), median(warm_walks)
    warm_scan, parse = median(warm_scans), median(parses)
    cpu_scan, cpu_parse = median(CPU["scan"]), median(CPU["parse"])
    record("bench_model_library.py — model library scan of 500 files (issue 14.2)", [
        f"tree: {CHECKPOINTS_SD1} SD 1.x + {CHECKPOINTS_SDXL} SDXL checkpoints, {LORAS} LoRAs, "
        f"{EMBEDDINGS} embeddings in an A1111 layout, real-sized headers, "
        f"{size / 2**20:.0f} MiB in all; medians of 5 interleaved runs; machine load "
        f"(1-minute average, {os.cpu_count()} CPUs) {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after; header decoder: "
        f"{'msgspec' if _fast_decoders() is not None else 'json (msgspec not installed)'}",
        f"scan without hashing, cold (no header cache: every header read and classified): "
        f"{scan * 1000:.0f} ms vs os.walk + stat of the same tree {walk * 1000:.1f} ms: "
        f"ratio **{scan / walk:.0f}**; target < 1 s: {'met' if scan < 1 else 'NOT met'}",
        f"  the same cold scan vs os.walk + reading and json.loads of every header (the work "
        f"it cannot skip) {parse * 1000:.0f} ms: ratio **{scan / parse:.2f}**; CPU time "
        f"{cpu_scan * 1000:.0f} ms vs {cpu_parse * 1000:.0f} ms (this machine is shared: "
        "wall time is several times CPU time)",
        f"scan without hashing, warm (headers cached): {warm_scan * 1000:.0f} ms: ratio "
        f"**{warm_scan / walk:.0f}**",
        f"first list with hashes (cold caches: every header parsed, every file read and "
        f"hashed, caches written): {cold * 1000:.0f} ms vs parsing every header and a plain "
        f"hashlib loop over the same files {(parse + plain_hash) * 1000:.0f} ms: ratio "
        f"**{cold / (parse + plain_hash):.2f}**",
        f"list with hashes, all cached (warm caches: no file read whole): {warm * 1000:.0f} ms "
        f"vs os.walk + stat {warm_walk * 1000:.1f} ms: ratio **{warm / warm_walk:.0f}**",
    ])


if __name__ == "__main__":
    main()
