"""Replacing a stored key in Settings goes through rotation: the new key is tried
against the provider first (the real connection test, the real openai SDK, the
fake server) and the old key stays when it fails, with the reason shown."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from desktop_app.ui.settings_dialog import SettingsDialog
from desktop_app.ui.settings_pages import KeyField
from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.keyring_memory import InMemoryKeyring
from tests.ui.window_support import Windows

OLD = "sk-test" + "0ldK" * 10
NEW = "sk-test" + "N3wK" * 10
STORED = ("ImageDesk", "openai")


def key_field(dialog: SettingsDialog) -> KeyField:
    field = dialog.pages["openai"].key_field
    assert field is not None
    return field


def tried_with(server: FakeOpenAI, key: str) -> bool:
    return any(r.headers.get("authorization") == f"Bearer {key}" for r in server.requests)


def test_a_new_key_the_provider_rejects_leaves_the_old_one_and_says_why(
        qtbot: QtBot, tmp_path: Path, windows: Windows,
        memory_keyring: InMemoryKeyring) -> None:
    with FakeOpenAI(api_key=OLD) as server:  # the account still knows only the old key
        ctx, window = windows.open(tmp_path, {"openai": {"base_url": server.base_url}})
        ctx.keys.set("openai", OLD)
        dialog = windows.settings_dialog(window)
        field = key_field(dialog)
        field.secret.setText(NEW)
        dialog.save()
        qtbot.waitUntil(lambda: "stored one is kept" in dialog.error.text(), timeout=15_000)
        assert tried_with(server, NEW)  # it really was tested
    assert memory_keyring.passwords[STORED] == OLD
    assert "OpenAI rejected the API key (HTTP 401)" in field.status.text()
    assert "OpenAI rejected the API key (HTTP 401)" in dialog.error.text()
    assert NEW not in dialog.error.text() and NEW not in field.status.text()
    # nothing saved; try again (the buttons come back when the test's task has ended,
    # a loop turn after the message above)
    qtbot.waitUntil(dialog.buttons.isEnabled, timeout=5_000)
    assert dialog.isVisible()
    assert not ctx.paths.settings_path.exists() or OLD not in ctx.paths.settings_path.read_text()


def test_a_new_key_that_passes_its_test_replaces_the_old_one(
        qtbot: QtBot, tmp_path: Path, windows: Windows,
        memory_keyring: InMemoryKeyring) -> None:
    with FakeOpenAI(api_key=NEW) as server:
        ctx, window = windows.open(tmp_path, {"openai": {"base_url": server.base_url}})
        ctx.keys.set("openai", OLD)
        dialog = windows.settings_dialog(window)
        key_field(dialog).secret.setText(NEW)
        with qtbot.waitSignal(dialog.saved, timeout=15_000):
            dialog.save()
        assert tried_with(server, NEW)
    assert memory_keyring.passwords[STORED] == NEW
    assert key_field(dialog).secret.text() == ""


def test_a_first_key_is_stored_without_a_test(
        qtbot: QtBot, tmp_path: Path, windows: Windows,
        memory_keyring: InMemoryKeyring) -> None:
    # nothing to keep: the key is stored (the Test button is there to try it)
    with FakeOpenAI(api_key=OLD) as server:
        _, window = windows.open(tmp_path, {"openai": {"base_url": server.base_url}})
        dialog = windows.settings_dialog(window)
        key_field(dialog).secret.setText(NEW)
        with qtbot.waitSignal(dialog.saved, timeout=5_000):
            dialog.save()
        assert not tried_with(server, NEW)
    assert memory_keyring.passwords[STORED] == NEW
