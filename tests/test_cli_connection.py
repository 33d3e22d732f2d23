"""``providers --test`` and ``keys set --check``: the CLI actually tries a
provider through its descriptor's connection test, against the fake OpenAI
server (the real SDK over HTTP on 127.0.0.1)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.keyring_file import BACKEND, FILE_VARIABLE, FileKeyring
from tests.test_cli import CLI, cli_env

GOOD = "sk-good-" + "g" * 32
OTHER_GOOD = "sk-next-" + "n" * 32
WRONG = "sk-wrong-" + "w" * 32
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=GOOD) as fake:
        yield fake


def run(home: Path, server: FakeOpenAI, *args: str, stdin: str | None = None,
        **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI with the fake server as OpenAI and a keyring kept in a file."""
    full = cli_env(home, IMAGEDESK_OPENAI__BASE_URL=server.base_url, **env)
    full.update(PYTHON_KEYRING_BACKEND=BACKEND, PYTHONPATH=str(REPO),
                **{FILE_VARIABLE: str(home / "keyring.json")})
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True,
                          env=full, timeout=120, check=False, cwd=REPO)


def stored(home: Path) -> dict[str, str]:
    path = home / "keyring.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_providers_test_fails_against_a_server_that_rejects_the_key(
        tmp_path: Path, server: FakeOpenAI) -> None:
    result = run(tmp_path, server, "providers", "--test", "openai", OPENAI_API_KEY=WRONG)
    assert result.returncode == 5
    assert result.stdout.startswith("FAIL openai: OpenAI rejected the API key (HTTP 401)")
    [line] = result.stderr.splitlines()
    assert line.startswith("imagedesk: connection test failed: openai: OpenAI rejected")
    assert WRONG not in result.stdout + result.stderr
    assert [r.path for r in server.requests] == ["/v1/models/gpt-image-2"]
    assert server.image_requests() == []  # a test never bills


def test_providers_test_passes_against_a_server_that_accepts_the_key(
        tmp_path: Path, server: FakeOpenAI) -> None:
    result = run(tmp_path, server, "providers", "--test", "openai", "--json",
                 OPENAI_API_KEY=GOOD)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["passed"] is True
    [row] = out["providers"]
    assert (row["name"], row["outcome"]) == ("openai", "passed")
    assert "OpenAI accepted the key" in row["message"]
    assert result.stderr == ""


def test_providers_test_json_failure_is_one_object_with_the_exit_code(
        tmp_path: Path, server: FakeOpenAI) -> None:
    result = run(tmp_path, server, "providers", "--test", "openai", "--json",
                 OPENAI_API_KEY=WRONG)
    assert result.returncode == 5
    out = json.loads(result.stdout)
    assert out["passed"] is False and out["exit_code"] == 5
    assert out["providers"][0]["outcome"] == "key_rejected"
    assert out["error"].startswith("connection test failed: openai: OpenAI rejected")


def test_providers_test_without_a_name_tries_every_enabled_provider(
        tmp_path: Path, server: FakeOpenAI) -> None:
    result = run(tmp_path, server, "providers", "--test", "--json", OPENAI_API_KEY=GOOD,
                 IMAGEDESK_LOCAL__ENABLED="false")
    out = json.loads(result.stdout)
    assert [r["name"] for r in out["providers"]] == ["openai"]  # local off, remote off
    assert result.returncode == 0 and out["passed"] is True


def test_providers_test_an_unknown_name_is_bad_input(tmp_path: Path, server: FakeOpenAI) -> None:
    result = run(tmp_path, server, "providers", "--test", "opnai")
    assert result.returncode == 2
    assert "invalid choice: 'opnai'" in result.stderr and server.request_count == 0


def test_keys_set_check_keeps_the_old_key_when_the_new_one_is_rejected(
        tmp_path: Path, server: FakeOpenAI) -> None:
    first = run(tmp_path, server, "keys", "set", "openai", "--check", stdin=GOOD + "\n")
    assert first.returncode == 0, first.stderr
    assert "passed the connection test" in first.stdout
    assert stored(tmp_path) == {"ImageDesk/openai": GOOD}

    rejected = run(tmp_path, server, "keys", "set", "openai", "--check", stdin=WRONG + "\n")
    assert rejected.returncode == 2
    [line] = rejected.stderr.splitlines()
    assert line == ("imagedesk: the new openai API key was not saved (the old one is kept): "
                    "OpenAI rejected the API key (HTTP 401); check or replace it in Settings.")
    assert WRONG not in rejected.stdout + rejected.stderr
    assert stored(tmp_path) == {"ImageDesk/openai": GOOD}
    assert server.image_requests() == []

    # the kept key still works: the provider test passes with what is stored
    assert run(tmp_path, server, "providers", "--test", "openai").returncode == 0


def test_keys_set_check_replaces_the_key_when_the_new_one_passes(
        tmp_path: Path, server: FakeOpenAI) -> None:
    assert run(tmp_path, server, "keys", "set", "openai", stdin=WRONG + "\n").returncode == 0
    server.api_key = OTHER_GOOD
    result = run(tmp_path, server, "keys", "set", "openai", "--check", stdin=OTHER_GOOD + "\n")
    assert result.returncode == 0, result.stderr
    assert stored(tmp_path) == {"ImageDesk/openai": OTHER_GOOD}


def test_keys_set_without_check_stores_a_key_the_server_would_reject(
        tmp_path: Path, server: FakeOpenAI) -> None:
    result = run(tmp_path, server, "keys", "set", "openai", stdin=WRONG + "\n")
    assert result.returncode == 0, result.stderr
    assert stored(tmp_path) == {"ImageDesk/openai": WRONG} and server.request_count == 0


def test_keys_check_on_an_unreachable_server_is_a_setup_error_keeping_nothing(
        tmp_path: Path, server: FakeOpenAI) -> None:
    server.stop()
    result = run(tmp_path, server, "keys", "set", "openai", "--check", stdin=GOOD + "\n")
    assert result.returncode == 5
    [line] = result.stderr.splitlines()
    assert line.startswith("imagedesk: the new openai API key was not saved (there is still "
                           "none): Could not reach")
    assert stored(tmp_path) == {}


def test_check_goes_only_with_keys_set(tmp_path: Path, server: FakeOpenAI) -> None:
    result = run(tmp_path, server, "keys", "status", "openai", "--check")
    assert result.returncode == 2 and "--check goes with `keys set`" in result.stderr


def test_the_file_keyring_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FILE_VARIABLE, str(tmp_path / "k.json"))
    backend = FileKeyring()
    backend.set_password("s", "u", "p")
    assert backend.get_password("s", "u") == "p"
    backend.delete_password("s", "u")
    assert backend.get_password("s", "u") is None
