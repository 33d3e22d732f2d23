"""A job: one request's life in the queue, and the record of every attempt."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from desktop_app.domain.errors import ImageDeskError
from desktop_app.domain.request import GenerationRequest


class JobState(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


# running -> queued: a crash or a pause put the job back (the attempt is counted).
# failed/cancelled -> queued: the user pressed retry.
LEGAL_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED}),
    JobState.RUNNING: frozenset(
        {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.QUEUED}
    ),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.CANCELLED: frozenset({JobState.QUEUED}),
}


class IllegalTransition(ImageDeskError):
    """A job was asked to move to a state it cannot reach from where it is."""


def check_transition(current: JobState, target: JobState) -> None:
    if target not in LEGAL_TRANSITIONS[current]:
        raise IllegalTransition(f"A {current.value} job cannot become {target.value}.")


class Outcome(enum.Enum):
    """How one attempt ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # the router passed over this provider; ``message`` says why
    INTERRUPTED = "interrupted"  # the app stopped while the attempt ran


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One provider's part in a job, as shown in the queue's error details."""

    provider: str
    outcome: Outcome
    error: str | None = None  # taxonomy class name, e.g. "RateLimited"
    message: str = ""
    duration_s: float = 0.0
    adaptations: tuple[str, ...] = ()
    cost_usd: float = 0.0
    started_at: float = 0.0  # wall-clock seconds since the epoch

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "outcome": self.outcome.value,
            "error": self.error,
            "message": self.message,
            "duration_s": round(self.duration_s, 4),
            "adaptations": list(self.adaptations),
            "cost_usd": self.cost_usd,
            "started_at": self.started_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attempt:
        return cls(
            provider=data["provider"],
            outcome=Outcome(data["outcome"]),
            error=data.get("error"),
            message=data.get("message", ""),
            duration_s=float(data.get("duration_s", 0.0)),
            adaptations=tuple(data.get("adaptations", ())),
            cost_usd=float(data.get("cost_usd", 0.0)),
            started_at=float(data.get("started_at", 0.0)),
        )

    def describe(self) -> str:
        """One readable line: ``openai: RateLimited — slow down (retry in 20 s)``."""
        if self.outcome is Outcome.SUCCEEDED:
            text = f"{self.provider}: succeeded in {self.duration_s:.1f} s"
        elif self.outcome is Outcome.SKIPPED:
            text = f"{self.provider}: skipped — {self.message}"
        elif self.outcome is Outcome.INTERRUPTED:
            text = f"{self.provider}: interrupted — {self.message or 'the app stopped'}"
        else:
            text = f"{self.provider}: {self.error or 'failed'} — {self.message}"
        if self.adaptations:
            text += f" (adapted: {'; '.join(self.adaptations)})"
        return text


@dataclasses.dataclass
class Job:
    """A queued request and what has happened to it. Mutable, owned by the store."""

    id: int
    request: GenerationRequest
    state: JobState = JobState.QUEUED
    priority: int = 0
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    attempts: list[Attempt] = dataclasses.field(default_factory=list)
    error: str | None = None  # taxonomy class name of the final error
    error_message: str | None = None
    image_ids: list[int] = dataclasses.field(default_factory=list)
    provider: str | None = None  # the provider that served it

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd for a in self.attempts)

    @property
    def fallback_reason(self) -> str | None:
        """Why the job did not run on its first choice, e.g. "local: OutOfMemory — ..."."""
        if self.provider is None:
            return None
        earlier = [a for a in self.attempts if a.provider != self.provider
                   and a.outcome is Outcome.FAILED]
        return earlier[-1].describe() if earlier else None
