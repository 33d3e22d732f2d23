from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from desktop_app.domain.job import Attempt, IllegalTransition, Job, JobState, Outcome
from desktop_app.store.database import open_database
from desktop_app.store.gallery import Gallery, NewImage
from desktop_app.store.jobs import JobNotFound, JobQueue

from .conftest import FakeClock, request


def ids(jobs: list[Job]) -> list[int]:
    return [j.id for j in jobs]


def run_order(queue: JobQueue) -> list[int]:
    return ids(queue.jobs({JobState.QUEUED}))


def test_added_job_is_queued_with_its_request_and_time(queue: JobQueue, clock: FakeClock) -> None:
    job = queue.add(request("a red fox, snow", seed=7, steps=12), priority=2)
    stored = queue.get(job.id)
    assert stored is not None
    assert stored.state is JobState.QUEUED
    assert stored.request == job.request
    assert (stored.request.prompt, stored.request.seed, stored.request.steps) == (
        "a red fox, snow", 7, 12)
    assert stored.priority == 2
    assert stored.created_at == clock.now


def test_add_many_accepts_all_in_order(queue: JobQueue) -> None:
    jobs = queue.add_many([request(f"prompt {i}") for i in range(5)])
    assert run_order(queue) == ids(jobs)
    assert [j.request.prompt for j in queue.jobs()] == [f"prompt {i}" for i in range(5)]


def test_get_of_a_missing_job_is_none_and_mutations_raise_job_not_found(queue: JobQueue) -> None:
    assert queue.get(12345) is None
    for action in (queue.start, queue.cancel, queue.retry, lambda i: queue.move(i, 1),
                   lambda i: queue.finish(i, JobState.FAILED),
                   lambda i: queue.add_attempt(i, Attempt("local", Outcome.FAILED))):
        with pytest.raises(JobNotFound, match="no job 12345"):
            action(12345)
    with pytest.raises(KeyError):
        queue.start(12345)


def test_next_runnable_takes_priority_then_age_and_skips_excluded(queue: JobQueue) -> None:
    low1 = queue.add(request("low one"))
    high = queue.add(request("high"), priority=5)
    low2 = queue.add(request("low two"))
    assert queue.next_runnable().id == high.id  # type: ignore[union-attr]
    assert queue.next_runnable(exclude=[high.id]).id == low1.id  # type: ignore[union-attr]
    assert queue.next_runnable(exclude=[high.id, low1.id]).id == low2.id  # type: ignore[union-attr]
    assert queue.next_runnable(exclude=[high.id, low1.id, low2.id]) is None


def test_next_runnable_ignores_jobs_that_are_not_queued(queue: JobQueue) -> None:
    first, second = queue.add_many([request("one"), request("two")])
    queue.start(first.id)
    assert queue.next_runnable().id == second.id  # type: ignore[union-attr]
    queue.cancel(second.id)
    assert queue.next_runnable() is None


def test_start_marks_running_and_stamps_the_time(queue: JobQueue, clock: FakeClock) -> None:
    job = queue.add(request())
    clock.advance(30)
    started = queue.start(job.id)
    assert started.state is JobState.RUNNING
    assert started.started_at == clock.now


def test_a_job_cannot_be_started_twice(queue: JobQueue) -> None:
    job = queue.add(request())
    queue.start(job.id)
    with pytest.raises(IllegalTransition):
        queue.start(job.id)


def test_attempts_are_appended_in_order_and_kept(queue: JobQueue, db_path: Path) -> None:
    job = queue.add(request())
    queue.start(job.id)
    first = Attempt("local", Outcome.FAILED, error="OutOfMemory", message="CUDA out of memory",
                    duration_s=1.5, adaptations=("size 1024x1024 -> 768x768",), started_at=5.0)
    second = Attempt("openai", Outcome.SUCCEEDED, duration_s=9.0, cost_usd=0.04)
    queue.add_attempt(job.id, first)
    queue.add_attempt(job.id, second)
    reopened = JobQueue(open_database(db_path))
    assert reopened.get(job.id).attempts == [first, second]  # type: ignore[union-attr]
    assert reopened.get(job.id).cost_usd == pytest.approx(0.04)  # type: ignore[union-attr]


