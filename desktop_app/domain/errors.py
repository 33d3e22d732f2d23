"""The error taxonomy: every provider failure becomes one of these before it
leaves the provider. The router and the breaker act on the class, never on
message text (see ARCHITECTURE.md, "Error taxonomy").

Each class states, as class attributes, what the resilience layer does with it:
``breaker`` (how the outcome counts), ``retry_same`` (retry on the same
provider), ``failover`` (move to the next candidate).
"""

from __future__ import annotations

import enum
from typing import ClassVar


class BreakerEffect(enum.Enum):
    """How an outcome counts for a provider's circuit breaker."""

    FAILURE = "failure"
    IGNORED = "ignored"
    FORCE_OPEN = "force_open"


class Failover(enum.Enum):
    """Whether the engine may move to the next provider after this error."""

    YES = "yes"
    NO = "no"
    IF_ALLOWED = "if_allowed"  # ContentRejected: only when the user allows it
    IF_FITS = "if_fits"  # InvalidRequest: only to a provider whose capabilities fit


class ImageDeskError(Exception):
    """Base of every error ImageDesk shows to a user: ``message`` is the sentence to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ProviderError(ImageDeskError):
    """A failure of one provider call, classified by the taxonomy.

    ``billed_usd`` is what the call cost although it failed (a paid API billed
    an image that then proved unusable): the engine records it as spent.
    """

    breaker: ClassVar[BreakerEffect] = BreakerEffect.FAILURE
    retry_same: ClassVar[bool] = False
    failover: ClassVar[Failover] = Failover.YES

    def __init__(self, message: str, *, provider: str | None = None,
                 billed_usd: float = 0.0) -> None:
        super().__init__(message)
        self.provider = provider
        self.billed_usd = billed_usd

    @property
    def kind(self) -> str:
        """The class name, as recorded on attempts and shown in metrics."""
        return type(self).__name__


class Transient(ProviderError):
    """5xx, timeout, connection reset, worker crash, a malformed response."""

    breaker = BreakerEffect.FAILURE
    retry_same = True
    failover = Failover.YES


class RateLimited(ProviderError):
    """429: the provider asked us to wait ``retry_after`` seconds."""

    breaker = BreakerEffect.IGNORED
    retry_same = False  # only when short and the deadline allows; decided by the engine
    failover = Failover.YES

    def __init__(
        self, message: str, *, retry_after: float | None = None, provider: str | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after


class QuotaExhausted(ProviderError):
    """429 insufficient_quota or a billing problem: never retry."""

    breaker = BreakerEffect.FORCE_OPEN
    failover = Failover.YES

    @property
    def reason(self) -> str:
        return f"check billing: {self.message}"


class Misconfigured(ProviderError):
    """Bad or missing key, unknown model, missing weights, no CUDA: a settings problem."""

    breaker = BreakerEffect.FORCE_OPEN
    failover = Failover.YES

    @property
    def reason(self) -> str:
        return self.message


class ContentRejected(ProviderError):
    """The provider's content policy refused the prompt or the output."""

    breaker = BreakerEffect.IGNORED
    failover = Failover.IF_ALLOWED


class InvalidRequest(ProviderError):
    """A request that cannot be served as asked: our own validation or a 400.

    ``field`` names the request field at fault, so a face can show the message
    next to it.
    """

    breaker = BreakerEffect.IGNORED
    failover = Failover.IF_FITS

    def __init__(
        self, message: str, *, field: str | None = None, provider: str | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.field = field


class OutOfMemory(ProviderError):
    """The GPU ran out of memory. The provider retries once with lighter settings."""

    breaker = BreakerEffect.IGNORED
    failover = Failover.YES


class DeviceFault(ProviderError):
    """Illegal memory access, device-side assert: the GPU worker must restart."""

    breaker = BreakerEffect.FORCE_OPEN
    failover = Failover.YES

    @property
    def reason(self) -> str:
        return f"restart GPU worker: {self.message}"


class Cancelled(ProviderError):
    """The user cancelled the job."""

    breaker = BreakerEffect.IGNORED
    failover = Failover.NO


class CircuitOpen(ImageDeskError):
    """The breaker rejected the call without reaching the provider."""

    def __init__(self, message: str, *, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobFailed(ImageDeskError):
    """No provider could serve the job; ``message`` explains every provider's outcome.

    ``final`` is the class of the error that decided the outcome (the last
    attempt's, or ``None`` when no provider was even tried).
    """

    def __init__(self, message: str, *, final: type[ProviderError] | None = None) -> None:
        super().__init__(message)
        self.final = final


TAXONOMY: tuple[type[ProviderError], ...] = (
    Transient,
    RateLimited,
    QuotaExhausted,
    Misconfigured,
    ContentRejected,
    InvalidRequest,
    OutOfMemory,
    DeviceFault,
    Cancelled,
)


def error_class_named(name: str) -> type[ProviderError] | None:
    """The taxonomy class with this name (as stored on attempts), if any."""
    return next((cls for cls in TAXONOMY if cls.__name__ == name), None)
