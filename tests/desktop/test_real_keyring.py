"""API keys in a real Secret Service (gnome-keyring on D-Bus), as the CLI keeps them.

Every other test uses the in-memory keyring; these prove the real path: a key set by
one process is read by another, deleted, and a locked keyring gives an error that says
what to do instead of a hang or a trace.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.desktop.session import REAL_KEYRING, no_secret_service

pytestmark = pytest.mark.desktop_session

KEY = "sk-ci" + "Q7r8S9t0" * 5


@pytest.fixture(autouse=True)
def secret_service() -> None:
    reason = no_secret_service()
    if reason is not None:
        pytest.skip(reason)


def cli(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IMAGEDESK_HOME": str(home), "PYTHON_KEYRING_BACKEND": REAL_KEYRING}
    env.pop("DISPLAY", None)  # a locked keyring must fail, not wait on a password prompt
    return subprocess.run([sys.executable, "-m", "desktop_app", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def test_a_key_set_by_one_process_is_read_by_another_then_deleted(tmp_path: Path) -> None:
    saved = cli(tmp_path, "keys", "set", "openai", stdin=KEY + "\n")
    assert saved.returncode == 0, saved.stderr
    assert "SecretService" in saved.stdout
    status = cli(tmp_path, "keys", "status", "openai")
    assert status.returncode == 0, status.stderr
    assert "openai: keyring" in status.stdout and KEY not in status.stdout
    assert KEY[-4:] in status.stdout  # the masked key shows its last characters
    deleted = cli(tmp_path, "keys", "delete", "openai")
    assert deleted.returncode == 0, deleted.stderr
    after = cli(tmp_path, "keys", "status", "openai")
    assert "openai: none" in after.stdout, after.stdout


def test_a_locked_keyring_says_so_and_how_to_go_on(tmp_path: Path) -> None:
    import secretstorage

    assert cli(tmp_path, "keys", "set", "openai", stdin=KEY + "\n").returncode == 0
    with secretstorage.dbus_init() as connection:
        collection = secretstorage.get_default_collection(connection)
        collection.lock()
        try:
            status = cli(tmp_path, "keys", "status", "openai")
            saved = cli(tmp_path, "keys", "set", "openai", stdin=KEY + "\n")
        finally:
            # unlock again for the tests after this one (the daemon was started unlocked)
            subprocess.run(["gnome-keyring-daemon", "--unlock", "--components=secrets",
                            "--replace"], input=os.environ.get("CI_KEYRING_PASSWORD", "ci"),
                           capture_output=True, text=True, timeout=30, check=False)
    assert "Traceback" not in status.stderr + saved.stderr
    assert "locked" in status.stdout.lower() or "unlock" in status.stdout.lower(), status.stdout
    assert saved.returncode != 0
    assert "OPENAI_API_KEY" in saved.stderr, saved.stderr  # the way around a locked keyring
    assert KEY not in saved.stdout + saved.stderr + status.stdout
