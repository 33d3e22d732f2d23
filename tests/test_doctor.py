"""``imagedesk doctor`` renders the same checks as ``--self-test`` (one format),
run deep: the torch probe's findings appear, torch never loads in the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_doctor_prints_one_ok_or_fail_line_per_check_and_exits_by_them(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update(IMAGEDESK_HOME=str(tmp_path), PYTHONPATH=str(ROOT),
               TRANSFORMERS_VERBOSITY="error",
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    result = subprocess.run([sys.executable, "-m", "desktop_app", "doctor"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith(("ok   ", "FAIL ")) for line in lines), result.stdout
    names = [line[5:].split(":", 1)[0] for line in lines]
    for name in ("python", "folders", "settings file", "database", "keyring", "torch",
                 "local model"):
        assert name in names, result.stdout
    assert (result.returncode == 0) == all(line.startswith("ok") for line in lines)
    assert "no usable keyring: set OPENAI_API_KEY" in result.stdout
