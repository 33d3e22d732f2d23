"""Render the real app offscreen with real content and save screenshots here.

Four local jobs on the built-in tiny model (CPU) and one job whose local model
is missing, so it fails over to a fake OpenAI server on 127.0.0.1; then one
image becomes the source of the next job with a mask painted over part of it,
and the main window and the settings dialog are grabbed.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots/make_screenshots.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import qasync  # noqa: E402
from PySide6.QtCore import QPointF  # noqa: E402
from PySide6.QtWidgets import QApplication, QScrollArea  # noqa: E402

from desktop_app.bootstrap import open_app  # noqa: E402
from desktop_app.domain.request import GenerationRequest  # noqa: E402
from desktop_app.ui.app import build_window, make_application  # noqa: E402
from desktop_app.ui.main_window import MainWindow  # noqa: E402
from desktop_app.ui.prompt_editor import PromptEditor  # noqa: E402
from desktop_app.ui.settings_dialog import SettingsDialog  # noqa: E402
from tests.fakes.fake_openai import FakeOpenAI  # noqa: E402
from tests.fakes.keyring_memory import InMemoryKeyring, installed_keyring  # noqa: E402

OUT = Path(__file__).resolve().parent
KEY = "sk-screenshot" + "Ab12" * 10
PROMPTS = [
    ("a lighthouse on a cliff at dusk, oil painting", 11),
    ("a red fox in fresh snow, morning light", 23),
    ("isometric city block at night, neon signs", 37),
    ("a bowl of ramen, studio photo, shallow depth of field", 41),
]


async def wait_idle(window: MainWindow, jobs: int) -> None:
    model = window.queue.model
    while not (model.rowCount() >= jobs and all(model.row(i).state.finished
                                                 for i in range(model.rowCount()))):
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # thumbnails


async def paint_a_mask(window: MainWindow, editor: PromptEditor) -> None:
    """The selected image becomes the next job's source; a mask is painted over
    its middle, as a user would before an inpaint job."""
    record = window.gallery.current_record()
    assert record is not None
    window.use_as_source(record)
    while editor.source_tools.source is None:
        await asyncio.sleep(0.05)
    editor.prompt.setPlainText("a red sailboat on the water")
    viewer = window.viewer
    viewer.brush_button.click()
    viewer.brush_size.setValue(max(8, record.width // 8))
    w, h = record.width, record.height
    for y in range(h * 2 // 5, h * 3 // 5, max(1, h // 20)):
        viewer.canvas.paint_stroke(QPointF(w * 0.3, y), QPointF(w * 0.7, y))
    window.findChild(QScrollArea).ensureWidgetVisible(editor.source_tools)  # type: ignore[union-attr]
    await asyncio.sleep(0.3)


async def scenario(window: MainWindow, ctx: object, app: QApplication) -> None:
    engine = ctx.engine  # type: ignore[attr-defined]
    await engine.start()
    window.load()
    editor = window.editor
    for prompt, seed in PROMPTS:
        editor.prompt.setPlainText(prompt)
        editor.negative.setPlainText("blurry, low quality")
        editor.width_box.setValue(256)
        editor.height_box.setValue(256)
        editor.steps.setValue(12)
        editor.seed.setText(str(seed))
        editor.seed_lock.setChecked(True)
        editor.generate()
        await asyncio.sleep(0.2)
    await wait_idle(window, len(PROMPTS))
    # a job whose local model file is missing: local fails (Misconfigured), OpenAI serves it
    await engine.submit(GenerationRequest(
        "a watercolour map of an imaginary island", width=256, height=256, steps=12, seed=5,
        model=str(OUT / "missing-model.safetensors")))
    await wait_idle(window, len(PROMPTS) + 1)
    window.queue.table.selectRow(window.queue.model.rowCount() - 1)
    window.gallery.select_image(window.gallery.model.record(1).id)
    window.providers.refresh()
    await asyncio.sleep(1.0)
    await paint_a_mask(window, editor)
    app.processEvents()
    window.grab().save(str(OUT / "main-window.png"))
    dialog = SettingsDialog(ctx.settings, ctx.keys, save=lambda s: None,  # type: ignore[attr-defined]
                            parent=window)
    dialog.order.setCurrentRow(1)
    dialog.show()
    await asyncio.sleep(0.3)
    dialog.grab().save(str(OUT / "settings-dialog.png"))
    dialog.close()
    await engine.close()


def main() -> None:
    with (tempfile.TemporaryDirectory() as home, FakeOpenAI(api_key=KEY) as server,
          installed_keyring(InMemoryKeyring())):
        os.environ.pop("OPENAI_API_KEY", None)
        os.environ.update(IMAGEDESK_HOME=home, IMAGEDESK_LOCAL__MODEL="builtin:tiny",
                          IMAGEDESK_LOCAL__DEVICE="cpu", IMAGEDESK_ROUTING__CPU_AFTER_CLOUD="false",
                          IMAGEDESK_OPENAI__BASE_URL=server.base_url)
        app = make_application([])
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        ctx = open_app(os.environ)
        ctx.keys.set("openai", KEY)  # as the settings dialog would: into the (test) keyring
        window = build_window(ctx)
        window.resize(1440, 900)
        window.show()
        with loop:
            loop.run_until_complete(scenario(window, ctx, app))
    print("wrote", ", ".join(p.name for p in sorted(OUT.glob("*.png"))))


if __name__ == "__main__":
    main()
