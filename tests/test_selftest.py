"""``imagedesk --self-test`` from a source checkout: a healthy profile passes, a broken one
says what is wrong on a FAIL line and exits non-zero."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app import selftest
from desktop_app.domain.checks import Check

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ("python", "imports", "resources", "folders", "settings file", "database", "keyring",
          "local provider", "local model", "window")


def run_self_test(home: Path | None, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "IMAGEDESK_HOME"}}
    env.update(TRANSFORMERS_VERBOSITY="error", PYTHONPATH=str(ROOT),
               # no Secret Service in a test: the self-test must still pass
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring", **extra)
    if home is not None:
        env["IMAGEDESK_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "desktop_app.selftest", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=180, check=False)


def check_lines(output: str) -> dict[str, str]:
    lines = {}
    for line in output.splitlines():
        status, _, rest = line.partition(" ")
        name, sep, _ = rest.strip().partition(":")
        if status in {"ok", "FAIL"} and sep:
            lines[name] = line
    return lines


@pytest.mark.slow
def test_self_test_passes_on_a_fresh_profile_with_one_ok_line_per_check(tmp_path: Path) -> None:
    result = run_self_test(tmp_path / "profile")
    lines = check_lines(result.stdout)
    assert list(lines) == list(CHECKS), result.stdout + result.stderr
    failed = [line for line in lines.values() if not line.startswith("ok   ")]
    assert not failed, result.stdout + result.stderr
    assert result.returncode == 0
    assert "self-test passed: 10 checks" in result.stdout
    assert (tmp_path / "profile" / "data" / "imagedesk.sqlite3").is_file()
    assert "no usable keyring: set OPENAI_API_KEY" in lines["keyring"]
    assert "painted" in lines["window"]


@pytest.mark.slow
def test_self_test_fails_clearly_when_the_profile_folder_is_a_file(tmp_path: Path) -> None:
    home = tmp_path / "not-a-folder"
    home.write_text("I am a file\n")
    result = run_self_test(home)
    lines = check_lines(result.stdout)
    assert result.returncode != 0
    assert lines["folders"].startswith("FAIL folders:")
    assert "IMAGEDESK_HOME" in lines["folders"]  # says what to change
    assert lines["database"].startswith("FAIL database:")
    assert "self-test FAILED" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.slow
def test_temp_home_leaves_no_profile_behind(tmp_path: Path) -> None:
    result = run_self_test(None, "--temp-home", HOME=str(tmp_path))
    folders = check_lines(result.stdout)["folders"]
    assert folders.startswith("ok   folders: data ")
    data_dir = Path(folders.split("data ", 1)[1].split(",")[0])
    assert data_dir.name == "data"
    assert not data_dir.parent.exists()
    assert not any(tmp_path.iterdir())  # nothing written under the user's home either


def test_local_provider_is_reported_as_cloud_only_without_torch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop_app.providers.local_diffusion import checks

    real = checks.importlib.util.find_spec
    monkeypatch.setattr(checks.importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    result = checks.packages_check()
    assert result.ok
    assert "cloud-only build" in result.line()


def test_a_check_line_names_the_check_and_its_status() -> None:
    assert Check("window", False, "no display").line() == "FAIL window: no display"
    assert Check("imports", True, "3 modules").line() == "ok   imports: 3 modules"


def test_headless_runs_choose_the_offscreen_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    selftest.use_offscreen_if_headless({})
    assert os.environ["QT_QPA_PLATFORM"] == "offscreen"
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    selftest.use_offscreen_if_headless({})
    assert os.environ["QT_QPA_PLATFORM"] == "xcb"  # the user's choice stands


@pytest.mark.slow
def test_a_damaged_database_is_a_failed_check_naming_the_file(tmp_path: Path) -> None:
    home = tmp_path / "profile"
    db = home / "data" / "imagedesk.sqlite3"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not an SQLite database" * 200)
    result = run_self_test(home)
    line = check_lines(result.stdout)["database"]
    assert result.returncode != 0
    assert line.startswith("FAIL database:")
    assert str(db) in line
