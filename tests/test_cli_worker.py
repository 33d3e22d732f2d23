"""``imagedesk worker``: this machine serves the remote queue through the remote
provider's descriptor, and a desktop's job runs on it (real redis-server, the
real tiny diffusion model, both sides as subprocesses)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.providers.remote_bullmq.conftest import redis_server  # noqa: F401 (fixture)
from tests.providers.remote_bullmq.support import PASSWORD, RedisServer, wait_for_workers
from tests.test_cli import CLI, cli_env, run


@contextlib.contextmanager
def cli_worker(home: Path, server: RedisServer, name: str,
               password: str = PASSWORD) -> Iterator[subprocess.Popen[str]]:
    env = cli_env(home, IMAGEDESK_REMOTE_PASSWORD=password, IMAGEDESK_LOCAL__MODEL="builtin:tiny")
    process = subprocess.Popen([*CLI, "worker", "--redis", server.url, "--name", name],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # its diffusion subprocess too
        process.communicate(timeout=30)


@pytest.mark.slow
def test_a_desktop_job_runs_on_the_cli_worker_and_sigterm_stops_it(
        tmp_path: Path, redis_server: RedisServer) -> None:  # noqa: F811
    with cli_worker(tmp_path / "gpu-box", redis_server, "cli-box") as worker:
        wait_for_workers(redis_server, "imagedesk", {"cli-box"}, timeout=180)
        result = run(tmp_path / "desktop", "generate", "a lighthouse", "--provider", "remote",
                     "--size", "64x64", "--steps", "2", "--json",
                     env={"IMAGEDESK_REMOTE__ENABLED": "true",
                          "IMAGEDESK_REMOTE__REDIS_URL": redis_server.url,
                          "IMAGEDESK_REMOTE_PASSWORD": PASSWORD})
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert (out["state"], out["provider"]) == ("succeeded", "remote")
        [image] = out["images"]
        assert Path(image).is_file()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0


@pytest.mark.slow
def test_a_worker_with_the_wrong_password_exits_5(
        tmp_path: Path, redis_server: RedisServer) -> None:  # noqa: F811
    with cli_worker(tmp_path, redis_server, "wrong", password="not the password") as worker:
        assert worker.wait(120) == 5
