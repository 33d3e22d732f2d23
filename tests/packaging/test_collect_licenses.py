"""The bundle's licence notices list what the flavour ships, from installed metadata."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_collector() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("collect_licenses",
                                                  ROOT / "packaging" / "collect_licenses.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["collect_licenses"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def collector() -> types.ModuleType:
    return load_collector()


def test_cloud_notices_list_qt_and_runtime_deps_but_not_torch_or_dev_tools(
        collector: types.ModuleType, tmp_path: Path) -> None:
    collector.main(["--out", str(tmp_path)])
    index = (tmp_path / "THIRD-PARTY-NOTICES.md").read_text()
    names = {line.split("|")[1].strip().lower() for line in index.splitlines()
             if line.startswith("| ") and not line.startswith("| package")}
    assert {"pyside6_essentials", "openai", "qasync", "keyring", "pillow"} <= names
    assert "lgpl-3.0-only" in index.lower()
    assert not names & {"torch", "diffusers", "pytest", "mypy", "pyinstaller", "pip"}
    assert (tmp_path / "Qt-PySide6-LGPL.md").is_file()
    assert (tmp_path / "LGPL-3.0.txt").is_file()
    openai_files = list(tmp_path.glob("openai-*/**/LICENSE*"))
    assert openai_files and "Apache" in openai_files[0].read_text()


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs the local extra")
def test_full_notices_add_the_diffusion_stack(collector: types.ModuleType,
                                              tmp_path: Path) -> None:
    collector.main(["--out", str(tmp_path), "--extra", "local"])
    index = (tmp_path / "THIRD-PARTY-NOTICES.md").read_text().lower()
    assert "| torch |" in index and "| diffusers |" in index
    assert "full (local)" in index
