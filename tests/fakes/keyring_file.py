"""A keyring backend that keeps passwords in a JSON file, for CLI subprocess tests
that must see a key stored by an earlier command (``keys set``, then a test).

A subprocess selects it with ``PYTHON_KEYRING_BACKEND=tests.fakes.keyring_file.FileKeyring``
and names the file in ``KEYRING_TEST_FILE`` (a test's tmp folder: only
made-up keys ever go there)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keyring.backend
import keyring.errors

FILE_VARIABLE = "KEYRING_TEST_FILE"  # not IMAGEDESK_*: that would name a setting
BACKEND = f"{__name__}.FileKeyring"


class FileKeyring(keyring.backend.KeyringBackend):
    priority = 1  # a classproperty upstream; a plain value is fine

    @property
    def path(self) -> Path:
        return Path(os.environ[FILE_VARIABLE])

    def read(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        data = json.loads(self.path.read_text())
        assert isinstance(data, dict)
        return {str(k): str(v) for k, v in data.items()}

    def _write(self, data: dict[str, str]) -> None:
        self.path.write_text(json.dumps(data))

    def get_password(self, service: str, username: str) -> str | None:
        return self.read().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        self._write({**self.read(), f"{service}/{username}": password})

    def delete_password(self, service: str, username: str) -> None:
        data = self.read()
        if data.pop(f"{service}/{username}", None) is None:
            raise keyring.errors.PasswordDeleteError("no such password")
        self._write(data)
