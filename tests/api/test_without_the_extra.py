"""Without the 'api' extra (no aiohttp), the app still starts and its self-check
passes, skipping the API's modules; serving says which extra to install.

aiohttp is hidden from a child process (None in ``sys.modules``, and ``find_spec``
not finding it), as an install without the extra would have it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HIDE = """
import importlib.util, sys
sys.modules['aiohttp'] = None
_find = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name.split('.')[0] == 'aiohttp' \\
    else _find(name, *a)
"""


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"IMAGEDESK_HOME": str(tmp_path), "PYTHONPATH": str(Path(__file__).parents[2]),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", HIDE + code], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def test_the_imports_check_skips_the_api_without_its_extra(tmp_path: Path) -> None:
    done = _run("from desktop_app.checks import check_imports\n"
                "c = check_imports(); print(c.ok, c.detail)", tmp_path)
    assert done.stdout.startswith("True") and "extra not installed: api" in done.stdout, done


def test_serve_without_the_extra_names_it(tmp_path: Path) -> None:
    done = _run("from desktop_app.cli import main\nraise SystemExit(main(['serve']))", tmp_path)
    assert done.returncode == 5 and "pip install 'imagedesk[api]'" in done.stderr, done
