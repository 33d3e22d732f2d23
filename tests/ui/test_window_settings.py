"""Settings the window itself follows: the theme (live, on Save), how many recent
prompts it keeps, the banner of settings problems, and a $0 spending cap."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop_app.config import load_settings
from desktop_app.domain.job import JobState
from desktop_app.domain.request import RouteMode
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.prompt_history import HistoryPicker
from tests.fakes.fake_openai import FakeOpenAI
from tests.ui.conftest import drive
from tests.ui.window_support import Windows

KEY = "sk-test" + "C4p0" * 10
WINDOW = QPalette.ColorRole.Window


def window_colour(window: MainWindow) -> str:
    return str(window.palette().color(WINDOW).name())


def save_general(qtbot: QtBot, windows: Windows, window: MainWindow, **choices: object) -> None:
    dialog = windows.settings_dialog(window)
    general = dialog.general
    if "theme" in choices:
        general.theme.setCurrentIndex(general.theme.findData(choices["theme"]))
    if "recent" in choices:
        general.recent_prompts.setValue(int(choices["recent"]))  # type: ignore[call-overload]
    dialog.save()
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == "Settings saved.",
                    timeout=5_000)
    window.statusBar().clearMessage()


def test_the_theme_changes_the_palette_as_soon_as_settings_are_saved(
        qtbot: QtBot, tmp_path: Path, windows: Windows) -> None:
    _, window = windows.open(tmp_path)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    system = window_colour(window)
    save_general(qtbot, windows, window, theme="dark")
    assert app.palette().color(WINDOW).lightness() < 80
    qtbot.waitUntil(lambda: window.palette().color(QPalette.ColorRole.Base).lightness() < 80)
    save_general(qtbot, windows, window, theme="light")
    qtbot.waitUntil(lambda: window_colour(window) == "#f3f3f3")
    save_general(qtbot, windows, window, theme="system")
    qtbot.waitUntil(lambda: window_colour(window) == system)


def test_a_saved_theme_is_applied_when_the_window_starts(
        qtbot: QtBot, tmp_path: Path, windows: Windows) -> None:
    _, window = windows.open(tmp_path, {"ui": {"theme": "dark"}})
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    assert app.palette().color(WINDOW).lightness() < 80
    qtbot.waitUntil(lambda: window.palette().color(WINDOW).lightness() < 80)


def test_the_prompt_history_keeps_as_many_prompts_as_the_setting_says(
        qtbot: QtBot, tmp_path: Path, windows: Windows) -> None:
    _, window = windows.open(tmp_path, {"ui": {"recent_prompts_max": 3}})
    editor = window.editor
    model = window.queue.model
    for i in range(5):
        editor.prompt.setPlainText(f"prompt number {i}")
        qtbot.mouseClick(editor.generate_button, Qt.MouseButton.LeftButton)
        rows = i + 1
        qtbot.waitUntil(lambda: model.rowCount() == rows, timeout=5_000)  # noqa: B023
    picker = HistoryPicker(editor.history, window)
    qtbot.addWidget(picker)
    shown = [picker.list.item(r).text() for r in range(picker.list.count())]
    assert shown == ["prompt number 4", "prompt number 3", "prompt number 2"]
    save_general(qtbot, windows, window, recent=1)
    assert editor.history.search() == ["prompt number 4"]  # trimmed at once


def test_settings_problems_show_in_a_banner_on_every_start_until_fixed(
        qtbot: QtBot, tmp_path: Path, windows: Windows) -> None:
    _, first = windows.open(tmp_path, {"budget": {"daily_usd": "five"}})
    text = first.banner.text()
    assert "budget.daily_usd" in text and "cloud is off until this is fixed" in text
    first.close()
    _, again = windows.open(tmp_path)  # the next start: the file is still wrong
    assert "budget.daily_usd" in again.banner.text()
    dialog = windows.settings_dialog(again)
    dialog.spending.daily.limited.setChecked(True)
    dialog.spending.daily.amount.setValue(5)
    dialog.save()
    qtbot.waitUntil(lambda: again.banner.text() == "", timeout=5_000)
    _, fixed = windows.open(tmp_path)
    assert fixed.banner.text() == "" and fixed.banner.isHidden()


def test_a_zero_cap_saved_from_the_dialog_keeps_the_cloud_from_being_billed(
        qtbot: QtBot, tmp_path: Path, windows: Windows) -> None:
    with FakeOpenAI(api_key=KEY) as server:
        ctx, window = windows.open(tmp_path, None, OPENAI_API_KEY=KEY,
                                   IMAGEDESK_OPENAI__BASE_URL=server.base_url)
        dialog = windows.settings_dialog(window)
        assert not dialog.spending.daily.limited.isChecked()  # no cap yet
        dialog.spending.daily.limited.setChecked(True)
        dialog.spending.daily.amount.setValue(0)
        dialog.save()
        qtbot.waitUntil(lambda: ctx.settings.budget.daily_usd == 0, timeout=5_000)
        assert load_settings(ctx.paths.settings_path, env={}).settings.budget.daily_usd == 0
        drive(qtbot, ctx.engine.start())
        editor = window.editor
        editor.mode.setCurrentIndex(editor.mode.findData(RouteMode.CLOUD_ONLY))
        editor.width_box.setValue(1024)
        editor.height_box.setValue(1024)
        editor.prompt.setPlainText("a free lunch")
        qtbot.mouseClick(editor.generate_button, Qt.MouseButton.LeftButton)
        model = window.queue.model
        qtbot.waitUntil(lambda: model.rowCount() == 1 and model.row(0).state is JobState.FAILED,
                        timeout=20_000)
        assert "over budget" in model.row(0).details() or "cap" in model.row(0).details()
        assert server.image_requests() == []
