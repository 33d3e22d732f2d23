"""Logging for the app and the CLI: a rotating file in the log folder plus
stderr, with every record passed through ``RedactingFilter`` so no API key,
bearer token or password reaches a log line — whatever library wrote it.

``redact`` is the same scrubber for text shown to users (error messages from
providers, the CLI's one-line errors).
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from desktop_app.domain.url_credentials import hide_url_credentials

REDACTED = "[redacted]"
LOG_FILE = "imagedesk.log"
_MAX_BYTES = 2_000_000
_BACKUPS = 5

# Shapes of secrets. Each pattern's first group (if any) is kept: it names
# what was hidden ("Bearer ", "api_key=").
_PATTERNS = (
    # OpenAI keys: sk-..., sk-proj-..., sk-svcacct-..., sk-admin-...
    re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=\-]{6,}", re.IGNORECASE),
    re.compile(r"(\bBasic\s+)[A-Za-z0-9+/=]{8,}"),
    # api_key=..., "api_key": "...", password: ..., x-api-key: ..., token=...
    re.compile(
        r"""((?:api[_\-]?key|apikey|password|passwd|secret|access[_\-]?token|token)"""
        r"""["']?\s*[=:]\s*["']?)[^\s"',;&}]+""",
        re.IGNORECASE,
    ),
)

_known_lock = threading.Lock()
_known: set[str] = set()


def remember_secret(secret: str | None) -> None:
    """Redact this exact value from now on, even when it has no key-like shape
    (a remote password). ``secrets.KeyStore`` calls this for every key it hands out."""
    if secret and len(secret) >= 4:
        with _known_lock:
            _known.add(secret)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with remembered and given secrets, and anything shaped like a
    key, replaced by ``[redacted]``; a URL's user name and password too."""
    text = hide_url_credentials(text)
    with _known_lock:
        values = set(_known)
    values.update(secret for secret in secrets if secret and len(secret) >= 4)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(_keep_label, text)
    return text


def _keep_label(match: re.Match[str]) -> str:
    label = match.group(1) if match.re.groups else ""
    return f"{label}{REDACTED}"


class RedactingFilter(logging.Filter):
    """Scrubs a record's message, arguments, exception and stack text in place.

    The message is formatted with its arguments first and the result redacted
    (a key can hide in any argument's ``str``); the record is then left with no
    arguments, so every later handler sees the same clean text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: still scrub the parts
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_OURS = "_imagedesk_handler"


def configure_logging(log_dir: Path | None, verbose: bool) -> None:
    """Send logs to ``log_dir/imagedesk.log`` (rotating; INFO, or DEBUG when
    ``verbose``) and to stderr (WARNING, or DEBUG when ``verbose``).

    Safe to call again (the CLI, then the GUI, or a test): the handlers of an
    earlier call are replaced, never doubled. When the log folder cannot be
    created the app still runs, logging to stderr and saying why.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OURS, False):
            root.removeHandler(handler)
            handler.close()
    handlers: list[logging.Handler] = []
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    handlers.append(console)
    problem = None
    if log_dir is not None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            file_handler = logging.handlers.RotatingFileHandler(
                log_dir / LOG_FILE, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8")
        except OSError as error:
            problem = f"cannot write logs in {log_dir} ({error.strerror or error}); stderr only"
        else:
            file_handler.setLevel(logging.DEBUG if verbose else logging.INFO)
            handlers.append(file_handler)
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.addFilter(RedactingFilter())
        setattr(handler, _OURS, True)
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(True)
    if problem:
        logging.getLogger(__name__).warning(problem)
