"""No GPU worker outlives the process that started it (issue 12.4): the CLI, run as
a user runs it, on the built-in tiny model, stopped by a signal or killed."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.test_cli import job_state, start_slow_generate


def spawned_children(parent: subprocess.Popen[str], timeout: float = 120) -> list[psutil.Process]:
    """The CLI's GPU worker and multiprocessing's resource tracker, once both run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = psutil.Process(parent.pid).children(recursive=True)
        lines = [" ".join(c.cmdline()) for c in children]
        if any("resource_tracker" in line for line in lines) and any(
                "multiprocessing" in line and "resource_tracker" not in line for line in lines):
            return children
        time.sleep(0.05)
    raise AssertionError("the CLI never started its GPU worker")


def gone_within(processes: list[psutil.Process], timeout: float) -> float:
    """Seconds until none of ``processes`` runs any more; fails after ``timeout``."""
    started = time.monotonic()
    while True:
        alive = [p for p in processes
                 if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            for p in alive:
                p.kill()
            raise AssertionError(f"still running: {[' '.join(p.cmdline()) for p in alive]}")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_signal_hands_the_job_back_says_so_and_leaves_no_worker(
        tmp_path: Path, sig: signal.Signals, code: int) -> None:
    home = tmp_path
    process = start_slow_generate(home)
    try:
        children = spawned_children(process)
        process.send_signal(sig)
        _out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == code, err
    lines = [line for line in err.splitlines() if line.startswith("imagedesk:")]
    assert lines == [f"imagedesk: stopped by {sig.name}; job 1 went back to the queue "
                     "(imagedesk queue run finishes it)"], err
    assert "Traceback" not in err
    assert job_state(home) == "queued"  # not left "running", not cancelled: nothing lost
    gone_within(children, timeout=2.0)  # the CLI stopped them before it exited


@pytest.mark.slow
def test_a_killed_cli_takes_its_gpu_worker_and_resource_tracker_with_it(
        tmp_path: Path) -> None:
    home = tmp_path
    process = start_slow_generate(home)
    try:
        children = spawned_children(process)
        process.kill()  # SIGKILL: no handler runs in the CLI
        process.wait()
        took = gone_within(children, timeout=5.0)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    print(f"worker and tracker gone {took:.2f} s after the CLI was killed")
    assert job_state(home) == "running"  # what a crash leaves; the next start requeues it


SLOW_LOAD_PARENT = """
import asyncio, os, shutil, sys
from pathlib import Path
from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import CancelToken
from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider

async def main():
    data = Path(sys.argv[1])
    provider = LocalDiffusionProvider(LocalDiffusionConfig(data_dir=data, torch_threads=1))
    request = GenerationRequest(prompt="x", width=64, height=64, steps=2)
    await provider.generate(request, lambda event: None, CancelToken())  # builds the model
    model = data / "big-model"
    shutil.copytree(data / "models" / "builtin-tiny", model)
    with open(model / "extra-weights.bin", "wb") as handle:  # sparse: no disk used
        handle.truncate(int(sys.argv[2]))
    print(provider.worker_pid, model / "extra-weights.bin", flush=True)
    await provider.generate(GenerationRequest(prompt="x", width=64, height=64, steps=2,
                                              model=str(model)),
                            lambda event: None, CancelToken())

asyncio.run(main())
"""


@pytest.mark.slow
def test_a_worker_busy_loading_a_model_exits_when_its_parent_is_killed(
        tmp_path: Path) -> None:
    """While a model loads and is hashed (minutes for real weights) the worker sends
    nothing, so a dead parent is only noticed by watching for it."""
    import os
    import sys

    parent = subprocess.Popen(
        [sys.executable, "-c", SLOW_LOAD_PARENT, str(tmp_path), str(64 * 2**30)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    try:
        assert parent.stdout is not None
        pid, big = parent.stdout.readline().split()
        worker = psutil.Process(int(pid))
        deadline = time.monotonic() + 120
        while not any(f.path == big for f in worker.open_files()):
            assert time.monotonic() < deadline, "the worker never started reading the model"
            time.sleep(0.02)
        parent.kill()
        parent.wait()
        took = gone_within([worker], timeout=3.0)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    print(f"worker busy hashing a model gone {took:.2f} s after its parent was killed")
