"""``imagedesk worker`` killed outright (SIGKILL to it alone, not its process group)
does not leave its diffusion subprocess running (issue 12.4): the child notices
its parent is gone even while it loads a model, when it sends nothing."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.providers.local_diffusion.test_worker_lifetime import gone_within
from tests.providers.remote_bullmq.support import REDIS_SERVER, REPO, RedisServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed "
                       "(Debian/Ubuntu: apt-get install redis-server)"),
]

BUILD_TINY = """
import asyncio, sys
from pathlib import Path
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import CancelToken
from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider

async def main():
    provider = LocalDiffusionProvider(LocalDiffusionConfig(data_dir=Path(sys.argv[1])))
    try:
        await provider.warm(lambda event: None)
    finally:
        await provider.close()

asyncio.run(main())
"""


def big_model(root: Path) -> Path:
    """A copy of the built-in tiny model with a 64 GiB sparse file that hashing reads."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TRANSFORMERS_VERBOSITY": "error"}
    subprocess.run([sys.executable, "-c", BUILD_TINY, str(root / "build")], env=env,
                   check=True, timeout=300)
    model = root / "big-model"
    shutil.copytree(root / "build" / "models" / "builtin-tiny", model)
    with open(model / "extra-weights.bin", "wb") as handle:
        handle.truncate(64 * 2**30)
    return model


def test_a_killed_remote_worker_takes_its_diffusion_child_along(tmp_path: Path) -> None:
    model = big_model(tmp_path)
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    server.start()
    env = {**os.environ, "IMAGEDESK_REMOTE_PASSWORD": server.password or "",
           "TRANSFORMERS_VERBOSITY": "error", "PYTHONPATH": str(REPO)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "desktop_app.providers.remote_bullmq.worker", "--redis",
         server.url, "--queue", "q", "--data-dir", str(tmp_path / "data"), "--model",
         str(model), "--torch-threads", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, env=env,
        start_new_session=True)
    try:
        big = str(model / "extra-weights.bin")
        deadline = time.monotonic() + 120
        child = None
        while child is None:
            assert time.monotonic() < deadline and worker.poll() is None, "never loaded"
            for proc in psutil.Process(worker.pid).children(recursive=True):
                try:
                    if any(f.path == big for f in proc.open_files()):
                        child = proc
                except psutil.Error:
                    pass
            time.sleep(0.02)
        os.kill(worker.pid, signal.SIGKILL)  # the worker alone, not its process group
        worker.wait(10)
        took = gone_within([child], timeout=3.0)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        server.stop()
    print(f"diffusion child gone {took:.2f} s after its remote worker was killed")
