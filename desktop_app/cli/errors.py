"""The CLI's exit codes, defined once, and the error that carries one.

Scripts can rely on them: 0 success, 2 bad input, 3 no provider could serve the
job, 4 cancelled, 5 setup problem (settings, keyring, store), 70 internal error;
128 + the signal (143 SIGTERM, 129 SIGHUP) when a stop signal ended the command and
its running job went back to the queue.
"""

from __future__ import annotations

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
