"""Gallery with 10,000 images: time to first paint and the cost of one scroll step.

Real thumbnails on disk (JPEG, 256 px, decoded off the GUI thread), the real
GalleryModel and the icon-mode QListView the app uses, offscreen. A scroll step
is one mouse-wheel notch (3 single steps) followed by processing events, which
includes laying out, painting, and converting thumbnails that arrived.
Targets (issue 6): first paint < 250 ms, scroll-step p95 < 16 ms.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_ui_gallery.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import median, percentile, record
from PySide6.QtCore import QEvent, QObject, QThreadPool
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication

from desktop_app.store.gallery import ImageRecord
from desktop_app.ui.gallery_model import GalleryModel
from desktop_app.ui.gallery_view import make_list_view

N_IMAGES = 10_000
N_FILES = 200
STEPS = 300


class PaintCounter(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.paints = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.paints += 1
        return False


def make_files(folder: Path) -> list[Path]:
    paths = []
    for i in range(N_FILES):
        image = QImage(256, 256, QImage.Format.Format_RGB32)
        image.fill(QColor.fromHsv((i * 37) % 360, 160, 220))
        path = folder / f"img{i:04d}.jpg"
        # the stubs say bytes, but PySide6 6.11 accepts only str here at run time
        image.save(str(path), "JPEG", 85)  # type: ignore[call-overload]
        paths.append(path)
    return paths


def make_records(paths: list[Path]) -> list[ImageRecord]:
    now = time.time()
    return [
        ImageRecord(id=i + 1, path=paths[i % len(paths)], prompt=f"prompt number {i}",
                    negative_prompt="", seed=i, width=512, height=512, steps=20, guidance=7.0,
                    provider="local", model="builtin:tiny", cost_usd=0.0,
                    created_at=now - i, favourite=False, format="png",
                    thumb_path=paths[i % len(paths)], provenance={})
        for i in range(N_IMAGES)
    ]


def main() -> None:
    app = QApplication.instance() or QApplication(sys.argv)
    with tempfile.TemporaryDirectory() as tmp:
        records = make_records(make_files(Path(tmp)))
        model = GalleryModel()
        view = make_list_view(model)
        view.resize(1200, 800)
        counter = PaintCounter()
        view.viewport().installEventFilter(counter)

        started = time.perf_counter()
        model.set_records(records)
        view.show()
        while counter.paints == 0:
            app.processEvents()
        first_paint_ms = (time.perf_counter() - started) * 1000

        # let the first screenful of thumbnails arrive, as a user would see it
        deadline = time.perf_counter() + 5
        while model.thumbnails.pending and time.perf_counter() < deadline:
            app.processEvents()
        bar = view.verticalScrollBar()
        steps_ms = []
        for _ in range(STEPS):
            before = counter.paints
            t0 = time.perf_counter()
            bar.setValue(bar.value() + 3 * bar.singleStep())
            app.processEvents()
            steps_ms.append((time.perf_counter() - t0) * 1000)
            if counter.paints == before:  # make sure a step always paints
                view.viewport().repaint()
        QThreadPool.globalInstance().waitForDone(10_000)
        app.processEvents()
        scrolled_rows = bar.value() // view.gridSize().height()

    record("UI: gallery with 10,000 images (bench/bench_ui_gallery.py)", [
        f"first paint (set 10,000 records + show + first paint): {first_paint_ms:.0f} ms "
        f"(target < 250 ms)",
        f"scroll step (one wheel notch + events + paint), {STEPS} steps over "
        f"~{scrolled_rows} rows: median {median(steps_ms):.1f} ms, "
        f"p95 {percentile(steps_ms, 95):.1f} ms (target < 16 ms), "
        f"worst {max(steps_ms):.1f} ms",
        f"thumbnails: JPEG 256 px decoded to 160 px on the thread pool; "
        f"{len(model.thumbnails)} pixmaps cached (LRU cap {model.thumbnails.capacity})",
    ])


if __name__ == "__main__":
    main()
