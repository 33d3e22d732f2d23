"""A real redis-server for the tests, a stand-in GPU for in-process workers, and
worker processes that run the real tiny diffusion model."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

from desktop_app.domain.errors import Cancelled, ProviderError
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import (
    CancelToken,
    Capabilities,
    ConnectionOutcome,
    ConnectionReport,
    Health,
    HealthState,
    Phase,
    Progress,
    ProgressCallback,
    ProviderKind,
    SizeRule,
)

REDIS_SERVER = shutil.which("redis-server")
PASSWORD = "correct horse battery"
REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server on 127.0.0.1 with append-only persistence, fsync on every write."""

    def __init__(self, folder: Path, *, password: str | None = PASSWORD) -> None:
        assert REDIS_SERVER is not None
        self.folder = folder
        self.port = free_port()
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None
        lines = [f"port {self.port}", "bind 127.0.0.1", f"dir {folder}", "appendonly yes",
                 "appendfsync always", 'save ""', "daemonize no", "loglevel warning",
                 f"logfile {folder / 'redis.log'}"]
        if password:
            lines.append(f'requirepass "{password}"')
        self.conf = folder / "redis.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen([str(REDIS_SERVER), str(self.conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis(port=self.port, password=self.password) as client:
                    client.ping()
                    return
            except redis.exceptions.BusyLoadingError:
                pass
            except redis.exceptions.ConnectionError:
                if self.process.poll() is not None:
                    raise RuntimeError("redis-server exited: " +
                                       (self.folder / "redis.log").read_text()[-500:]) from None
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer within 10 s")
            time.sleep(0.05)

    def kill(self) -> None:
        """Stop at once, as a crash or power cut would (SIGKILL: no save on the way out)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password, decode_responses=True)


def png(width: int, height: int, seed: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (seed % 256, 90, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


class StandInGPU:
    """An ``ImageProvider`` that makes flat PNGs step by step, for in-process workers.

    ``fail`` is raised instead of generating; ``step_s`` paces the steps, so
    cancels and shutdowns can land mid-job. ``seen_cancel`` records the reason
    of a cancel that reached it, ``cancelled_at_step`` the step it had reached.
    """

    def __init__(self, *, step_s: float = 0.01, max_side: int = 1024,
                 fail: ProviderError | None = None) -> None:
        self.step_s = step_s
        self.max_side = max_side
        self.fail = fail
        self.seen_cancel: str | None = None
        self.cancelled_at_step: int | None = None
        self.started = asyncio.Event()
        self.calls = 0

    @property
    def name(self) -> str:
        return "local"

    @property
    def kind(self) -> ProviderKind:
        return ProviderKind.LOCAL

    def capabilities(self) -> Capabilities:
        return Capabilities(sizes=SizeRule(min_side=64, max_side=self.max_side),
                            max_images_per_call=4, supports_seed=True,
                            supports_negative_prompt=True, supports_steps=True,
                            supports_guidance=True, estimated_latency_s=1.0)

    async def health(self) -> Health:
        return Health(HealthState.READY, "stand-in", {"device": "cpu", "device_name": "stand-in"})

    async def test_connection(self) -> ConnectionReport:
        return ConnectionReport(self.name, ConnectionOutcome.PASSED, "ready")

    async def generate(self, request: GenerationRequest, progress: ProgressCallback,
                       cancel: CancelToken) -> list[GeneratedImage]:
        self.calls += 1
        self.started.set()
        if self.fail is not None:
            raise self.fail
        for step in range(request.steps):
            if cancel.cancelled:
                self.seen_cancel = cancel.reason
                self.cancelled_at_step = step
                raise Cancelled(cancel.reason, provider="local")
            progress(Progress(Phase.GENERATING, step + 1, request.steps))
            await asyncio.sleep(self.step_s)
        seed = request.seed or 0
        return [GeneratedImage(png(request.width, request.height, seed + i), "png",
                               request.width, request.height, "local", "stand-in model",
                               seed + i, details={"device": "cpu (stand-in)"})
                for i in range(request.n)]

    async def close(self) -> None:
        return None


class WorkerProcess:
    """``python -m desktop_app.providers.remote_bullmq.worker`` on the built-in tiny model,
    in its own session so that killing it takes its diffusion subprocess along."""

    def __init__(self, server: RedisServer, queue: str, data_dir: Path, name: str,
                 log_dir: Path, *, lock_s: float = 3.0, stalled_check_s: float = 1.0) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        env = {**os.environ, "IMAGEDESK_REMOTE_PASSWORD": server.password or "",
               "TRANSFORMERS_VERBOSITY": "error", "PYTHONPATH": str(REPO)}
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "desktop_app.providers.remote_bullmq.worker",
                 "--redis", server.url, "--queue", queue, "--data-dir", str(data_dir),
                 "--name", name, "--torch-threads", "1", "--lock-s", str(lock_s),
                 "--stalled-check-s", str(stalled_check_s), "--heartbeat-s", "0.5",
                 "--shutdown-grace-s", "20"],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env,
                start_new_session=True)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def wait_for_workers(server: RedisServer, queue: str, names: set[str], timeout: float = 120,
                     processes: list[WorkerProcess] | None = None) -> None:
    """Until every named worker advertises itself ready (model loaded)."""
    import json

    deadline = time.monotonic() + timeout
    with server.client() as client:
        while time.monotonic() < deadline:
            ready = set()
            for worker_id in client.smembers(f"imagedesk:{queue}:workers"):
                text = client.get(f"imagedesk:{queue}:worker:{worker_id}")
                if text and json.loads(text)["state"] in ("ready", "busy"):
                    ready.add(json.loads(text)["name"])
            if names <= ready:
                return
            for proc in processes or []:
                if proc.process.poll() is not None:
                    raise RuntimeError(f"worker {proc.name} exited:\n{proc.output()}")
            time.sleep(0.2)
    raise RuntimeError(f"workers {names} not ready in {timeout:.0f} s")
