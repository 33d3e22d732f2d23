"""Choosing a model in the editor starts the job from its family's defaults (issue 14.1):
an SDXL checkpoint sets 1024 px, SDXL's guidance and negative prompt; an SD 1.x one
512 px — but never over a field the user changed. The Model list comes from a real
library scan of an A1111-like folder, its defaults from the local provider's families,
and the request Generate queues is the one observed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import qasync
from PySide6.QtCore import QSettings, Qt
from pytestqt.qtbot import QtBot

from desktop_app.providers import registry
from desktop_app.ui.model_defaults import model_choices
from desktop_app.ui.prompt_editor import PromptEditor
from tests.fakes.model_files import a1111_tree, write_model
from tests.ui.conftest import drive
from tests.ui.test_prompt_editor import Recorder

SDXL_NEGATIVE = registry.local_family_defaults("sdxl").negative_prompt


def editor_with_library(qtbot: QtBot, tmp_path: Path, submit: Recorder,
                        settings_model: str = "builtin:tiny"
                        ) -> tuple[PromptEditor, dict[str, Path]]:
    files = a1111_tree(tmp_path)
    library = drive(qtbot, registry.local_model_library(
        tmp_path / "models", [tmp_path / "stable-diffusion-webui"], hashed=False))
    family = drive(qtbot, asyncio.to_thread(registry.local_model_family, settings_model))
    editor = PromptEditor(submit, QSettings(str(tmp_path / "window.ini"),
                                            QSettings.Format.IniFormat))
    qtbot.addWidget(editor)
    editor.show()
    models, defaults = model_choices(library, family)
    editor.set_models(models, None, defaults)
    return editor, files


def choose(editor: PromptEditor, path: Path) -> None:
    index = editor.model.findData(str(path))
    assert index > 0, [editor.model.itemText(i) for i in range(editor.model.count())]
    editor.model.setCurrentIndex(index)


def fields(editor: PromptEditor) -> tuple[int, int, float, str]:
    return (editor.width_box.value(), editor.height_box.value(), editor.guidance.value(),
            editor.negative.toPlainText())


def queue(qtbot: QtBot, editor: PromptEditor, submit: Recorder) -> None:
    editor.prompt.setPlainText("a fox in the snow")
    before = len(submit.requests)
    with qtbot.waitSignal(editor.submitted):
        qtbot.mouseClick(editor.generate_button, Qt.MouseButton.LeftButton)
    assert len(submit.requests) == before + 1


def test_an_sdxl_model_brings_its_size_guidance_and_negative_and_sd1_brings_512(
        qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop) -> None:
    submit = Recorder()
    editor, files = editor_with_library(qtbot, tmp_path, submit)
    assert fields(editor) == (512, 512, 7.0, "")  # the editor's own start
    choose(editor, files["ponyDiffusionV6XL"])
    assert fields(editor) == (1024, 1024, 5.0, SDXL_NEGATIVE)
    queue(qtbot, editor, submit)
    sent = submit.requests[-1]
    assert (sent.width, sent.height, sent.guidance) == (1024, 1024, 5.0)
    assert sent.negative_prompt == SDXL_NEGATIVE
    assert sent.model == str(files["ponyDiffusionV6XL"])

    choose(editor, files["v1-5-pruned"])
    assert fields(editor) == (512, 512, 7.5, "")
    queue(qtbot, editor, submit)
    sent = submit.requests[-1]
    assert (sent.width, sent.height, sent.guidance, sent.negative_prompt) == (512, 512, 7.5, "")
    assert sent.model == str(files["v1-5-pruned"])


def test_fields_the_user_changed_stay_when_the_model_changes(
        qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop) -> None:
    submit = Recorder()
    editor, files = editor_with_library(qtbot, tmp_path, submit)
    editor.guidance.setValue(9.0)
    editor.negative.setPlainText("extra fingers")
    choose(editor, files["ponyDiffusionV6XL"])
    assert fields(editor) == (1024, 1024, 9.0, "extra fingers")  # only the size followed
    editor.width_box.setValue(832)
    editor.height_box.setValue(1216)
    choose(editor, files["v1-5-pruned"])
    assert fields(editor) == (832, 1216, 9.0, "extra fingers")
    queue(qtbot, editor, submit)
    sent = submit.requests[-1]
    assert (sent.width, sent.height, sent.guidance, sent.negative_prompt) == (
        832, 1216, 9.0, "extra fingers")


def test_back_to_the_model_in_settings_brings_its_family_and_recall_wins(
        qtbot: QtBot, tmp_path: Path, loop: qasync.QEventLoop) -> None:
    # the model in Settings: an SDXL file whose name does not say so (its header does)
    settings_model = write_model(tmp_path / "juggernaut.safetensors", "sdxl_checkpoint")
    editor, files = editor_with_library(qtbot, tmp_path, Recorder(), str(settings_model))
    choose(editor, files["v1-5-pruned"])
    assert fields(editor)[:2] == (512, 512)
    editor.model.setCurrentIndex(0)  # "the one in Settings"
    assert fields(editor) == (1024, 1024, 5.0, SDXL_NEGATIVE)
    # a recalled image's own values are kept, whatever its model's family
    editor.apply_parameters({"prompt": "x", "width": 640, "height": 448, "guidance": 6.5,
                             "negative_prompt": "", "model": "v1-5-pruned"})
    assert editor.model.currentData() == str(files["v1-5-pruned"])
    assert fields(editor) == (640, 448, 6.5, "")
