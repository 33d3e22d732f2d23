"""``JobQueue.cancel`` stops only jobs nobody has started: a running job belongs to
the process running it (the window, or a CLI beside it)."""

from __future__ import annotations

import pytest

from desktop_app.domain.job import IllegalTransition, JobState
from desktop_app.store.jobs import JobNotFound, JobQueue

from .conftest import request


def test_cancel_moves_a_queued_job_to_cancelled_and_out_of_the_run_order(
        queue: JobQueue) -> None:
    job, other = queue.add_many([request("a"), request("b")])
    cancelled = queue.cancel(job.id)
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.error == "Cancelled"
    next_job = queue.next_runnable()
    assert next_job is not None and next_job.id == other.id


def test_cancel_of_a_running_job_is_refused_and_says_where_to_cancel_it(
        queue: JobQueue) -> None:
    job = queue.add(request())
    queue.start(job.id)
    with pytest.raises(IllegalTransition) as raised:
        queue.cancel(job.id)
    assert raised.value.message == (f"Job {job.id} is running; cancel it in the window or "
                                    "process that runs it.")
    stored = queue.get(job.id)
    assert stored is not None and stored.state is JobState.RUNNING
    # the runner that owns it can still record the cancellation
    assert queue.finish(job.id, JobState.CANCELLED).state is JobState.CANCELLED


@pytest.mark.parametrize("final", [JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED])
def test_cancel_of_a_finished_job_is_refused_and_leaves_it_as_it_was(
        queue: JobQueue, final: JobState) -> None:
    job = queue.add(request())
    queue.start(job.id)
    queue.finish(job.id, final, error_message="earlier outcome")
    with pytest.raises(IllegalTransition):
        queue.cancel(job.id)
    stored = queue.get(job.id)
    assert stored is not None
    assert (stored.state, stored.error_message) == (final, "earlier outcome")


def test_cancel_of_an_unknown_job_says_there_is_no_such_job(queue: JobQueue) -> None:
    with pytest.raises(JobNotFound):
        queue.cancel(12345)