def test_finish_records_outcome_provider_error_and_images(queue: JobQueue,
                                                          clock: FakeClock) -> None:
    ok, bad = queue.add_many([request("ok"), request("bad")])
    queue.start(ok.id)
    queue.start(bad.id)
    clock.advance(10)
    done = queue.finish(ok.id, JobState.SUCCEEDED, provider="local", image_ids=[3, 4])
    failed = queue.finish(bad.id, JobState.FAILED, error="ContentRejected",
                          error_message="the prompt was refused")
    assert (done.state, done.provider, done.image_ids, done.finished_at) == (
        JobState.SUCCEEDED, "local", [3, 4], clock.now)
    assert (failed.state, failed.error, failed.error_message) == (
        JobState.FAILED, "ContentRejected", "the prompt was refused")


def test_finish_cannot_finish_twice_or_go_back_to_running(queue: JobQueue) -> None:
    job = queue.add(request())
    queue.start(job.id)
    queue.finish(job.id, JobState.SUCCEEDED)
    with pytest.raises(IllegalTransition):
        queue.finish(job.id, JobState.FAILED)
    with pytest.raises(ValueError):
        queue.finish(job.id, JobState.RUNNING)


def test_running_job_finished_as_cancelled_by_the_runner(queue: JobQueue) -> None:
    job = queue.add(request())
    queue.start(job.id)
    cancelled = queue.finish(job.id, JobState.CANCELLED, error="Cancelled",
                             error_message="cancelled by the user")
    assert cancelled.state is JobState.CANCELLED


def test_cancel_a_queued_job(queue: JobQueue) -> None:
    job = queue.add(request())
    cancelled = queue.cancel(job.id)
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.finished_at is not None
    assert queue.next_runnable() is None


def test_cancel_of_a_finished_job_is_illegal(queue: JobQueue) -> None:
    job = queue.add(request())
    queue.start(job.id)
    queue.finish(job.id, JobState.SUCCEEDED)
    with pytest.raises(IllegalTransition):
        queue.cancel(job.id)


def test_retry_requeues_failed_and_cancelled_jobs_at_the_back_keeping_attempts(
        queue: JobQueue) -> None:
    failed, cancelled, waiting = queue.add_many([request("f"), request("c"), request("w")])
    queue.start(failed.id)
    queue.add_attempt(failed.id, Attempt("local", Outcome.FAILED, error="Transient"))
    queue.finish(failed.id, JobState.FAILED, error="Transient", error_message="boom")
    queue.cancel(cancelled.id)
    again = queue.retry(failed.id)
    queue.retry(cancelled.id)
    assert again.state is JobState.QUEUED
    assert again.error is None and again.error_message is None and again.finished_at is None
    assert [a.error for a in again.attempts] == ["Transient"]
    assert run_order(queue) == [waiting.id, failed.id, cancelled.id]


def test_retry_of_queued_running_or_succeeded_job_is_illegal(queue: JobQueue) -> None:
    queued, running, done = queue.add_many([request("q"), request("r"), request("d")])
    queue.start(running.id)
    queue.start(done.id)
    queue.finish(done.id, JobState.SUCCEEDED)
    for job in (queued, running, done):
        with pytest.raises(IllegalTransition):
            queue.retry(job.id)
    assert queue.get(running.id).state is JobState.RUNNING  # type: ignore[union-attr]


