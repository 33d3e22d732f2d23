"""The CLI's exit codes, defined once, the error that carries one, and how a
failure is reported.

Scripts can rely on them: 0 success, 2 bad input, 3 no provider could serve the
job, 4 cancelled, 5 setup problem (settings, keyring, store), 70 internal error;
128 + the signal (143 SIGTERM, 129 SIGHUP) when a stop signal ended the command and
its running job went back to the queue.
A failure is one line on stderr, ``imagedesk: <what to fix>``; with ``--json``
stdout also gets one object, ``{"error": <the same text>, "exit_code": <code>}``.
"""

from __future__ import annotations

import json
import sys
import traceback

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_FAILED = 3
EXIT_CANCELLED = 4
EXIT_SETUP = 5
EXIT_INTERNAL = 70
EXIT_SIGNAL_BASE = 128  # + the signal number


class CliError(Exception):
    """A failure the CLI reports as one line on stderr, exiting with ``code``."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def one_line(text: str) -> str:
    """``text`` on one line: a list ("...:\n- a\n- b") becomes "...: a; b"."""
    lines = [line.strip().removeprefix("- ") for line in str(text).splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    head, rest = lines[0], lines[1:]
    if not rest:
        return head
    return head + (" " if head.endswith(":") else "; ") + "; ".join(rest)


def fail(message: str, code: int, *, json_mode: bool, trace: bool = False) -> int:
    """Report a failure the documented way and return its exit code."""
    if trace:
        traceback.print_exc()
    text = one_line(message)
    print(f"imagedesk: {text}", file=sys.stderr)
    if json_mode:
        print(json.dumps({"error": text, "exit_code": code}, ensure_ascii=False))
    return code
