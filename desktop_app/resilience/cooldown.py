"""A per-provider cooldown gate that honours the server's Retry-After.

After a 429 the engine calls ``cool_down(retry_after, reason)``; until the
time is up the router skips the provider ("cooling down after a rate limit")
and a retry on it waits. A later, shorter hint never shortens the wait.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from collections.abc import Mapping

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

    def parse_retry_after(self, headers: Mapping[str, str]) -> float | None:
        """Seconds to wait per this response's headers (see ``parse_retry_after``)."""
        return parse_retry_after(headers, now=self._clock.time())


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, or None if it did not say.

    Reads ``retry-after-ms`` (OpenAI's, milliseconds) first, then
    ``Retry-After`` as delta-seconds or as an HTTP-date, measured from ``now``
    (wall-clock epoch seconds, default the system clock). Header names are
    case-insensitive; a date in the past means 0; unparsable values are ignored.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    ms = _number(lowered.get("retry-after-ms"))
    if ms is not None:
        return ms / 1000.0
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are always GMT
        when = when.replace(tzinfo=dt.UTC)
    reference = time.time() if now is None else now
    return max(0.0, when.timestamp() - reference)


def _number(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    if value != value or value < 0 or value == float("inf"):
        return None
    return value
