from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from pytestqt.qtbot import QtBot

from desktop_app.domain.request import GenerationRequest
from desktop_app.store.a1111 import a1111_parameters
from desktop_app.store.files import write_image_atomic
from desktop_app.ui.prompt_editor import PromptEditor
from desktop_app.ui.recall import parameters_from_png
from tests.fakes.scripted_provider import png_bytes


async def never_submitted(_request: GenerationRequest) -> None:
    raise AssertionError("recalling parameters must not queue a job")


def other_tools_png(folder: Path) -> Path:
    """A PNG as another A1111-compatible tool writes it (no ImageDesk provenance)."""
    infotext = a1111_parameters("a castle on a hill, <lora:x:0.5>", "fog", steps=28,
                                sampler="Euler a", cfg_scale=6.5, seed=987654,
                                width=640, height=448, model="sdxl-base")
    return write_image_atomic(folder, "castle", png_bytes(64, 64), "png",
                              parameters=infotext, provenance={})


def test_parameters_are_read_from_another_tools_png(tmp_path: Path) -> None:
    params = parameters_from_png(other_tools_png(tmp_path))
    assert params == {"prompt": "a castle on a hill, <lora:x:0.5>", "negative_prompt": "fog",
                      "width": 640, "height": 448, "steps": 28, "guidance": 6.5,
                      "seed": 987654, "sampler": "Euler a", "clip_skip": None,
                      "model": "sdxl-base", "model_hash": None}


def test_a_png_without_parameters_recalls_nothing_and_says_so(
        qtbot: QtBot, tmp_path: Path) -> None:
    plain = tmp_path / "plain.png"
    plain.write_bytes(png_bytes())
    editor = PromptEditor(never_submitted, QSettings(str(tmp_path / "w.ini"),
                                                     QSettings.Format.IniFormat))
    qtbot.addWidget(editor)
    editor.prompt.setPlainText("keep me")
    assert not editor.recall_from_file(plain)
    assert editor.prompt.toPlainText() == "keep me"
    assert "no generation parameters" in editor.status.text()


def test_dropping_a_png_on_the_editor_fills_the_form(qtbot: QtBot, tmp_path: Path) -> None:
    editor = PromptEditor(never_submitted, QSettings(str(tmp_path / "w.ini"),
                                                     QSettings.Format.IniFormat))
    qtbot.addWidget(editor)
    editor.show()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(other_tools_png(tmp_path)))])
    # a real drag cannot run offscreen: hand the editor the events a drop delivers
    enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    editor.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    editor.dropEvent(drop)
    assert editor.prompt.toPlainText() == "a castle on a hill, <lora:x:0.5>"
    assert editor.negative.toPlainText() == "fog"
    assert (editor.width_box.value(), editor.height_box.value()) == (640, 448)
    assert (editor.steps.value(), editor.guidance.value()) == (28, 6.5)
    assert editor.seed.text() == "987654" and editor.seed_lock.isChecked()
    assert editor.sampler.currentData() == "Euler a"


def test_a_sampler_this_app_does_not_have_is_named_as_not_recalled(
        qtbot: QtBot, tmp_path: Path) -> None:
    infotext = a1111_parameters("a fox", steps=20, sampler="DPM++ 3M SDE Exponential",
                                seed=1, width=64, height=64)
    path = write_image_atomic(tmp_path, "fox", png_bytes(64, 64), "png",
                              parameters=infotext, provenance={})
    editor = PromptEditor(never_submitted, QSettings(str(tmp_path / "w.ini"),
                                                     QSettings.Format.IniFormat))
    qtbot.addWidget(editor)
    assert editor.recall_from_file(path)
    assert editor.sampler.currentData() is None  # the model's default
    assert "Not recalled: the sampler 'DPM++ 3M SDE Exponential' is not available" in \
        editor.status.text()


def test_recalled_loras_stay_in_the_prompt_and_those_not_installed_are_named(
        qtbot: QtBot, tmp_path: Path) -> None:
    infotext = a1111_parameters("a fox <lora:film_grain:0.8> <lora:add_detail:0.5>",
                                steps=20, sampler="Euler a", seed=1, width=64, height=64,
                                extra={"Lora hashes": "film_grain: 0123456789ab, "
                                                      "add_detail: ba9876543210"})
    path = write_image_atomic(tmp_path, "fox", png_bytes(64, 64), "png",
                              parameters=infotext, provenance={})
    editor = PromptEditor(never_submitted, QSettings(str(tmp_path / "w.ini"),
                                                     QSettings.Format.IniFormat))
    qtbot.addWidget(editor)
    editor.set_loras(["Add_Detail", "other"])  # what the model library found
    assert editor.recall_from_file(path)
    assert editor.prompt.toPlainText() == "a fox <lora:film_grain:0.8> <lora:add_detail:0.5>"
    status = editor.status.text()
    assert "Not recalled: the LoRA film_grain is not installed" in status
    assert "add_detail" not in status
