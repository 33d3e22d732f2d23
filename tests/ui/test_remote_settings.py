"""Settings → Remote workers: the page's fields reach the running engine (the
remote slot appears in the route with that queue and placement), the password
goes to the keyring only, and Test reaches the real Redis with it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import qasync
import redis
from pytestqt.qtbot import QtBot

from desktop_app.bootstrap import apply_settings, open_app, run_connection_test
from desktop_app.config import Settings
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import ProviderKind
from desktop_app.secrets import KeyStore
from desktop_app.ui.settings_dialog import SettingsDialog
from desktop_app.ui.settings_pages import KeyField, RemotePage
from tests.fakes.keyring_memory import InMemoryKeyring, installed_keyring
from tests.providers.remote_bullmq.support import PASSWORD, REDIS_SERVER, RedisServer
from tests.ui.conftest import drive


def key_field(dialog: SettingsDialog, name: str) -> KeyField:
    field = dialog.pages[name].key_field
    assert field is not None
    return field


@pytest.fixture
def memory_keyring() -> Iterator[InMemoryKeyring]:
    backend = InMemoryKeyring()
    with installed_keyring(backend):
        yield backend


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)")
    folder = tmp_path / "redis"
    folder.mkdir()
    running = RedisServer(folder)
    running.start()
    yield running
    running.stop()


def _advertise(server: RedisServer, queue: str) -> None:
    import json

    with redis.Redis(port=server.port, password=server.password) as client:
        client.set(f"imagedesk:{queue}:worker:w1", json.dumps({
            "worker_id": "w1", "name": "studio-gpu", "host": "studio", "pid": 1,
            "model": "builtin:tiny", "state": "ready", "capabilities": {}}), px=60_000)
        client.sadd(f"imagedesk:{queue}:workers", "w1")


def test_saving_the_remote_page_puts_the_workers_in_the_route_with_that_queue(
        qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop,
        memory_keyring: InMemoryKeyring, server: RedisServer) -> None:
    ctx = open_app({"IMAGEDESK_HOME": str(tmp_path / "home")})
    assert "remote" not in [s.name for s in ctx.engine.slots]  # off by default
    saved: list[Settings] = []
    dialog = SettingsDialog(
        ctx.settings, ctx.keys, save=saved.append, on_key_changed=ctx.key_cache.clear,
        test_connection=lambda name, s, key: run_connection_test(ctx, name, s, key))
    qtbot.addWidget(dialog)
    page = dialog.pages["remote"]
    assert isinstance(page, RemotePage)
    page.enabled.setChecked(True)
    page.redis_url.setText(server.url)
    page.queue.setText("studio")
    page.placement.setCurrentIndex(page.placement.findData("when_local_busy"))
    key_field(dialog, page.section).secret.setText(PASSWORD)
    _advertise(server, "studio")

    page.test_button.click()  # with the password typed, not stored yet
    qtbot.waitUntil(lambda: page.test_result.text()[:1] in ("✔", "✘"), timeout=10_000)
    assert page.test_result.text().startswith("✔ Redis at 127.0.0.1"), page.test_result.text()
    assert "1 worker(s) alive" in page.test_result.text()
    assert ("ImageDesk", "remote") not in memory_keyring.passwords  # testing stores nothing
    dialog.save()
    assert memory_keyring.passwords[("ImageDesk", "remote")] == PASSWORD
    [new] = saved
    assert PASSWORD not in new.model_dump_json()
    drive(qtbot, apply_settings(ctx, new))

    slot = ctx.engine.slot("remote")
    assert slot.provider.config.queue == "studio"  # type: ignore[attr-defined]
    assert slot.standby_for is ProviderKind.LOCAL
    plan = drive(qtbot, ctx.engine.route_preview(GenerationRequest("a lighthouse")))
    skipped = {s.provider: s.reason for s in plan.skipped}
    assert skipped["remote"] == "standing by while local is free", skipped
    assert ctx.engine.runner_settings.max_parallel_jobs == 1 + 2 + 2  # remote counts now
    drive(qtbot, ctx.engine.close())


def test_a_bad_remote_url_is_refused_at_save_with_what_to_fix(
        qtbot: QtBot, tmp_path: Path, memory_keyring: InMemoryKeyring) -> None:
    saved: list[Settings] = []
    dialog = SettingsDialog(Settings(), KeyStore(env={}), save=saved.append)
    qtbot.addWidget(dialog)
    page = dialog.pages["remote"]
    assert isinstance(page, RemotePage)
    page.enabled.setChecked(True)
    page.redis_url.setText("http://render-box:6379")
    dialog.save()
    assert saved == []
    assert "redis://" in dialog.error.text()


def test_test_with_a_wrong_password_says_it_was_rejected(
        qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop,
        memory_keyring: InMemoryKeyring, server: RedisServer) -> None:
    ctx = open_app({"IMAGEDESK_HOME": str(tmp_path / "home")})
    dialog = SettingsDialog(
        ctx.settings, ctx.keys, save=lambda s: None,
        test_connection=lambda name, s, key: run_connection_test(ctx, name, s, key))
    qtbot.addWidget(dialog)
    page = dialog.pages["remote"]
    assert isinstance(page, RemotePage)
    page.redis_url.setText(server.url)
    key_field(dialog, page.section).secret.setText("not the password at all")
    page.test_button.click()
    qtbot.waitUntil(lambda: page.test_result.text()[:1] in ("✔", "✘"), timeout=10_000)
    assert "password was rejected" in page.test_result.text(), page.test_result.text()
    assert "not the password" not in page.test_result.text()
    drive(qtbot, ctx.engine.close())
