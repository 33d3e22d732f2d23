from __future__ import annotations

import pytest

from desktop_app.domain.errors import (
    TAXONOMY,
    BreakerEffect,
    Cancelled,
    ContentRejected,
    Failover,
    Misconfigured,
    RateLimited,
    error_class_named,
)
from desktop_app.domain.job import (
    Attempt,
    IllegalTransition,
    Job,
    JobState,
    Outcome,
    check_transition,
)
from desktop_app.domain.request import GenerationRequest


def _job() -> Job:
    return Job(id=1, request=GenerationRequest(prompt="a cat"))


def _walk(path: list[JobState]) -> JobState:
    """Follow ``path`` from queued, as the store does, checking every step."""
    state = JobState.QUEUED
    for target in path:
        check_transition(state, target)
        state = target
    return state


def test_a_job_runs_from_queued_to_succeeded() -> None:
    assert _walk([JobState.RUNNING, JobState.SUCCEEDED]) is JobState.SUCCEEDED


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ([], JobState.SUCCEEDED),  # queued jobs cannot succeed without running
        ([JobState.RUNNING, JobState.SUCCEEDED], JobState.QUEUED),  # succeeded is final
        ([JobState.CANCELLED], JobState.RUNNING),  # retry goes through queued
    ],
)
def test_illegal_transitions_are_refused(path: list[JobState], bad: JobState) -> None:
    with pytest.raises(IllegalTransition, match=f"cannot become {bad.value}"):
        _walk([*path, bad])


def test_a_failed_job_can_be_retried_and_an_interrupted_one_requeued() -> None:
    # running -> queued: the app stopped mid-run; failed -> queued: the user retried
    assert _walk([JobState.RUNNING, JobState.QUEUED, JobState.RUNNING, JobState.FAILED,
                  JobState.QUEUED]) is JobState.QUEUED


def test_fallback_reason_names_the_provider_that_failed_first() -> None:
    job = _job()
    job.attempts = [
        Attempt("local", Outcome.FAILED, error="OutOfMemory", message="CUDA out of memory"),
        Attempt("openai", Outcome.SUCCEEDED, cost_usd=0.05),
    ]
    job.provider = "openai"
    assert job.fallback_reason == "local: OutOfMemory — CUDA out of memory"
    assert job.cost_usd == pytest.approx(0.05)


def test_attempt_round_trips_through_dict() -> None:
    attempt = Attempt("openai", Outcome.FAILED, error="RateLimited", message="slow down",
                      duration_s=1.25, adaptations=("size 768x768 -> 1024x1024",), cost_usd=0.0)
    assert Attempt.from_dict(attempt.to_dict()) == attempt


def test_taxonomy_matches_the_architecture_table() -> None:
    assert {c.__name__ for c in TAXONOMY} == {
        "Transient", "RateLimited", "QuotaExhausted", "Misconfigured", "ContentRejected",
        "InvalidRequest", "OutOfMemory", "DeviceFault", "Cancelled"}
    assert RateLimited.breaker is BreakerEffect.IGNORED
    assert Misconfigured.breaker is BreakerEffect.FORCE_OPEN
    assert ContentRejected.failover is Failover.IF_ALLOWED
    assert Cancelled.failover is Failover.NO
    assert RateLimited("x", retry_after=3.0).retry_after == 3.0
    assert error_class_named("Misconfigured") is Misconfigured
    assert error_class_named("Nope") is None
