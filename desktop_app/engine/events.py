"""Plain-Python events the engine emits; ``ui/`` turns them into Qt signals, the CLI prints them.

Subscribers run synchronously on the engine's loop, so they must be quick; one
that raises is logged and skipped, never allowed to break a job.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable

from desktop_app.domain.job import Attempt, JobState
from desktop_app.domain.request import GenerationRequest

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class JobAdded:
    job_id: int
    request: GenerationRequest


@dataclasses.dataclass(frozen=True)
class JobStarted:
    job_id: int


@dataclasses.dataclass(frozen=True)
class JobProgress:
    job_id: int
    provider: str
    step: int
    total: int
    message: str = ""
    preview_png: bytes | None = None

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0


@dataclasses.dataclass(frozen=True)
class JobAttempted:
    """A provider was tried or skipped for the job (the attempt record grows)."""

    job_id: int
    attempt: Attempt


@dataclasses.dataclass(frozen=True)
class JobRouted:
    """The job moved to another provider: ``reason`` is shown in the queue's badge."""

    job_id: int
    provider: str
    reason: str

    @property
    def text(self) -> str:
        return f"routed to {self.provider}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class JobWaiting:
    """The job waits for ``provider`` (its rate limit has no free slot for ``seconds``);
    it goes on by itself. ``text`` is what a face shows."""

    job_id: int
    provider: str
    seconds: float
    reason: str  # what it waits for, e.g. "rate limit 5/min"

    @property
    def text(self) -> str:
        # a limiter's wait ends a millisecond past the window: 60.001 s reads "60 s"
        return f"waiting for {self.provider}'s {self.reason}, {math.ceil(round(self.seconds, 1))} s"


@dataclasses.dataclass(frozen=True)
class JobFinished:
    job_id: int
    state: JobState
    provider: str | None
    image_ids: tuple[int, ...] = ()
    error: str | None = None
    message: str | None = None


@dataclasses.dataclass(frozen=True)
class QueueChanged:
    """Jobs were reordered, cancelled, retried or cleared, or the queue paused/resumed."""

    paused: bool


@dataclasses.dataclass(frozen=True)
class ProviderStateChanged:
    provider: str
    state: str  # a BreakerState value, or "misconfigured"/"ready" from health
    reason: str
    retry_after_s: float | None = None


@dataclasses.dataclass(frozen=True)
class MetricsUpdated:
    provider: str


Event = (
    JobAdded | JobStarted | JobProgress | JobAttempted | JobRouted | JobWaiting | JobFinished
    | QueueChanged | ProviderStateChanged | MetricsUpdated
)
Subscriber = Callable[[Event], None]


class EventHub:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Add a subscriber; the returned function removes it."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def emit(self, event: Event) -> None:
        for callback in tuple(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("event subscriber failed on %s", type(event).__name__)
