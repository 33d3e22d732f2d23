"""A per-provider cooldown gate that honours the server's Retry-After.

Each provider reads the wait from its own responses (OpenAI's in
``providers/openai_images/errors.py``) and hands it over as
``RateLimited.retry_after``. After a 429 the engine calls
``cool_down(retry_after, reason)``; until the time is up the router skips the
provider ("cooling down after a rate limit") and a retry on it waits. A
later, shorter hint never shortens the wait.
"""

from __future__ import annotations

from desktop_app.resilience.clock import Clock


class CooldownGate:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._until = 0.0
        self._reason = ""

    def cool_down(self, seconds: float, reason: str) -> None:
        """Close the gate for ``seconds``; extends, never shortens, an active cooldown."""
        if seconds <= 0:
            return
        until = self._clock.monotonic() + seconds
        if until > self._until:
            self._until = until
            self._reason = reason

    def remaining(self) -> float:
        """Seconds until the gate opens; 0.0 when it is open."""
        return max(0.0, self._until - self._clock.monotonic())

    @property
    def reason(self) -> str:
        """Why the gate is (or was last) closed; empty once open."""
        return self._reason if self.remaining() > 0 else ""

    def clear(self) -> None:
        """Open the gate now (settings changed, user pressed "try again")."""
        self._until = 0.0
        self._reason = ""
