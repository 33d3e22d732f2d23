"""``imagedesk models`` as users run it: a subprocess with its own profile, pointed at
fake Automatic1111 and ComfyUI folders built at test time (issue 14.6)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.model_files import a1111_tree, comfyui_tree, short_hash, write_model
from tests.test_cli import run

HF_EMPTY = "hf-cache-empty"


def models(home: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    done = run(home, "models", *args, "--json",
               env={"HF_HUB_CACHE": str(home / HF_EMPTY), **(env or {})}, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def listed(home: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    return {m["name"]: m for m in models(home, "list", *args, env=env)["models"]}


def test_an_added_a1111_folder_lists_checkpoints_loras_and_embeddings_with_hashes(
        tmp_path: Path) -> None:
    files = a1111_tree(tmp_path)
    home = tmp_path / "home"
    assert listed(home) == {}
    added = models(home, "add-folder", str(tmp_path / "stable-diffusion-webui" / "models"))
    assert added["changed"] and added["models_found"] == 6
    found = listed(home)
    assert {n: (m["kind"], m["family"], m["loadable"]) for n, m in found.items()} == {
        "v1-5-pruned": ("checkpoint", "sd1", True),
        "ponyDiffusionV6XL": ("checkpoint", "sdxl", True),
        "old-model": ("checkpoint", "unknown", False),
        "add_detail": ("lora", "sd1", True), "xl_more_art": ("lora", "sdxl", True),
        "easynegative": ("embedding", "sd1", True)}
    for name, path in files.items():
        assert found[name]["hash"] == short_hash(path)
        assert found[name]["path"] == str(path)
    assert "pickle" in found["old-model"]["note"]
    assert found["v1-5-pruned"]["preview"].endswith("v1-5-pruned.preview.png")


def test_a_comfyui_folder_is_found_and_the_table_says_why_a_model_cannot_load(
        tmp_path: Path) -> None:
    comfyui_tree(tmp_path)
    (tmp_path / "ComfyUI" / "models" / "checkpoints" / "broken.safetensors").write_bytes(b"xx")
    home = tmp_path / "home"
    models(home, "add-folder", str(tmp_path / "ComfyUI" / "models"))
    done = run(home, "models", "list", env={"HF_HUB_CACHE": str(home / HF_EMPTY)}, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "FAMILY", "HASH", "LOADABLE", "PATH"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if not line.startswith(" ")}
    assert rows["juggernautXL"][1:3] == ["checkpoint", "sdxl"]
    assert rows["detail_tweaker_xl"][1:3] == ["lora", "sdxl"]
    assert rows["negativeXL"][1:3] == ["embedding", "sdxl"]
    assert rows["broken"][4] == "no"
    broken_at = lines.index(next(line for line in lines if line.startswith("broken")))
    assert "too short to be a .safetensors file" in lines[broken_at + 1]
    assert "control_canny" not in done.stdout


def test_a_second_list_uses_the_hash_cache_and_a_changed_file_gets_a_new_hash(
        tmp_path: Path) -> None:
    lora = write_model(tmp_path / "loras" / "style.safetensors", "sd1_lora", seed=1)
    home = tmp_path / "home"
    models(home, "add-folder", str(tmp_path / "loras"))
    first = listed(home)["style"]["hash"]
    assert first == short_hash(lora)
    cache = json.loads((home / "data" / "models" / "hash-cache.json").read_text())
    assert cache[str(lora.resolve())]["sha256"].startswith(first)
    # --no-hash reads no file whole, yet knows the hash from the cache
    assert listed(home, "--no-hash")["style"]["hash"] == first
    write_model(lora, "sd1_lora", seed=2)
    stat = lora.stat()
    os.utime(lora, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert listed(home, "--no-hash")["style"]["hash"] is None  # the cached one is stale
    second = listed(home)["style"]["hash"]
    assert second == short_hash(lora) != first


def test_no_hash_leaves_unknown_files_unhashed(tmp_path: Path) -> None:
    write_model(tmp_path / "loras" / "style.safetensors", "sd1_lora")
    home = tmp_path / "home"
    models(home, "add-folder", str(tmp_path / "loras"))
    assert listed(home, "--no-hash")["style"]["hash"] is None
    assert not (home / "data" / "models" / "hash-cache.json").exists()


def test_remove_folder_forgets_it_and_its_models(tmp_path: Path) -> None:
    write_model(tmp_path / "loras" / "style.safetensors", "sd1_lora")
    home = tmp_path / "home"
    models(home, "add-folder", str(tmp_path / "loras"))
    again = models(home, "add-folder", str(tmp_path / "loras"))
    assert again["changed"] is False and again["folders"] == [str(tmp_path / "loras")]
    assert "style" in listed(home, "--no-hash")
    assert models(home, "remove-folder", str(tmp_path / "loras"))["folders"] == []
    assert listed(home, "--no-hash") == {}
    saved = json.loads((home / "config" / "settings.json").read_text())
    assert saved["local"]["model_folders"] == []


@pytest.mark.parametrize(("action", "target", "message"), [
    ("add-folder", "missing", "does not exist"),
    ("add-folder", "file.safetensors", "is a file, not a folder"),
    ("remove-folder", "never-added", "is not one of the model folders"),
    ("add-folder", "~no-such-user-here/models", "names a home folder that does not exist"),
])
def test_bad_folders_are_refused_with_what_to_fix(tmp_path: Path, action: str, target: str,
                                                  message: str) -> None:
    write_model(tmp_path / "file.safetensors", "sd1_lora")
    (tmp_path / "never-added").mkdir()
    home = tmp_path / "home"
    where = target if target.startswith("~") else str(tmp_path / target)
    done = run(home, "models", action, where, timeout=60)
    assert done.returncode == 2 and message in done.stderr
    assert not (home / "config" / "settings.json").exists()


def test_the_environment_variable_wins_and_the_folder_commands_say_so(tmp_path: Path) -> None:
    write_model(tmp_path / "loras" / "style.safetensors", "sd1_lora")
    home = tmp_path / "home"
    env = {"IMAGEDESK_LOCAL__MODEL_FOLDERS": json.dumps([str(tmp_path / "loras")])}
    assert "style" in listed(home, "--no-hash", env=env)
    done = run(home, "models", "add-folder", str(tmp_path), env=env, timeout=60)
    assert done.returncode == 2 and "IMAGEDESK_LOCAL__MODEL_FOLDERS is set" in done.stderr


def test_a_missing_folder_in_settings_is_reported_not_fatal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"IMAGEDESK_LOCAL__MODEL_FOLDERS": json.dumps([str(tmp_path / "unplugged-disk")])}
    out = models(home, "list", env=env)
    assert out["models"] == [] and "unplugged-disk does not exist" in out["notes"][0]
