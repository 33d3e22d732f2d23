from __future__ import annotations

import asyncio
from pathlib import Path

import keyring.backends.fail
import qasync
from pytestqt.qtbot import QtBot

from desktop_app.config import Settings, load_settings, save_settings
from desktop_app.providers.base import ConnectionOutcome, ConnectionReport
from desktop_app.secrets import KeyStore
from desktop_app.ui.settings_dialog import SettingsDialog
from desktop_app.ui.settings_pages import KeyField, OpenAIPage
from tests.fakes.keyring_memory import InMemoryKeyring, installed_keyring

KEY = "sk-test" + "A1b2C3d4" * 5



def key_field(dialog: SettingsDialog, name: str) -> KeyField:
    field = dialog.pages[name].key_field
    assert field is not None
    return field


def openai_page(dialog: SettingsDialog) -> OpenAIPage:
    page = dialog.pages["openai"]
    assert isinstance(page, OpenAIPage)
    return page


def make_dialog(qtbot: QtBot, path: Path, **kw: object) -> SettingsDialog:
    dialog = SettingsDialog(Settings(), KeyStore(env={}),
                            save=lambda s: save_settings(s, path), **kw)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    return dialog


def test_saving_puts_the_key_in_the_keyring_and_never_in_the_settings_file(
        qtbot: QtBot, tmp_path: Path, memory_keyring: InMemoryKeyring) -> None:
    path = tmp_path / "settings.json"
    dialog = make_dialog(qtbot, path)
    key_field(dialog, "openai").secret.setText(KEY)
    openai_page(dialog).model.setCurrentText("dall-e-3")
    with qtbot.waitSignal(dialog.saved):
        dialog.save()
    assert memory_keyring.passwords[("ImageDesk", "openai")] == KEY
    text = path.read_text()
    assert KEY not in text and "A1b2C3d4" not in text
    assert load_settings(path, env={}).settings.openai.model == "dall-e-3"
    assert key_field(dialog, "openai").secret.text() == ""  # not kept in the widget either


def test_without_a_keyring_the_dialog_says_so_and_saves_nothing(
        qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    with installed_keyring(keyring.backends.fail.Keyring()):
        dialog = make_dialog(qtbot, path)
        key_field(dialog, "openai").secret.setText(KEY)
        dialog.save()
    assert not path.exists()
    assert dialog.result() != SettingsDialog.DialogCode.Accepted
    assert "keyring" in key_field(dialog, "openai").status.text().lower()
    assert "The key was not stored" in dialog.error.text()


def test_an_invalid_key_is_refused_at_the_key_field(
        qtbot: QtBot, tmp_path: Path, memory_keyring: InMemoryKeyring) -> None:
    dialog = make_dialog(qtbot, tmp_path / "settings.json")
    key_field(dialog, "openai").secret.setText("not-a-key")
    dialog.save()
    assert "starts with 'sk-'" in key_field(dialog, "openai").status.text()
    assert memory_keyring.passwords == {}


def test_provider_order_and_unreadable_rate_limits(
        qtbot: QtBot, tmp_path: Path, memory_keyring: InMemoryKeyring) -> None:
    path = tmp_path / "settings.json"
    dialog = make_dialog(qtbot, path)
    assert dialog.provider_order() == ["local", "remote", "openai"]
    dialog.order.setCurrentRow(2)
    dialog.move_provider(-1)
    dialog.move_provider(-1)
    assert dialog.provider_order() == ["openai", "local", "remote"]
    openai_page(dialog).rate_limits.setText("five per minute")
    dialog.save()
    assert "Rate limits look like" in dialog.error.text()
    assert not path.exists()
    openai_page(dialog).rate_limits.setText("3/60s, 100/86400s")
    dialog.save()
    saved = load_settings(path, env={}).settings
    assert saved.openai.priority < saved.local.priority
    assert [(r.limit, r.period_s) for r in saved.openai.rate_limits] == [(3, 60), (100, 86400)]


def test_test_connection_runs_without_freezing_the_dialog(
        qtbot: QtBot, tmp_path: Path, memory_keyring: InMemoryKeyring,
        loop: qasync.QEventLoop) -> None:
    release = asyncio.Event()
    seen: list[tuple[str, str, str | None]] = []

    async def check(name: str, settings: Settings, key: str | None) -> ConnectionReport:
        seen.append((name, settings.openai.model, key))
        await release.wait()
        return ConnectionReport(name, ConnectionOutcome.PASSED,
                                "OpenAI answered: gpt-image-1 is available")

    dialog = make_dialog(qtbot, tmp_path / "settings.json", test_connection=check)
    page = openai_page(dialog)
    page.model.setCurrentText("gpt-image-1")
    key_field(dialog, page.section).secret.setText(KEY)
    page.test_button.click()
    qtbot.waitUntil(lambda: bool(seen))
    # the check is still waiting, and the dialog keeps working meanwhile
    assert page.test_result.text() == "Testing…"
    assert not page.test_button.isEnabled()
    page.base_url.setText("http://127.0.0.1:9")
    assert page.base_url.text() == "http://127.0.0.1:9"
    release.set()
    qtbot.waitUntil(lambda: page.test_result.text().startswith("✔"))
    assert page.test_button.isEnabled()
    assert seen == [("openai", "gpt-image-1", KEY)]
