""""Test connection" for OpenAI: one free, authenticated request (the configured
model's metadata, ``GET /models/{model}``) that tells a user which of these is
wrong: the key, the network or base URL, the model, or the server.

It never calls an image endpoint, so it never bills anything, and it is bounded
by an overall timeout (the SDK's read timeout is per read). The same probe
checks a key that is not stored yet, so rotating a key can keep the old one
when the new one fails (``KeyStore.rotate`` with the faces' connection test).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

import openai

from desktop_app.domain.url_credentials import hide_url_credentials
from desktop_app.providers.base import ConnectionOutcome, ConnectionReport

from .errors import PROVIDER, QUOTA_CODES, redact

ClientFactory = Callable[[str], openai.AsyncOpenAI]
Outcome = ConnectionOutcome


async def probe(make_client: ClientFactory, key: str, *, model: str, base_url: str | None,
                timeout_s: float) -> ConnectionReport:
    """Retrieve ``model`` with ``key`` through a client of its own (closed after),
    and say what the answer means."""
    where = shown_base_url(base_url) if base_url else "api.openai.com"
    details = {"model": model, "base_url": where if base_url else "default"}

    def report(outcome: Outcome, message: str) -> ConnectionReport:
        return ConnectionReport(PROVIDER, outcome, redact(message, (key,)), details)

    try:
        client = make_client(key)
    except openai.OpenAIError as exc:
        return report(Outcome.NOT_CONFIGURED, f"OpenAI client could not start: {exc}")
    try:
        async with asyncio.timeout(timeout_s):
            answer = await client.models.retrieve(model)
    except TimeoutError:
        return report(Outcome.UNREACHABLE, f"{where} did not answer within {timeout_s:g} s; "
                      "check the network or the base URL.")
    except openai.APIConnectionError:
        return report(Outcome.UNREACHABLE, f"Could not reach {where}; check the network "
                      "or the base URL in Settings.")
    except openai.APIStatusError as exc:
        return report(*_status_outcome(exc, model=model, where=where))
    except Exception as exc:  # a malformed body: the far side is not an OpenAI API
        return report(Outcome.UNREACHABLE, f"{where} sent an answer that is not the OpenAI "
                      f"API's ({type(exc).__name__}); check the base URL in Settings.")
    finally:
        await client.close()
    if isinstance(answer, str):  # a web page or plain text instead of JSON
        return report(Outcome.UNREACHABLE, f"{where} answered with a web page, not the "
                      "OpenAI API; check the base URL in Settings.")
    return report(Outcome.PASSED, f"OpenAI accepted the key and model {model} is available.")


def _status_outcome(exc: openai.APIStatusError, *, model: str,
                    where: str) -> tuple[Outcome, str]:
    status, code = exc.status_code, _code(exc.body)
    openai_error = code is not None or _has_error_object(exc.body)
    if status == 401 or code == "invalid_api_key":
        return Outcome.KEY_REJECTED, ("OpenAI rejected the API key (HTTP 401); "
                                      "check or replace it in Settings.")
    if status == 404 and not openai_error:
        return Outcome.UNREACHABLE, (f"{where} has no OpenAI API at that address (HTTP 404); "
                                     "check the base URL in Settings (it usually ends in /v1).")
    if status in (403, 404):
        return Outcome.MODEL_UNAVAILABLE, (f"Model {model} is not available to this key "
                                           f"(HTTP {status}); pick another model in Settings "
                                           "or enable it for the key's project.")
    if status == 429 and code in QUOTA_CODES:
        return Outcome.FAILED, ("OpenAI accepted the key but the account is out of quota; "
                                "check billing.")
    if status == 429:
        return Outcome.FAILED, "OpenAI accepted the key but is rate limiting it; try again soon."
    if status >= 500:
        return Outcome.SERVER_ERROR, (f"{where} had a server error (HTTP {status}); "
                                      "try again later.")
    return Outcome.FAILED, f"{where} refused the test request (HTTP {status})."


def shown_base_url(url: str) -> str:
    """The base URL without its query (which may carry a key) and without any user
    name or password written into it."""
    try:
        parts = urlsplit(url)
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    except ValueError:  # unparsable (a bad port): still hide what may be credentials
        pass
    return hide_url_credentials(url)


def _has_error_object(body: object) -> bool:
    return isinstance(body, Mapping) and isinstance(body.get("error"), Mapping)


def _code(body: object) -> str | None:
    inner = body.get("error", body) if isinstance(body, Mapping) else None
    code = inner.get("code") if isinstance(inner, Mapping) else None
    return str(code) if code is not None else None
