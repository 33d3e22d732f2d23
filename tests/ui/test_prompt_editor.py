from __future__ import annotations

from pathlib import Path

import pytest
import qasync
from PySide6.QtCore import QSettings, Qt
from pytestqt.qtbot import QtBot

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.request import GenerationRequest, RouteMode
from desktop_app.ui.prompt_editor import PromptEditor


class Recorder:
    def __init__(self, error: InvalidRequest | None = None) -> None:
        self.requests: list[GenerationRequest] = []
        self.error = error

    async def __call__(self, request: GenerationRequest) -> object:
        if self.error is not None:
            raise self.error
        self.requests.append(request)
        return object()


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)


def make(qtbot: QtBot, settings: QSettings, submit: Recorder) -> PromptEditor:
    editor = PromptEditor(submit, settings)
    qtbot.addWidget(editor)
    editor.show()
    return editor


@pytest.mark.parametrize(("field", "setup", "expected"), [
    ("prompt", lambda e: e.prompt.setPlainText("   "), "Enter a prompt"),
    ("width", lambda e: e.width_box.setValue(513), "multiple of 8 (got 513; try 512)"),
    ("steps", lambda e: e.steps.setValue(0), "Steps must be between 1 and 150"),
    ("seed", lambda e: (e.seed.setText("abc"), e.seed_lock.setChecked(True)),
     "Seed must be a whole number"),
    ("n", lambda e: e.n.setValue(40), "number of images must be between 1 and 16"),
])
def test_bad_input_is_shown_at_its_field_and_nothing_is_queued(
        qtbot: QtBot, settings: QSettings, loop: qasync.QEventLoop, field: str,
        setup: object, expected: str) -> None:
    submit = Recorder()
    editor = make(qtbot, settings, submit)
    editor.prompt.setPlainText("a lighthouse at dusk")
    setup(editor)  # type: ignore[operator]
    qtbot.keyClick(editor.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert expected in editor.error_text(field)
    label = editor.findChild(type(editor.prompt_count), f"{field}Error")
    assert label is not None and label.isVisible()
    assert submit.requests == []
    for other in ("prompt", "width", "steps", "seed", "n"):
        if other != field:
            assert editor.error_text(other) == ""


def test_ctrl_enter_queues_the_request_as_typed_and_remembers_the_prompt(
        qtbot: QtBot, settings: QSettings, loop: qasync.QEventLoop) -> None:
    submit = Recorder()
    editor = make(qtbot, settings, submit)
    editor.prompt.setPlainText("a lighthouse at dusk")
    editor.negative.setPlainText("blurry")
    editor.preset.setCurrentIndex(3)  # 3:2 · 768×512
    editor.seed.setText("1234")
    editor.seed_lock.setChecked(True)
    editor.mode.setCurrentIndex(editor.mode.findData(RouteMode.LOCAL_ONLY))
    with qtbot.waitSignal(editor.submitted):
        qtbot.keyClick(editor.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    [request] = submit.requests
    assert (request.prompt, request.negative_prompt) == ("a lighthouse at dusk", "blurry")
    assert (request.width, request.height, request.seed) == (768, 512, 1234)
    assert request.policy.mode is RouteMode.LOCAL_ONLY
    assert editor.history.search("lighthouse") == ["a lighthouse at dusk"]


def test_an_unlocked_seed_means_a_new_random_seed(
        qtbot: QtBot, settings: QSettings) -> None:
    editor = make(qtbot, settings, Recorder())
    editor.prompt.setPlainText("x")
    editor.seed.setText("99")
    assert editor.build_request().seed is None  # type: ignore[union-attr]
    editor.randomise_seed()
    assert editor.seed_lock.isChecked()
    assert editor.build_request().seed == int(editor.seed.text())  # type: ignore[union-attr]


def test_an_engine_refusal_on_submit_is_shown_at_the_field(
        qtbot: QtBot, settings: QSettings, loop: qasync.QEventLoop) -> None:
    refusal = InvalidRequest('The prompt contains the blocked term "gore"', field="prompt")
    editor = make(qtbot, settings, Recorder(refusal))
    editor.prompt.setPlainText("gore")
    editor.generate()
    qtbot.waitUntil(lambda: "blocked term" in editor.error_text("prompt"))
    assert editor.generate_button.isEnabled()
    assert len(editor.history) == 0


def test_character_count_follows_the_limit_of_the_chosen_route(
        qtbot: QtBot, settings: QSettings) -> None:
    editor = make(qtbot, settings, Recorder())
    editor.set_prompt_limits({RouteMode.AUTO: (1000, "openai"),
                              RouteMode.LOCAL_ONLY: (300, "local")})
    editor.prompt.setPlainText("y" * 400)
    assert editor.prompt_count.text() == "400 / 1,000 characters (openai)"
    editor.mode.setCurrentIndex(editor.mode.findData(RouteMode.LOCAL_ONLY))
    assert editor.prompt_count.text() == "400 / 300 characters (local)"
    assert "d1242f" in editor.prompt_count.styleSheet()


def test_size_presets_fill_the_size_and_editing_switches_to_custom(
        qtbot: QtBot, settings: QSettings) -> None:
    editor = make(qtbot, settings, Recorder())
    editor.preset.setCurrentIndex(8)  # 9:16
    assert (editor.width_box.value(), editor.height_box.value()) == (512, 912)
    editor.width_box.setValue(520)
    assert editor.preset.currentText() == "Custom"


def test_recent_prompts_are_searchable_and_survive_a_restart(
        qtbot: QtBot, settings: QSettings, tmp_path: Path) -> None:
    editor = make(qtbot, settings, Recorder())
    for prompt in ("red fox in snow", "blue whale", "Fox at night"):
        editor.history.add(prompt)
    settings.sync()
    reopened = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    again = make(qtbot, reopened, Recorder())
    assert again.history.search("fox") == ["Fox at night", "red fox in snow"]
