"""The route line under Generate, the private switch and the strategy choice, in the
real window on the real engine, with the fake OpenAI server counting requests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest, RouteStrategy
from tests.fakes.fake_openai import FakeOpenAI
from tests.ui.conftest import drive
from tests.ui.window_support import Windows

KEY = "sk-test-" + "q" * 32


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as fake:
        yield fake


def summary_before_skips(text: str) -> str:
    return text.split("skipped")[0]


def test_the_route_line_quotes_the_cloud_and_a_private_job_never_reaches_it(
        qtbot: QtBot, windows: Windows, tmp_path: Path, server: FakeOpenAI) -> None:
    ctx, window = windows.open(tmp_path, OPENAI_API_KEY=KEY,
                               IMAGEDESK_OPENAI__BASE_URL=server.base_url,
                               IMAGEDESK_LOCAL__MODEL="/nonexistent/gone.safetensors")
    window.show()
    drive(qtbot, ctx.engine.start())  # the runner, as the app starts it
    editor = window.editor
    editor.prompt.setPlainText("a lighthouse at dusk")
    qtbot.waitUntil(lambda: "openai (~" in editor.route.summary.text(), timeout=10_000)
    assert "$" in summary_before_skips(editor.route.summary.text())  # the price is shown

    editor.private.setChecked(True)
    qtbot.waitUntil(lambda: "openai (~" not in editor.route.summary.text(), timeout=10_000)
    editor.route.summary.linkActivated.emit("skipped")  # "why?"
    assert editor.route.details.isVisible()
    assert "openai: this job is private: it never leaves this machine" in \
        editor.route.details.text()

    with qtbot.waitSignal(editor.submitted, timeout=10_000) as queued:
        editor.generate()
    request = queued.args[0]
    assert isinstance(request, GenerationRequest) and request.policy.private
    [job] = drive(qtbot, ctx.engine.jobs())
    done = drive(qtbot, ctx.engine.wait_for(job.id), timeout_ms=30_000)
    assert done.state is JobState.FAILED and done.request.policy.private
    assert server.request_count == 0  # not even by failover


def test_the_strategy_and_styles_chosen_in_the_editor_are_what_is_queued(
        qtbot: QtBot, windows: Windows, tmp_path: Path) -> None:
    ctx, window = windows.open(tmp_path, {"routing": {"strategy": "fastest"}},
                               IMAGEDESK_LOCAL__MODEL="/nonexistent/gone.safetensors")
    editor = window.editor
    assert editor.strategy.currentData() is RouteStrategy.FASTEST  # the profile's default
    editor.strategy.setCurrentIndex(editor.strategy.findData(RouteStrategy.CHEAPEST))
    editor.prompt.setPlainText("a lighthouse")
    editor.styles.setText("Nope")
    editor.generate()
    qtbot.waitUntil(lambda: "no style named 'Nope'" in editor.error_text("styles")
                    or "no style named 'Nope'" in editor.status.text(), timeout=10_000)
    assert drive(qtbot, ctx.engine.jobs()) == []  # refused before anything was queued
    editor.styles.setText("")
    with qtbot.waitSignal(editor.submitted, timeout=10_000) as queued:
        editor.generate()
    assert queued.args[0].policy.strategy is RouteStrategy.CHEAPEST


def test_styles_made_in_the_window_reach_the_provider(
        qtbot: QtBot, windows: Windows, tmp_path: Path, server: FakeOpenAI) -> None:
    ctx, window = windows.open(tmp_path, OPENAI_API_KEY=KEY,
                               IMAGEDESK_OPENAI__BASE_URL=server.base_url,
                               IMAGEDESK_LOCAL__MODEL="/nonexistent/gone.safetensors")
    drive(qtbot, ctx.engine.start())
    editor = window.editor
    source = tmp_path / "a1111-styles.csv"
    source.write_text("name,prompt,negative_prompt\nGrainy,film grain,\n", encoding="utf-8")
    dialog = editor.open_styles()
    assert dialog is not None
    dialog.import_file(source)  # what "Import A1111 styles.csv…" does with the file chosen
    dialog.add_style()
    row = dialog.table.rowCount() - 1
    for column, text in enumerate(("Painted", "oil painting of {prompt}", "photo")):
        dialog.set_cell(row, column, text)
    dialog.table.selectRow(row)
    dialog.use_button.click()
    assert editor.styles.text() == "Painted"
    assert [s.name for s in editor.style_library.all()] == ["Grainy", "Painted"]  # type: ignore[union-attr]

    editor.prompt.setPlainText("a lighthouse")
    with qtbot.waitSignal(editor.submitted, timeout=10_000):
        editor.generate()
    [job] = drive(qtbot, ctx.engine.jobs())
    done = drive(qtbot, ctx.engine.wait_for(job.id), timeout_ms=30_000)
    assert done.state is JobState.SUCCEEDED and done.request.styles == ("Painted",)
    [sent] = server.image_requests()
    assert sent.body is not None and sent.body["prompt"] == "oil painting of a lighthouse"


def test_a_style_without_a_name_is_not_saved_and_says_which_row(
        qtbot: QtBot, windows: Windows, tmp_path: Path) -> None:
    _, window = windows.open(tmp_path)
    dialog = window.editor.open_styles()
    assert dialog is not None
    dialog.add_style()
    assert not dialog.save()
    assert dialog.error.isVisibleTo(dialog) and "Row 1" in dialog.error.text()
    assert not window.editor.style_library.path.exists()  # type: ignore[union-attr]


def test_a_model_from_the_library_is_chosen_per_job_and_remembered(
        qtbot: QtBot, windows: Windows, tmp_path: Path) -> None:
    from tests.providers.local_diffusion.support import SD1_KEYS, write_safetensors

    a1111 = tmp_path / "webui" / "models"
    (a1111 / "Stable-diffusion").mkdir(parents=True)
    checkpoint = write_safetensors(a1111 / "Stable-diffusion" / "dreamy_v2.safetensors",
                                   SD1_KEYS)
    settings = {"local": {"model_folders": [str(a1111)]}}
    _, window = windows.open(tmp_path / "home", settings)
    editor = window.editor
    qtbot.waitUntil(lambda: editor.model.findData(str(checkpoint)) > 0, timeout=10_000)
    editor.model.setCurrentIndex(editor.model.findData(str(checkpoint)))
    assert editor.guidance.value() == 7.5  # SD 1.x's default, from the library's family
    editor.prompt.setPlainText("a lighthouse")
    with qtbot.waitSignal(editor.submitted, timeout=10_000) as queued:
        editor.generate()
    assert queued.args[0].model == str(checkpoint)
    assert window.window_settings.value("editor/model") == str(checkpoint)  # remembered

    # a recalled PNG names its model: found by name here, or said to be missing
    assert editor.apply_parameters({"model": "dreamy_v2", "model_hash": "0123456789"}) == []
    assert editor.model.currentData() == str(checkpoint)
    missing = editor.apply_parameters({"model": "ponyXL", "model_hash": "abcdef0123"})
    assert missing == ["the model ponyXL [abcdef0123] is not installed (the one in Settings "
                       "is used)"]
    assert editor.model.currentData() is None
