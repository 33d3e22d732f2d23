"""New jobs in the window start from the profile's settings: routing defaults,
image format; the editor's quality reaches the cloud; the queue shows the policy
each job runs under."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop_app.domain.job import JobState
from desktop_app.domain.request import OutputFormat, Quality, RouteMode
from desktop_app.ui.queue_model import Column
from tests.fakes.fake_openai import FakeOpenAI
from tests.ui.conftest import drive
from tests.ui.window_support import Windows

KEY = "sk-test" + "Qu4l" * 10


def test_the_editor_starts_from_the_routing_defaults_and_follows_a_change_in_settings(
        qtbot: QtBot, tmp_path: Path, windows: Windows) -> None:
    ctx, window = windows.open(tmp_path, {"routing": {
        "mode": "cloud", "allow_adaptation": False, "allow_failover_after_refusal": True}})
    editor = window.editor
    assert editor.mode.currentData() is RouteMode.CLOUD_ONLY
    assert not editor.allow_adaptation.isChecked()
    assert editor.allow_refusal_failover.isChecked()
    assert not editor.allow_fallback.isEnabled()  # nothing to fall back from in cloud only

    dialog = windows.settings_dialog(window)
    general = dialog.general
    assert general.mode.currentData() is RouteMode.CLOUD_ONLY
    general.mode.setCurrentIndex(general.mode.findData(RouteMode.AUTO))
    general.allow_fallback.setChecked(False)
    general.allow_adaptation.setChecked(True)
    dialog.save()
    qtbot.waitUntil(lambda: editor.mode.currentData() is RouteMode.AUTO, timeout=5_000)
    assert editor.allow_adaptation.isChecked() and editor.allow_fallback.isEnabled()
    assert not editor.allow_fallback.isChecked()
    assert ctx.settings.routing.allow_cloud_fallback is False  # saved, not just shown

    # the job records the policy it was queued under, and the queue shows it
    editor.prompt.setPlainText("a red kite over a hill")
    qtbot.mouseClick(editor.generate_button, Qt.MouseButton.LeftButton)
    model = window.queue.model
    qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=5_000)
    job = drive(qtbot, ctx.engine.job(model.row(0).id))
    assert job is not None and job.request.policy.mode is RouteMode.AUTO
    assert job.request.policy.allow_cloud_fallback is False
    shown = model.index(0, Column.PROVIDER).data()
    assert shown.startswith("auto · cloud fallback off · adapts size/count")
    assert "Policy: auto · cloud fallback off" in model.row(0).details()


def test_the_chosen_quality_and_the_profiles_format_reach_the_cloud(
        qtbot: QtBot, tmp_path: Path, windows: Windows) -> None:
    with FakeOpenAI(api_key=KEY) as server:
        ctx, window = windows.open(tmp_path, {"output": {"format": "webp"}},
                                   OPENAI_API_KEY=KEY, IMAGEDESK_OPENAI__BASE_URL=server.base_url)
        editor = window.editor
        assert editor.output_format.currentData() is OutputFormat.WEBP  # from Settings
        drive(qtbot, ctx.engine.start())
        editor.mode.setCurrentIndex(editor.mode.findData(RouteMode.CLOUD_ONLY))
        editor.quality.setCurrentIndex(editor.quality.findData(Quality.HIGH))
        editor.width_box.setValue(1024)
        editor.height_box.setValue(1024)
        editor.prompt.setPlainText("a paper boat on a pond")
        qtbot.mouseClick(editor.generate_button, Qt.MouseButton.LeftButton)
        model = window.queue.model
        qtbot.waitUntil(lambda: model.rowCount() == 1 and model.row(0).state in (
            JobState.SUCCEEDED, JobState.FAILED), timeout=30_000)
        assert model.row(0).state is JobState.SUCCEEDED, model.row(0).details()
        [call] = server.image_requests()
        assert call.body is not None
        assert (call.body["quality"], call.body["output_format"]) == ("high", "webp")
        [record] = drive(qtbot, ctx.engine.search_images(""))
        assert Path(record.path).suffix == ".webp"
