"""Closing panes while their thumbnails decode must never crash the process.

Each ``ThumbnailCache`` used to own the object its pool threads emitted results on;
deleting a cache (closing a pane) while a decode was inside ``emit`` freed that
object under the thread: a segmentation fault, at random. It ended ``make test``
with no pytest summary about one run in three. This runs the race many times in
a child process (a crash there fails this test instead of ending the suite); before
the fix it crashed in most runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

STRESS = """
import sys
from pathlib import Path
import shiboken6
from PySide6.QtCore import QThreadPool
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication
from desktop_app.ui.thumbnails import ThumbnailCache

app = QApplication([])
path = Path(sys.argv[1])
image = QImage(64, 64, QImage.Format.Format_RGB32)
image.fill(QColor(30, 120, 200))
assert image.save(str(path))
pool = QThreadPool()
pool.setMaxThreadCount(2)
for _ in range(3000):
    cache = ThumbnailCache(size=32, pool=pool)
    for key in range(4):
        cache.pixmap(key, path)
    app.processEvents()
    shiboken6.delete(cache)  # the pane closes while its decodes run
assert pool.waitForDone(30_000)
print("no crash")
"""


@pytest.mark.slow
def test_closing_panes_while_thumbnails_decode_never_crashes(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", STRESS, str(tmp_path / "a.png")],
                            capture_output=True, text=True, timeout=240, check=False)
    assert (result.returncode, result.stdout.strip()) == (0, "no crash"), result.stderr[-2000:]
