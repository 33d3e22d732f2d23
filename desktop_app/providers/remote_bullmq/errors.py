"""Every way the remote provider can fail, mapped to the taxonomy (domain/errors.py).

Redis errors come from redis-py (the client BullMQ's Python port uses):
``AuthenticationError`` for a rejected or missing password (it is a
``ConnectionError`` subclass, so it is tested first), ``ConnectionError`` /
``TimeoutError`` / ``BusyLoadingError`` for a server that is down, restarting
or loading its append-only file. A worker's failure arrives as the job's
``failedReason`` text, ``[Kind] message`` (see ``protocol.encode_failure``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import redis.exceptions

from desktop_app.domain.errors import (
    Misconfigured,
    ProviderError,
    Transient,
    error_class_named,
)
from desktop_app.providers.remote_bullmq.protocol import STALLED_REASON, decode_failure

PROVIDER = "remote"
PASSWORD_REJECTED = "the Redis password was rejected"
_MAX_MESSAGE = 300


def where(url: str) -> str:
    """``host:port/db`` of a Redis URL, never its password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or 6379
    except ValueError:
        return "the Redis server (malformed URL)"
    db = parts.path.strip("/")
    return f"{host}:{port}" + (f"/{db}" if db and db != "0" else "")


def from_redis(exc: BaseException, url: str, *, has_password: bool) -> ProviderError:
    """The taxonomy error for an exception raised by redis-py or BullMQ talking to Redis."""
    place = where(url)
    text = str(exc)
    if isinstance(exc, redis.exceptions.AuthenticationError) or "WRONGPASS" in text \
            or "NOAUTH" in text or "invalid password" in text.lower():
        if not has_password:
            return Misconfigured(
                f"Redis at {place} needs a password: store it with `imagedesk keys set "
                "remote` or set IMAGEDESK_REMOTE_PASSWORD.", provider=PROVIDER)
        return Misconfigured(
            f"{PASSWORD_REJECTED} by {place}: check the remote password (imagedesk keys set "
            "remote) against the server's requirepass.", provider=PROVIDER)
    if isinstance(exc, redis.exceptions.BusyLoadingError):
        return Transient(f"Redis at {place} is starting up (loading its data); try again "
                         "in a moment.", provider=PROVIDER)
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError
                  | ConnectionError | TimeoutError | OSError):
        return Transient(f"Redis at {place} is unreachable ({_short(text)}).",
                         provider=PROVIDER)
    if isinstance(exc, redis.exceptions.ResponseError) and "unknown command" in text.lower():
        return Misconfigured(f"The server at {place} is not a Redis BullMQ can use "
                             f"({_short(text)}); it needs Redis 6.2 or later.",
                             provider=PROVIDER)
    return Transient(f"Redis at {place} failed: {type(exc).__name__}: {_short(text)}",
                     provider=PROVIDER)


def from_failed_reason(reason: str, *, attempts_note: str = "") -> ProviderError:
    """The taxonomy error for a failed job's ``failedReason``."""
    decoded = decode_failure(reason)
    if decoded is not None:
        kind, message = decoded
        cls = error_class_named(kind) or Transient
        return cls(message, provider=PROVIDER)
    if reason.strip() == STALLED_REASON:
        return Transient("The remote job was lost: the workers running it stopped "
                         f"responding too often{attempts_note}; it will be tried again.",
                         provider=PROVIDER)
    return Transient(f"The remote worker failed: {_short(reason) or 'no reason given'}",
                     provider=PROVIDER)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE - 1] + "…"
