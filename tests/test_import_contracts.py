"""The import contracts in pyproject.toml hold today, and each one really fails when
a module breaks it (a contract that cannot fail guards nothing)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", *args], cwd=root,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_code_keeps_every_import_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("module", "line", "contract"), [
    ("domain/leak.py", "import desktop_app.store.jobs", "domain-imports-nothing-of-ours"),
    ("engine/leak.py", "import PySide6.QtCore", "qt-only-in-ui"),
    ("store/leak.py", "import desktop_app.engine.engine", "floors"),
    ("providers/local_diffusion/provider_leak.py", "import torch",
     "torch-only-in-the-local-worker"),
    ("config/leak.py", "import keyring", "keyring-only-in-secrets"),
    ("ui/leak.py", "from desktop_app.providers.openai_images import provider",
     "faces-reach-providers-through-the-registry"),
    ("cli/leak.py", "from desktop_app.resilience.breaker import BreakerState",
     "faces-reach-providers-through-the-registry"),
], ids=["domain-up", "qt-in-engine", "store-up", "torch-gui-side", "keyring", "face-provider",
        "face-resilience"])
def test_a_forbidden_import_breaks_its_contract(
        tmp_path: Path, module: str, line: str, contract: str) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "desktop_app", copy / "desktop_app",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    (copy / "desktop_app" / module).write_text(f"{line}\n")
    assert lint_imports(copy).returncode == 1  # what `make lint` sees
    alone = lint_imports(copy, "--contract", contract)
    assert alone.returncode == 1 and "0 kept, 1 broken" in alone.stdout, alone.stdout[-3000:]
    assert module.removesuffix(".py").replace("/", ".") in alone.stdout.replace("\n", "")