def test_move_up_and_down_changes_run_order_and_clamps(queue: JobQueue) -> None:
    a, b, c, d = queue.add_many([request(x) for x in "abcd"])
    queue.move(d.id, -2)
    assert run_order(queue) == [a.id, d.id, b.id, c.id]
    queue.move(a.id, 1)
    assert run_order(queue) == [d.id, a.id, b.id, c.id]
    queue.move(d.id, 100)
    assert run_order(queue) == [a.id, b.id, c.id, d.id]
    queue.move(c.id, -100)
    assert run_order(queue) == [c.id, a.id, b.id, d.id]
    assert queue.next_runnable().id == c.id  # type: ignore[union-attr]


def test_moving_past_a_job_of_another_priority_takes_its_priority(queue: JobQueue) -> None:
    urgent = queue.add(request("urgent"), priority=5)
    normal = queue.add(request("normal"))
    queue.move(normal.id, -1)
    assert run_order(queue) == [normal.id, urgent.id]
    assert queue.get(normal.id).priority == 5  # type: ignore[union-attr]
    assert queue.next_runnable().id == normal.id  # type: ignore[union-attr]


def test_many_moves_into_the_same_gap_keep_a_consistent_order(queue: JobQueue) -> None:
    jobs = queue.add_many([request(f"p{i}") for i in range(4)])
    # Repeatedly move the last job to second place: halves the same gap each time
    # until floats run out and positions are renumbered.
    expected = ids(jobs)
    for _ in range(80):
        last = expected[-1]
        queue.move(last, -(len(expected) - 2))
        expected = [expected[0], last, *expected[1:-1]]
        assert run_order(queue) == expected


def test_moving_a_job_that_is_not_queued_is_illegal(queue: JobQueue) -> None:
    job = queue.add(request())
    queue.start(job.id)
    with pytest.raises(IllegalTransition, match="Only queued"):
        queue.move(job.id, -1)


def test_clear_finished_removes_only_finished_jobs_and_keeps_their_images(
        queue: JobQueue, gallery: Gallery, tmp_path: Path) -> None:
    done, failed, waiting = queue.add_many([request("d"), request("f"), request("w")])
    queue.start(done.id)
    queue.finish_with_images(done.id, gallery, [NewImage(
        path=tmp_path / "x.png", prompt="d", width=64, height=64, job_id=done.id)])
    queue.start(failed.id)
    queue.finish(failed.id, JobState.FAILED)
    assert queue.clear_finished() == 2
    assert ids(queue.jobs()) == [waiting.id]
    [image] = gallery.search()
    assert image.job_id is None  # the job is gone; the image stays


def test_ids_are_never_reused_after_clearing(queue: JobQueue) -> None:
    job = queue.add(request())
    queue.cancel(job.id)
    queue.clear_finished()
    assert queue.add(request()).id > job.id


def test_list_filters_by_state_orders_like_the_panel_and_limits(queue: JobQueue,
                                                               clock: FakeClock) -> None:
    old_done, new_done, running, q1, q2 = queue.add_many([request(x) for x in "abcde"])
    for job in (old_done, new_done):
        queue.start(job.id)
        clock.advance(1)
        queue.finish(job.id, JobState.SUCCEEDED)
    queue.start(running.id)
    assert ids(queue.jobs()) == [running.id, q1.id, q2.id, new_done.id, old_done.id]
    assert ids(queue.jobs({JobState.SUCCEEDED})) == [new_done.id, old_done.id]
    assert ids(queue.jobs(limit=2)) == [running.id, q1.id]
    assert queue.jobs(set()) == []


def test_counts_cover_every_state(queue: JobQueue) -> None:
    a, b, _ = queue.add_many([request(x) for x in "abc"])
    queue.start(a.id)
    queue.cancel(b.id)
    assert queue.counts() == {JobState.QUEUED: 1, JobState.RUNNING: 1, JobState.SUCCEEDED: 0,
                              JobState.FAILED: 0, JobState.CANCELLED: 1}


