"""A cloud job interrupted during a paid call is not re-run silently: recovery
holds it as failed with the reason until the user retries it (issue 11.10)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from desktop_app.domain.job import JobState
from desktop_app.store.interrupted import INTERRUPTED_PAID_ERROR
from desktop_app.store.jobs import JobQueue
from tests.fakes.fake_openai import FakeOpenAI, Fault
from tests.store.conftest import request
from tests.test_cli import CLI, cli_env, run

KEY = "sk-test-paid-call-0123456789abcdef"


def test_recovery_holds_a_job_marked_in_a_paid_call_and_requeues_the_rest(
        queue: JobQueue, tmp_path: Path) -> None:
    in_call, charged, failed_call, local = queue.add_many([request(f"job {i}") for i in range(4)])
    for job in (in_call, charged, failed_call, local):
        queue.start(job.id)
    queue.paid_call_started(in_call.id, "openai")  # the app died during this call
    queue.paid_call_started(charged.id, "openai")
    queue.paid_call_ended(charged.id, charged=True)  # ... or before its images were saved
    queue.paid_call_started(failed_call.id, "openai")
    queue.paid_call_ended(failed_call.id, charged=False)  # the call failed: nothing charged
    paid_image, local_image = tmp_path / "paid.png", tmp_path / "local.png"
    for path, job in ((paid_image, charged), (local_image, local)):
        path.write_bytes(b"written, never indexed")
        queue.note_pending_files(job.id, [path])

    assert queue.recover_interrupted() == [failed_call.id, local.id]
    for job_id, where in ((in_call.id, "during a paid call to openai"),
                          (charged.id, "before they were saved")):
        held = queue.get(job_id)
        assert held is not None and held.state is JobState.FAILED
        assert held.error == INTERRUPTED_PAID_ERROR and held.error_message is not None
        assert where in held.error_message and "Retry it" in held.error_message
    assert paid_image.exists() and str(paid_image) in (  # the charged image is kept
        queue.get(charged.id).error_message or "")  # type: ignore[union-attr]
    assert not local_image.exists()  # a requeued job's half-saved files go, as before
    assert queue.retry(in_call.id).state is JobState.QUEUED  # the user decides
    queue.start(in_call.id)
    assert in_call.id in queue.recover_interrupted()  # the retry cleared the old mark


def test_finishing_a_job_clears_its_paid_call_mark(queue: JobQueue) -> None:
    job = queue.add(request())
    queue.start(job.id)
    queue.paid_call_started(job.id, "openai")
    queue.paid_call_ended(job.id, charged=True)
    queue.finish(job.id, JobState.FAILED, error="Transient", error_message="disk trouble")
    queue.retry(job.id)
    queue.start(job.id)
    assert queue.recover_interrupted() == [job.id]


def _wait_for(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_cloud_job_killed_during_its_call_waits_for_a_retry(tmp_path: Path) -> None:
    with FakeOpenAI(api_key=KEY) as fake:
        env = {"OPENAI_API_KEY": KEY, "IMAGEDESK_OPENAI__BASE_URL": fake.base_url}
        fake.enqueue(Fault.OK, delay=120)  # the paid call is in flight when the app dies
        proc = subprocess.Popen([*CLI, "generate", "a paid cat", "--provider", "openai"],
                                env=cli_env(tmp_path, **env), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            _wait_for(lambda: len(fake.image_requests()) == 1, 120)
        finally:
            proc.kill()
            proc.wait()

        ran = run(tmp_path, "queue", "run", env=env)
        assert ran.returncode == 0, ran.stderr
        [job] = json.loads(run(tmp_path, "queue", "list", "--json", env=env).stdout)
        assert job["state"] == "failed"
        assert "during a paid call to openai" in job["error"]
        assert len(fake.image_requests()) == 1  # not called (and charged) again by itself

        assert run(tmp_path, "queue", "retry", str(job["id"]), env=env).returncode == 0
        rerun = run(tmp_path, "queue", "run", "--json", env=env)
        assert rerun.returncode == 0, rerun.stderr
        assert json.loads(rerun.stdout)["succeeded"] == 1
        assert len(fake.image_requests()) == 2
