"""The model library on real files: A1111 and ComfyUI trees, a Hugging Face cache, a
symlink loop, broken headers, and the hash cache (issue 14.2)."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_app.providers.local_diffusion import library
from desktop_app.providers.local_diffusion.library import find_models
from desktop_app.providers.local_diffusion.library_hashes import HashCache, hash_off_thread
from desktop_app.providers.local_diffusion.library_header import (
    MAX_HEADER_BYTES,
    HeaderUnreadable,
    parse_header,
)
from tests.fakes.model_files import a1111_tree, comfyui_tree, short_hash, write_model
from tests.providers.local_diffusion.support import write_safetensors


def found(tmp_path: Path, *folders: Path, hashed: bool = True) -> library.Library:
    return asyncio.run(find_models(tmp_path / "profile" / "models", list(folders),
                                   hashed=hashed, hf_cache=tmp_path / "hf"))


def by_name(lib: library.Library) -> dict[str, library.Entry]:
    return {entry.name: entry for entry in lib.entries}


def test_an_a1111_models_folder_lists_each_kind_with_family_hash_and_preview(
        tmp_path: Path) -> None:
    files = a1111_tree(tmp_path)
    entries = by_name(found(tmp_path, tmp_path / "stable-diffusion-webui" / "models"))
    assert {n: (e.kind, e.family, e.loadable) for n, e in entries.items()} == {
        "v1-5-pruned": ("checkpoint", "sd1", True),
        "ponyDiffusionV6XL": ("checkpoint", "sdxl", True),
        "add_detail": ("lora", "sd1", True),
        "xl_more_art": ("lora", "sdxl", True),
        "easynegative": ("embedding", "sd1", True),  # from the sibling embeddings folder
        "old-model": ("checkpoint", "unknown", False),
    }  # the VAE folder is not listed
    for name, path in files.items():
        assert entries[name].hash == short_hash(path)
        assert entries[name].size == path.stat().st_size
    assert entries["v1-5-pruned"].preview == files["v1-5-pruned"].with_suffix(".preview.png")
    assert entries["add_detail"].preview is None
    assert "pickle" in (entries["old-model"].note or "")


def test_a_comfyui_tree_added_at_its_top_finds_its_models_and_skips_controlnets(
        tmp_path: Path) -> None:
    files = comfyui_tree(tmp_path)
    entries = by_name(found(tmp_path, tmp_path / "ComfyUI"))
    assert {n: (e.kind, e.family) for n, e in entries.items()} == {
        "juggernautXL": ("checkpoint", "sdxl"), "detail_tweaker_xl": ("lora", "sdxl"),
        "negativeXL": ("embedding", "sdxl")}
    assert entries["detail_tweaker_xl"].preview == files["detail_tweaker_xl"].with_suffix(".png")


def test_a_plain_folder_tells_kinds_apart_by_tensor_names(tmp_path: Path) -> None:
    for what in ("sd1_checkpoint", "sdxl_lora", "sdxl_embedding"):
        write_model(tmp_path / "mixed" / f"{what}.safetensors", what)
    entries = by_name(found(tmp_path, tmp_path / "mixed", hashed=False))
    assert {n: (e.kind, e.family) for n, e in entries.items()} == {
        "sd1_checkpoint": ("checkpoint", "sd1"), "sdxl_lora": ("lora", "sdxl"),
        "sdxl_embedding": ("embedding", "sdxl")}
    assert all(e.hash is None for e in entries.values())  # not hashed, not cached


def test_broken_and_foreign_files_are_listed_with_a_note_not_a_crash(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "Stable-diffusion"
    folder.mkdir(parents=True)
    (folder / "truncated.safetensors").write_bytes(struct.pack("<Q", 500) + b"{}")
    (folder / "garbage.safetensors").write_bytes(b"\xff" * 40)
    whole = write_model(tmp_path / "whole.safetensors", "sd1_checkpoint")
    (folder / "cut.safetensors").write_bytes(whole.read_bytes()[:-10])
    import numpy as np
    from safetensors.numpy import save_file
    save_file({"transformer.blocks.0.weight": np.zeros(2, np.float16)},
              str(folder / "flux.safetensors"))
    entries = by_name(found(tmp_path, tmp_path / "models", hashed=False))
    assert not any(e.loadable for e in entries.values())
    assert "incomplete" in (entries["truncated"].note or "")
    assert "not a .safetensors file" in (entries["garbage"].note or "")
    assert "incomplete" in (entries["cut"].note or "")
    assert "not recognised as an SD 1.x or SDXL" in (entries["flux"].note or "")


def test_a_symlink_loop_and_deep_nesting_end_the_scan(tmp_path: Path) -> None:
    root = tmp_path / "loras"
    write_model(root / "a" / "one.safetensors", "sd1_lora")
    os.symlink(root, root / "a" / "back-to-top")
    deep = root.joinpath(*["d"] * (library.MAX_DEPTH + 2))
    write_model(deep / "too-deep.safetensors", "sd1_lora")
    names = [e.name for e in found(tmp_path, root, hashed=False).entries]
    assert names == ["one"]


def test_the_scan_stops_at_its_file_budget_and_says_so(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library, "MAX_ENTRIES", 5)
    for i in range(10):
        write_model(tmp_path / "many" / f"m{i}.safetensors", "sd1_lora", seed=i)
    lib = found(tmp_path, tmp_path / "many", hashed=False)
    assert len(lib.entries) == 5
    assert any("more than 5 files" in note for note in lib.notes)


def test_a_missing_user_folder_is_a_note(tmp_path: Path) -> None:
    lib = found(tmp_path, tmp_path / "gone")
    assert lib.entries == () and "gone does not exist" in lib.notes[0]


def test_the_hugging_face_cache_lists_diffusers_repos_by_id(tmp_path: Path) -> None:
    repo = tmp_path / "hf" / "models--stabilityai--stable-diffusion-xl-base-1.0"
    snapshot = repo / "snapshots" / "abc123"
    (snapshot / "unet").mkdir(parents=True)
    (snapshot / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionXLPipeline"}))
    (snapshot / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"x" * 1000)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (tmp_path / "hf" / "models--someone--a-text-model" / "snapshots" / "r").mkdir(parents=True)
    [entry] = found(tmp_path).entries
    assert (entry.name, entry.kind, entry.family, entry.loadable) == (
        "stabilityai/stable-diffusion-xl-base-1.0", "checkpoint", "sdxl", True)
    assert entry.path == snapshot and entry.size >= 1000 and entry.hash is None


def test_imagedesk_models_folder_shows_the_built_in_model_by_the_name_settings_use(
        tmp_path: Path) -> None:
    tiny = tmp_path / "profile" / "models" / "builtin-tiny"
    (tiny / "unet").mkdir(parents=True)
    (tiny / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    (tiny / "unet" / "config.json").write_text(json.dumps({"cross_attention_dim": 32}))
    [entry] = found(tmp_path).entries
    assert (entry.name, entry.source, entry.family) == ("builtin:tiny", "ImageDesk", "sd1")
    assert entry.note == "Built-in test model (random weights)"


def test_hashes_are_cached_by_path_size_and_time_and_a_change_is_seen(tmp_path: Path) -> None:
    path = write_model(tmp_path / "loras" / "style.safetensors", "sd1_lora", seed=1)
    first = by_name(found(tmp_path, tmp_path / "loras"))["style"]
    cache_file = tmp_path / "profile" / "models" / "hash-cache.json"
    cached = json.loads(cache_file.read_text())[str(path.resolve())]
    assert cached["sha256"][:10] == first.hash == short_hash(path)
    # a second scan knows it without reading: the scan alone (no hashing) has it
    assert by_name(found(tmp_path, tmp_path / "loras", hashed=False))["style"].hash == first.hash
    write_model(path, "sd1_lora", seed=2)
    os.utime(path, ns=(1, cached["mtime_ns"] + 10**9))
    assert by_name(found(tmp_path, tmp_path / "loras", hashed=False))["style"].hash is None
    second = by_name(found(tmp_path, tmp_path / "loras"))["style"]
    assert second.hash == short_hash(path) != first.hash


def test_header_facts_are_cached_and_a_changed_file_is_read_again(tmp_path: Path) -> None:
    path = write_model(tmp_path / "mixed" / "thing.safetensors", "sd1_lora")
    assert by_name(found(tmp_path, tmp_path / "mixed", hashed=False))["thing"].kind == "lora"
    cache_file = tmp_path / "profile" / "models" / "library-cache.json"
    entry = json.loads(cache_file.read_text())[str(path)]
    assert (entry["kind"], entry["family"]) == ("lora", "sd1")
    write_model(path, "sdxl_checkpoint")
    os.utime(path, ns=(1, entry["mtime_ns"] + 10**9))
    again = by_name(found(tmp_path, tmp_path / "mixed", hashed=False))["thing"]
    assert (again.kind, again.family) == ("checkpoint", "sdxl")


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"/x": {"kind": "virus"}}'])
def test_a_corrupt_header_cache_is_ignored_and_rebuilt(tmp_path: Path, content: bytes) -> None:
    path = write_model(tmp_path / "mixed" / "thing.safetensors", "sdxl_embedding")
    cache_file = tmp_path / "profile" / "models" / "library-cache.json"
    cache_file.parent.mkdir(parents=True)
    cache_file.write_bytes(content)
    thing = by_name(found(tmp_path, tmp_path / "mixed", hashed=False))["thing"]
    assert (thing.kind, thing.family) == ("embedding", "sdxl")
    assert str(path) in json.loads(cache_file.read_text())


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"/x": {"size": "big"}}',
                                     b"\xff\xfe"])
def test_a_corrupt_hash_cache_is_ignored_and_rebuilt(tmp_path: Path, content: bytes) -> None:
    path = write_model(tmp_path / "loras" / "style.safetensors", "sd1_lora")
    cache_file = tmp_path / "profile" / "models" / "hash-cache.json"
    cache_file.parent.mkdir(parents=True)
    cache_file.write_bytes(content)
    assert by_name(found(tmp_path, tmp_path / "loras"))["style"].hash == short_hash(path)
    assert str(path.resolve()) in json.loads(cache_file.read_text())


def test_hashing_runs_on_another_thread_than_the_callers(tmp_path: Path) -> None:
    path = write_model(tmp_path / "m.safetensors", "sd1_checkpoint")
    threads: list[int] = []

    async def hash_it() -> dict[Path, str]:
        return await hash_off_thread(HashCache(tmp_path / "cache.json"), [path],
                                     lambda *_: threads.append(threading.get_ident()))

    assert asyncio.run(hash_it()) == {path: short_hash(path)}
    assert threads and threading.get_ident() not in threads


def test_the_library_does_not_load_torch_or_safetensors(tmp_path: Path) -> None:
    a1111_tree(tmp_path)
    code = ("import asyncio, sys; from pathlib import Path; "
            "from desktop_app.providers.local_diffusion.library import find_models; "
            f"lib = asyncio.run(find_models(Path({str(tmp_path / 'p')!r}), "
            f"[Path({str(tmp_path / 'stable-diffusion-webui')!r})], "
            f"hf_cache=Path({str(tmp_path / 'hf')!r}))); "
            "assert len(lib.entries) == 6, lib; "
            "print(sorted(m for m in ('torch', 'safetensors', 'diffusers') if m in sys.modules))")
    import subprocess
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- the header parser on hostile bytes ------------------------------------------------

@settings(deadline=500, max_examples=300)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=2**64 - 1))
def test_the_header_parser_ends_in_a_header_or_a_typed_error(raw: bytes, size: int) -> None:
    try:
        header = parse_header(raw, size)
    except HeaderUnreadable as error:
        assert error.message
    else:
        assert header.data_end <= size


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=12)


@settings(deadline=500, max_examples=150)
@given(st.dictionaries(st.text(max_size=20), json_values, max_size=5),
       st.integers(min_value=0, max_value=10_000))
def test_any_json_header_ends_in_a_header_or_a_typed_error(table: dict[str, object],
                                                           extra: int) -> None:
    body = json.dumps(table).encode()
    raw = struct.pack("<Q", len(body)) + body
    try:
        parse_header(raw, len(raw) + extra)
    except HeaderUnreadable as error:
        assert error.message


def _outcome(raw: bytes, size: int, fast_path: bool) -> object:
    try:
        return parse_header(raw, size, fast_path=fast_path)
    except HeaderUnreadable as error:
        return error.message


tensor_specs = st.fixed_dictionaries(
    {"dtype": st.sampled_from(["F16", "F32"]), "shape": st.lists(st.integers(0, 9), max_size=2),
     "data_offsets": st.tuples(st.integers(-3, 2**65), st.integers(-3, 2**65)).map(list)
     | json_values})


@settings(deadline=500, max_examples=200)
@given(st.dictionaries(st.text(max_size=20), tensor_specs | json_values, max_size=6),
       st.none() | json_values | st.dictionaries(st.text(max_size=8), json_values, max_size=3),
       st.integers(min_value=0, max_value=2**66))
def test_the_fast_header_decoder_ends_where_the_json_one_does(
        table: dict[str, object], metadata: object, size: int) -> None:
    """msgspec's decoding (when installed) gives the same header or the same error."""
    if metadata is not None:
        table = {"__metadata__": metadata, **table}
    body = json.dumps(table).encode()
    raw = struct.pack("<Q", len(body)) + body
    size = max(size, len(raw))
    assert _outcome(raw, size, True) == _outcome(raw, size, False)


def test_a_huge_header_length_is_refused_without_reading_it() -> None:
    raw = struct.pack("<Q", MAX_HEADER_BYTES + 1)
    with pytest.raises(HeaderUnreadable, match="at most"):
        parse_header(raw, 2**40)


def test_a_lora_cached_as_of_no_known_family_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "loras" / "diffusers_style.safetensors"
    path.parent.mkdir(parents=True)
    write_safetensors(path, {"unet.down_blocks.0.attentions.0.proj_in.lora_A.weight": [1],
                             "unet.down_blocks.0.attentions.0.proj_in.lora_B.weight": [1]})
    cache_file = tmp_path / "profile" / "models" / "library-cache.json"
    cache_file.parent.mkdir(parents=True)
    stat = path.stat()  # as an ImageDesk that did not know diffusers' layout cached it
    cache_file.write_text(json.dumps({str(path): {
        "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "kind": "lora",
        "family": "unknown", "problem": None}}))
    entry = by_name(found(tmp_path, tmp_path / "loras", hashed=False))["diffusers_style"]
    assert (entry.kind, entry.family, entry.loadable) == ("lora", "sd1", True)
