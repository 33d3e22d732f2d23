"""Start-up removes temp files a crash left, but never one another process is writing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from desktop_app.store.files import TEMP_SUFFIX, remove_stale_temp_files


def test_only_temp_files_of_dead_writers_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        day = tmp_path / "2026-11-30"
        day.mkdir()
        left = day / f".img_job1_0.{dead.stdout.strip()}.abc123{TEMP_SUFFIX}"
        busy = day / f".img_job2_0.{alive.pid}.def456{TEMP_SUFFIX}"
        image = day / "img_job3_0.png"
        for path in (left, busy, image):
            path.write_bytes(b"x")
        assert remove_stale_temp_files(tmp_path) == 1
        assert not left.exists() and busy.exists() and image.exists()
    finally:
        alive.kill()
        alive.wait()
