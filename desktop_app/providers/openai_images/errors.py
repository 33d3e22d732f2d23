"""Every way an OpenAI call can fail, mapped to the taxonomy (domain/errors.py).

Measured SDK behaviour (docs/ARCHITECTURE.md, "Library behaviour we rely on"):
429 carries the wait in ``retry-after-ms`` or ``Retry-After``;
``insufficient_quota`` arrives as a 429 too; a malformed body raises a bare
``json.JSONDecodeError``; an error event inside a stream is a base ``APIError``
with ``.code`` set. Messages from the server are passed through ``redact``
because an OpenAI-compatible endpoint may echo the key.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Iterable, Mapping

import openai

from desktop_app.domain.errors import (
    ContentRejected,
    InvalidRequest,
    Misconfigured,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Transient,
)
from desktop_app.domain.url_credentials import hide_url_credentials

PROVIDER = "openai"
CONTENT_CODES = frozenset({"moderation_blocked", "content_policy_violation",
                           "content_filter", "safety_violation"})
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached",
                         "billing_not_active"})
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{6,}|Bearer\s+\S+)")
_MAX_MESSAGE = 300


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every given secret, anything shaped like a key and a URL's
    user name and password removed."""
    text = hide_url_credentials(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = _KEYLIKE.sub("[redacted]", text)
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "…"


def retry_after_s(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (preferred) or ``Retry-After``
    (seconds or an HTTP date), or ``None`` when the server said nothing usable."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000
            if value >= 0:
                return value
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
        return value if value >= 0 else None
    except ValueError:
        pass
    parsed = email.utils.parsedate_to_datetime(raw) if raw.strip() else None
    if parsed is None:
        return None
    return max(0.0, parsed.timestamp() - (time.time() if now is None else now))


def _server_message(exc: openai.APIError, secrets: Iterable[str | None]) -> str:
    body = exc.body
    message: object = None
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, Mapping) else None
    if not isinstance(message, str) or not message.strip():
        message = exc.message
    return redact(str(message).strip(), secrets)


def _code(exc: openai.APIError) -> str | None:
    if exc.code:
        return exc.code
    body = exc.body
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        code = body["error"].get("code")
        return str(code) if code is not None else None
    return None


def map_error(exc: BaseException, *, model: str, secrets: Iterable[str | None]) -> ProviderError:
    """The taxonomy error for any exception an OpenAI call raised. Unknown
    exceptions become ``Transient`` (a bug in the response, not in the request)."""
    secrets = tuple(secrets)
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return Transient("OpenAI did not answer in time (request timed out); will retry.",
                         provider=PROVIDER)
    if isinstance(exc, openai.APIConnectionError):
        return Transient("Could not reach OpenAI (connection failed or was dropped); "
                         "check the network or the base URL.", provider=PROVIDER)
    if isinstance(exc, openai.APIStatusError):
        return _map_status(exc, model=model, secrets=secrets)
    if isinstance(exc, openai.APIError):  # an error event inside a stream
        return _map_code(exc, status=None, model=model, secrets=secrets)
    if isinstance(exc, json.JSONDecodeError):
        return Transient("OpenAI sent a malformed response (not valid JSON).", provider=PROVIDER)
    return Transient(redact(f"OpenAI sent a response ImageDesk could not use "
                            f"({type(exc).__name__}: {exc}).", secrets), provider=PROVIDER)


def _map_status(exc: openai.APIStatusError, *, model: str,
                secrets: tuple[str | None, ...]) -> ProviderError:
    status = exc.status_code
    code = _code(exc)
    if status == 429:
        if code in QUOTA_CODES:
            return QuotaExhausted(
                f"OpenAI says the account is out of quota: {_server_message(exc, secrets)}",
                provider=PROVIDER)
        wait = retry_after_s(exc.response.headers)
        hint = f"; try again in {wait:g} s" if wait is not None else ""
        return RateLimited(f"OpenAI rate limit reached{hint}.", retry_after=wait,
                           provider=PROVIDER)
    if status in (401, 403):
        return Misconfigured("OpenAI: the API key was rejected; check it in Settings.",
                             provider=PROVIDER)
    if status == 404:
        return Misconfigured(f"OpenAI: model {model} is not available to this key "
                             "(or the base URL is wrong); pick another model in Settings.",
                             provider=PROVIDER)
    if status >= 500:
        return Transient(f"OpenAI had a server error (HTTP {status}); will retry.",
                         provider=PROVIDER)
    return _map_code(exc, status=status, model=model, secrets=secrets)


def _map_code(exc: openai.APIError, *, status: int | None, model: str,
              secrets: tuple[str | None, ...]) -> ProviderError:
    code = _code(exc)
    message = _server_message(exc, secrets)
    if code in CONTENT_CODES:
        return ContentRejected(f"OpenAI refused the prompt: {message}", provider=PROVIDER)
    if code in QUOTA_CODES:
        return QuotaExhausted(f"OpenAI says the account is out of quota: {message}",
                              provider=PROVIDER)
    if code == "rate_limit_exceeded":
        return RateLimited(f"OpenAI rate limit reached: {message}", provider=PROVIDER)
    if code in ("invalid_api_key", "model_not_found"):
        return _map_status_like(code, model)
    if status is not None and 400 <= status < 500:
        field = exc.param if isinstance(exc.param, str) else None
        return InvalidRequest(f"OpenAI rejected the request: {message}", field=field,
                              provider=PROVIDER)
    return Transient(f"OpenAI reported an error while generating: {message}",
                     provider=PROVIDER)


def _map_status_like(code: str, model: str) -> ProviderError:
    if code == "invalid_api_key":
        return Misconfigured("OpenAI: the API key was rejected; check it in Settings.",
                             provider=PROVIDER)
    return Misconfigured(f"OpenAI: model {model} is not available to this key.",
                         provider=PROVIDER)
