"""An in-memory keyring backend for tests, and a context manager that installs
it (or any backend) and puts the previous one back afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keyring
import keyring.backend
import keyring.errors


class InMemoryKeyring(keyring.backend.KeyringBackend):
    """Passwords in a dict; ``locked=True`` makes every call fail like a locked keyring."""

    priority = 1  # a classproperty upstream; a plain value is fine

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}
        self.locked = False

    def _check(self) -> None:
        if self.locked:
            raise keyring.errors.KeyringLocked("the test keyring is locked")

    def get_password(self, service: str, username: str) -> str | None:
        self._check()
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._check()
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self._check()
        if self.passwords.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("no such password")


@contextmanager
def installed_keyring(backend: keyring.backend.KeyringBackend) -> Iterator[None]:
    """Use ``backend`` as the process's keyring inside the block."""
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield
    finally:
        keyring.set_keyring(previous)
