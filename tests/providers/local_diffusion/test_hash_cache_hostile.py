"""The model-hash cache (``data/models/hash-cache.json``) is a file anything may have
written: a crash, another version, a hand edit, the window and the GPU worker at once.
Whatever bytes it holds, hashing a model ends in the model's true hash (a bad entry is
dropped, never trusted), and writers racing each other never leave a broken file."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop_app.providers.local_diffusion.hashing import model_hash
from desktop_app.providers.local_diffusion.library_hashes import HashCache

CONTENT = b"weights" * 1000
TRUE_HASH = hashlib.sha256(CONTENT).hexdigest()
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def weights(folder: Path) -> Path:
    path = folder / "model.safetensors"
    if not path.exists():
        path.write_bytes(CONTENT)
    return path


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_in_the_cache_end_in_the_true_hash(tmp_path: Path, raw: bytes) -> None:
    model, cache = weights(tmp_path), tmp_path / "hash-cache.json"
    cache.write_bytes(raw)
    assert model_hash(model, cache) == TRUE_HASH[:10]
    # and the file left behind is a cache again, with the true entry
    assert json.loads(cache.read_text())[str(model.resolve())]["sha256"] == TRUE_HASH


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=10)


@FUZZ
@given(st.one_of(json_values, st.fixed_dictionaries(
    {}, optional={"size": json_values | st.just(len(CONTENT)), "mtime_ns": json_values,
                  "sha256": json_values | st.sampled_from(["0" * 64, "f" * 64, "0" * 63])})),
    st.dictionaries(st.text(max_size=10), json_values, max_size=3))
def test_a_malformed_or_lying_entry_for_the_model_is_dropped(
        tmp_path: Path, entry: object, others: dict[str, object]) -> None:
    model, cache = weights(tmp_path), tmp_path / "hash-cache.json"
    if isinstance(entry, dict) and "mtime_ns" in entry and entry.get("size") == len(CONTENT):
        entry["mtime_ns"] = model.stat().st_mtime_ns  # a lie that matches size and time
    cache.write_text(json.dumps({**others, str(model.resolve()): entry}))
    if isinstance(entry, dict) and entry.get("sha256") in ("0" * 64, "f" * 64) \
            and entry.get("size") == len(CONTENT) and entry.get("mtime_ns") == \
            model.stat().st_mtime_ns and type(entry.get("size")) is int:
        # a well-formed entry for this very file version is believed: that is the
        # point of the cache (it is never asked to guard against a deliberate lie)
        assert model_hash(model, cache) == str(entry["sha256"])[:10]
    else:
        assert model_hash(model, cache) == TRUE_HASH[:10]


def _hash_many(folder: str, index: int, rounds: int) -> list[str]:
    base = Path(folder)
    mine = base / f"model-{index}.safetensors"
    mine.write_bytes(bytes([index]) * 5000)
    out = []
    for round_ in range(rounds):
        mine.write_bytes(bytes([index, round_ % 256]) * 5000)  # a new version: hashed again
        out.append(model_hash(mine, base / "hash-cache.json"))
    return out


@pytest.mark.slow
def test_writers_racing_each_other_never_leave_a_broken_cache(tmp_path: Path) -> None:
    rounds = 150
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(_hash_many, [(str(tmp_path), i, rounds) for i in range(4)])
    for index, hashes in enumerate(results):
        assert hashes[-1] == hashlib.sha256(bytes([index, (rounds - 1) % 256]) * 5000
                                            ).hexdigest()[:10]
    # the file is whole JSON, every entry well formed, no temporary file left behind
    entries = json.loads((tmp_path / "hash-cache.json").read_text())
    assert entries and all(len(e["sha256"]) == 64 for e in entries.values())
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("model-")) == [
        "hash-cache.json"]
    # (an entry may be lost to a concurrent write: then that file is hashed again later)
    assert len(HashCache(tmp_path / "hash-cache.json")._entries) == len(entries)


def test_a_write_never_goes_through_another_writers_temporary_file(tmp_path: Path) -> None:
    """Each write has a temporary file of its own: one with the name a fixed scheme
    would pick (``hash-cache.tmp``), half written by another process, is left alone."""
    model, cache = weights(tmp_path), tmp_path / "hash-cache.json"
    for name in ("hash-cache.tmp", ".hash-cache.json.tmp"):
        (tmp_path / name).write_bytes(b'{"half written by another pro')
    assert model_hash(model, cache) == TRUE_HASH[:10]
    for name in ("hash-cache.tmp", ".hash-cache.json.tmp"):
        assert (tmp_path / name).read_bytes() == b'{"half written by another pro'
    assert json.loads(cache.read_text())[str(model.resolve())]["sha256"] == TRUE_HASH
