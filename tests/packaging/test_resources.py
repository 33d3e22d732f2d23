"""The data files ship inside the package: found through importlib.resources, and
carried by the wheel (so an install without ``-e`` has its icons and price table)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from desktop_app.checks import REQUIRED_RESOURCES
from desktop_app.data_files import is_frozen, resource_path

ROOT = Path(__file__).resolve().parents[2]


def test_data_files_are_read_from_inside_the_package() -> None:
    assert not is_frozen()
    assert resource_path("prices.json") == ROOT / "desktop_app" / "data" / "prices.json"
    for parts in REQUIRED_RESOURCES:
        assert resource_path(*parts).is_file(), parts


def test_nothing_reads_a_resources_folder_beside_the_package() -> None:
    assert not (ROOT / "resources").exists()
    assert resource_path().is_relative_to(ROOT / "desktop_app")


@pytest.mark.slow
def test_the_wheel_carries_the_data_files_and_not_the_scripts_that_made_them(
        tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: setuptools leaves build/ in the tree it builds
    shutil.copytree(ROOT / "desktop_app", source / "desktop_app",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-cache-dir", "-q", "-w", str(tmp_path), str(source)],
        capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = tmp_path.glob("imagedesk-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for parts in REQUIRED_RESOURCES:
        assert "/".join(("desktop_app", "data", *parts)) in names, parts
    assert "desktop_app/data/linux/io.github.imagedesk.ImageDesk.desktop" in names
    assert "desktop_app/data/model_skeletons/sd15/tokenizer/vocab.json" in names
    assert not [n for n in names if n.startswith("desktop_app/data/") and n.endswith(".py")]