def test_recover_interrupted_requeues_running_jobs_first_with_an_interrupted_attempt(
        db_path: Path, clock: FakeClock) -> None:
    queue = JobQueue(open_database(db_path), clock=clock)
    first, second, third = queue.add_many([request(x) for x in "abc"])
    queue.start(first.id)
    queue.add_attempt(first.id, Attempt("local", Outcome.FAILED, error="Transient"))
    queue.start(third.id)
    # the app dies here; a new process opens the same database
    restarted = JobQueue(open_database(db_path), clock=clock)
    assert restarted.recover_interrupted() == [first.id, third.id]
    recovered = restarted.get(first.id)
    assert recovered is not None and recovered.state is JobState.QUEUED
    assert [a.outcome for a in recovered.attempts] == [Outcome.FAILED, Outcome.INTERRUPTED]
    assert recovered.attempts[-1].started_at == clock.now
    assert run_order(restarted) == [first.id, second.id, third.id]  # old places kept
    assert restarted.recover_interrupted() == []


def test_recovery_deletes_files_written_but_never_indexed(queue: JobQueue, gallery: Gallery,
                                                          tmp_path: Path) -> None:
    crashed, saved = queue.add_many([request("crashed"), request("saved")])
    orphan = tmp_path / "orphan.png"
    orphan.write_bytes(b"png")
    kept = tmp_path / "kept.png"
    kept.write_bytes(b"png")
    queue.start(crashed.id)
    queue.note_pending_files(crashed.id, [orphan])
    queue.start(saved.id)
    queue.note_pending_files(saved.id, [kept])
    queue.finish_with_images(saved.id, gallery, [NewImage(path=kept, prompt="saved", width=64,
                                                          height=64, job_id=saved.id)])
    assert queue.recover_interrupted() == [crashed.id]
    assert not orphan.exists()
    assert kept.exists()


def test_finish_with_images_indexes_and_succeeds_in_one_step(queue: JobQueue, gallery: Gallery,
                                                              tmp_path: Path) -> None:
    job = queue.add(request("a lighthouse"))
    queue.start(job.id)
    image_ids = queue.finish_with_images(job.id, gallery, [
        NewImage(path=tmp_path / f"{i}.png", prompt="a lighthouse", width=64, height=64,
                 seed=99 + i, job_id=job.id, provider="local") for i in range(2)],
        provider="local", seed=99)
    done = queue.get(job.id)
    assert done is not None and done.state is JobState.SUCCEEDED
    assert done.image_ids == image_ids and len(image_ids) == 2
    assert done.provider == "local"
    assert done.request.seed == 99  # the seed actually used is recorded
    assert [r.id for r in gallery.search("lighthouse", sort="oldest")] == image_ids


def test_finish_with_images_is_all_or_nothing(queue: JobQueue, gallery: Gallery,
                                              tmp_path: Path) -> None:
    job = queue.add(request())
    queue.start(job.id)
    duplicate = tmp_path / "same.png"
    with pytest.raises(sqlite3.IntegrityError):
        queue.finish_with_images(job.id, gallery, [
            NewImage(path=duplicate, prompt="x", width=64, height=64),
            NewImage(path=duplicate, prompt="x", width=64, height=64)])
    assert queue.get(job.id).state is JobState.RUNNING  # type: ignore[union-attr]
    assert gallery.count() == 0


def test_pause_flag_persists_across_restarts(db_path: Path) -> None:
    queue = JobQueue(open_database(db_path))
    assert not queue.is_paused()
    queue.set_paused(True)
    assert JobQueue(open_database(db_path)).is_paused()
    queue.set_paused(False)
    assert not JobQueue(open_database(db_path)).is_paused()


def test_queued_jobs_survive_a_restart(db_path: Path) -> None:
    queue = JobQueue(open_database(db_path))
    added = queue.add_many([request(f"night {i}", seed=i) for i in range(3)])
    again = JobQueue(open_database(db_path))
    assert [j.request for j in again.jobs()] == [j.request for j in added]
