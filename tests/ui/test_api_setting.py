"""The "Serve the API while ImageDesk is open" setting (``ui.serve_api``, on
``ui.api_port``): ticked and saved in Settings → General, the window answers the API;
unticked, nothing listens any more."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from pytestqt.qtbot import QtBot

from desktop_app.api.server import ApiServer
from desktop_app.api.window_serving import WindowApi
from desktop_app.secrets import API_TOKEN
from tests.ui.conftest import drive
from tests.ui.window_support import Windows


async def _status(url: str, token: str) -> int | str:
    try:
        async with aiohttp.ClientSession() as session, session.get(
                url + "/v1/models", headers={"Authorization": f"Bearer {token}"}) as reply:
            return reply.status
    except aiohttp.ClientConnectionError:
        return "refused"


def served(api: WindowApi) -> ApiServer | None:
    return api.server


def test_ticking_serve_api_makes_the_window_answer_and_unticking_stops_it(
        qtbot: QtBot, tmp_path: Path, windows: Windows) -> None:
    ctx, window = windows.open(tmp_path, {"ui": {"api_port": 0}})  # 0: any free port
    api: WindowApi = window.api  # type: ignore[attr-defined]
    assert api.server is None  # off by default
    dialog = windows.settings_dialog(window)
    assert not dialog.general.serve_api.isChecked()
    dialog.general.serve_api.setChecked(True)
    dialog.save()
    qtbot.waitUntil(lambda: api.server is not None, timeout=10_000)
    server = served(api)
    assert server is not None
    url = server.url
    assert server.port != 7860  # ui.api_port 0 was followed: a free port, not the default
    token = ctx.keys.get(API_TOKEN)  # made on first use, kept in the keyring
    assert token is not None
    assert drive(qtbot, _status(url, token)) == 200
    assert drive(qtbot, _status(url, "wrong")) == 401
    assert ctx.settings.ui.serve_api
    dialog = windows.settings_dialog(window)
    assert dialog.general.serve_api.isChecked()
    dialog.general.serve_api.setChecked(False)
    dialog.save()
    qtbot.waitUntil(lambda: api.server is None, timeout=10_000)
    assert drive(qtbot, _status(url, token)) == "refused"


def test_settings_show_the_token_and_a_new_one_replaces_it_at_once(
        qtbot: QtBot, tmp_path: Path, windows: Windows) -> None:
    ctx, window = windows.open(tmp_path, {"ui": {"serve_api": True, "api_port": 0}})
    api: WindowApi = window.api  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: api.server is not None, timeout=10_000)
    server = served(api)
    assert server is not None
    general = windows.settings_dialog(window).general
    general.show_token.setChecked(True)
    old = general.token.text()
    assert old and old == ctx.keys.get(API_TOKEN)
    assert drive(qtbot, _status(server.url, old)) == 200
    general.new_token.click()
    new = general.token.text()
    assert new != old and ctx.keys.get(API_TOKEN) == new
    qtbot.waitUntil(lambda: drive(qtbot, _status(server.url, new)) == 200, timeout=5_000)
    assert drive(qtbot, _status(server.url, old)) == 401
