from __future__ import annotations

import logging
from pathlib import Path

import pytest

from desktop_app.logging_setup import (
    LOG_FILE,
    RedactingFilter,
    configure_logging,
    redact,
    remember_secret,
)

KEY = "sk-proj-" + "AbCdEf012345" * 4
LEGACY = "sk-" + "x" * 48


# --- redact ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, secret, kept", [
    (f"Incorrect API key provided: {KEY}.", KEY, "Incorrect API key provided: [redacted]."),
    (f"key={LEGACY}", LEGACY, None),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def", "eyJhbGciOiJIUzI1NiJ9",
     "Authorization: Bearer [redacted]"),
    ("GET /v1?api_key=abc123secret&x=1", "abc123secret", "GET /v1?api_key=[redacted]&x=1"),
    ('{"api_key": "plain-value-42"}', "plain-value-42", '{"api_key": "[redacted]"}'),
    ("x-api-key: zzz999yyy", "zzz999yyy", "x-api-key: [redacted]"),
    ("IMAGEDESK_REMOTE_PASSWORD=hunter22", "hunter22", "IMAGEDESK_REMOTE_PASSWORD=[redacted]"),
])
def test_redact_hides_key_shaped_text(text: str, secret: str, kept: str | None) -> None:
    out = redact(text)
    assert secret not in out
    assert "[redacted]" in out
    if kept is not None:
        assert out == kept


def test_redact_leaves_ordinary_text_alone() -> None:
    text = ("routed to openai: local CUDA out of memory; tokens: 1200, sk-ipping is "
            "a word, task-12 finished, max_tokens 50")
    assert redact(text) == text


def test_redact_hides_values_given_or_remembered_even_without_a_key_shape() -> None:
    assert redact("login with tr0ub4dor&3 failed", secrets=["tr0ub4dor&3"]) == (
        "login with [redacted] failed")
    remember_secret("plain horse staple")
    assert "plain horse staple" not in redact("password was plain horse staple")


# --- the filter -----------------------------------------------------------------------


def _record(msg: str, args: tuple[object, ...] | None = None,
            exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("test", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_filter_redacts_the_message_and_its_arguments() -> None:
    record = _record("calling %s with %s", ("openai", {"Authorization": f"Bearer {KEY}"}))
    assert RedactingFilter().filter(record) is True
    assert KEY not in record.getMessage()
    assert record.getMessage().startswith("calling openai with")


def test_filter_redacts_exception_text() -> None:
    try:
        raise RuntimeError(f"server said: invalid key {KEY}")
    except RuntimeError as error:
        record = _record("request failed", exc=error)
    RedactingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert "RuntimeError: server said: invalid key [redacted]" in formatted
    assert KEY not in formatted


def test_filter_survives_a_broken_format_string() -> None:
    record = _record("%d items for %s", ("many", KEY))
    RedactingFilter().filter(record)
    assert KEY not in record.getMessage()


# --- configure_logging ----------------------------------------------------------------


def test_log_file_never_holds_a_key(
    tmp_path: Path, restored_root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(tmp_path / "logs", verbose=False)
    log = logging.getLogger("desktop_app.providers.openai_images")
    log.info("using key %s", KEY)
    log.warning("401 from server: Incorrect API key provided: %s", KEY)
    try:
        raise ValueError(f"api_key={KEY}")
    except ValueError:
        log.exception("call failed")
    for handler in restored_root.handlers:
        handler.flush()
    text = (tmp_path / "logs" / LOG_FILE).read_text(encoding="utf-8")
    assert "using key [redacted]" in text and "ValueError: api_key=[redacted]" in text
    assert KEY not in text
    stderr = capsys.readouterr().err
    assert "Incorrect API key provided: [redacted]" in stderr
    assert "using key" not in stderr  # INFO goes to the file only
    assert KEY not in stderr


def test_verbose_sends_debug_to_stderr(
    restored_root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(None, verbose=True)
    logging.getLogger("desktop_app.engine").debug("picked %s", "local")
    assert "picked local" in capsys.readouterr().err


def test_configuring_twice_does_not_double_lines(
    tmp_path: Path, restored_root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(tmp_path, verbose=False)
    configure_logging(tmp_path, verbose=False)
    logging.getLogger("desktop_app").warning("once")
    assert capsys.readouterr().err.count("once") == 1


def test_unwritable_log_folder_falls_back_to_stderr(
    tmp_path: Path, restored_root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    configure_logging(blocker / "logs", verbose=False)
    logging.getLogger("desktop_app").warning("still logged")
    err = capsys.readouterr().err
    assert "cannot write logs in" in err and "still logged" in err
