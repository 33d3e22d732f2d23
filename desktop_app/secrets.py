"""API keys and passwords, kept in the OS keyring. The only module that imports
``keyring``.

A key set in the environment (``OPENAI_API_KEY``, ``IMAGEDESK_REMOTE_PASSWORD``)
wins over the keyring. When no usable keyring exists (a headless Linux without
a Secret Service: keyring's ``fail`` backend raises ``NoKeyringError`` on reads
and writes alike) every operation raises ``KeyringUnavailable`` saying how to
fix it. There is no plain-text fallback, and no key is ever logged or put in
an error message.
"""

from __future__ import annotations

import enum
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import keyring
import keyring.backends.fail
import keyring.errors

from desktop_app.domain.errors import ImageDeskError
from desktop_app.logging_setup import remember_secret

log = logging.getLogger(__name__)

SERVICE = "ImageDesk"
PROVIDERS = ("openai", "remote")
ENV_VARIABLES: dict[str, str] = {"openai": "OPENAI_API_KEY", "remote": "IMAGEDESK_REMOTE_PASSWORD"}

_UNAVAILABLE = (
    "No usable keyring on this system: install and unlock a Secret Service provider "
    "(e.g. gnome-keyring or KeePassXC), or set OPENAI_API_KEY in the environment."
)
_OPENAI_KEY = re.compile(r"sk-[A-Za-z0-9_\-]+")
_OPENAI_LENGTH = (20, 512)
_REMOTE_LENGTH = (8, 1024)


class KeyringUnavailable(ImageDeskError):
    """The OS keyring cannot be used; the message says how to fix it."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(_UNAVAILABLE + (f" ({detail})" if detail else ""))


class InvalidKey(ImageDeskError):
    """A key that cannot be right; the message says what is wrong, never the key."""


class KeySource(enum.StrEnum):
    ENV = "env"
    KEYRING = "keyring"
    NONE = "none"


@dataclass(frozen=True)
class KeyStatus:
    """Where a provider's key comes from, for Settings and ``imagedesk keys status``.

    ``masked`` is ``sk-...abcd`` (never the key); ``error`` is set when the
    keyring could not be read.
    """

    source: KeySource
    backend: str
    masked: str | None
    error: str | None = None


def mask_key(key: str) -> str:
    """A recognisable, harmless form of a key: ``sk-...abcd``; short values show nothing."""
    key = key.strip()
    if len(key) < 12:
        return "****"
    prefix = "sk-" if key.startswith("sk-") else ""
    return f"{prefix}...{key[-4:]}"


def validate_key(provider: str, key: str) -> str:
    """The key stripped of surrounding whitespace, or ``InvalidKey`` saying what is wrong."""
    _check_provider(provider)
    key = key.strip()
    if not key:
        raise InvalidKey(f"The {provider} key is empty: paste the whole key.")
    if "\n" in key or "\r" in key:
        raise InvalidKey(f"The {provider} key contains a line break: paste it again as one line.")
    if provider == "openai" and any(char.isspace() for char in key):
        raise InvalidKey("The openai key contains a space: paste it again as one piece.")
    if not key.isprintable() or (provider == "openai" and not key.isascii()):
        raise InvalidKey(f"The {provider} key contains characters a key cannot have: "
                         "copy it again from its source.")
    if provider == "openai":
        low, high = _OPENAI_LENGTH
        if not key.startswith("sk-"):
            raise InvalidKey("An OpenAI API key starts with 'sk-': copy the key from "
                             "platform.openai.com → API keys.")
        if not _OPENAI_KEY.fullmatch(key):
            raise InvalidKey("An OpenAI API key holds only letters, digits, '-' and '_' "
                             "after 'sk-': part of something else was pasted with it.")
        if not low <= len(key) <= high:
            raise InvalidKey(f"This OpenAI key is {len(key)} characters long; real keys are "
                             f"{low} to {high}: it may be cut off, copy it again.")
    else:
        low, high = _REMOTE_LENGTH
        if not low <= len(key) <= high:
            raise InvalidKey(f"The remote password must be {low} to {high} characters long.")
    return key


class KeyStore:
    """Per-provider keys in the OS keyring (service ``ImageDesk``, user = provider),
    with an environment variable per provider taking precedence."""

    def __init__(self, service: str = SERVICE, env: Mapping[str, str] = os.environ) -> None:
        self.service = service
        self._env = env

    def backend_name(self) -> str:
        backend = keyring.get_keyring()
        name = getattr(type(backend), "name", None)
        return name if isinstance(name, str) else type(backend).__name__

    def set(self, provider: str, key: str) -> None:
        """Validate and store ``key`` in the keyring, replacing any earlier one."""
        key = validate_key(provider, key)
        self._backend()
        try:
            keyring.set_password(self.service, provider, key)
            stored = keyring.get_password(self.service, provider)
        except keyring.errors.KeyringError as error:
            raise KeyringUnavailable(_why(error)) from error
        if stored != key:
            raise KeyringUnavailable(f"{self.backend_name()} did not keep the key")
        remember_secret(key)
        log.info("stored the %s key in %s", provider, self.backend_name())

    def get(self, provider: str) -> str | None:
        """The key from the environment, else from the keyring, else ``None``."""
        from_env = self._from_env(provider)
        if from_env is not None:
            return from_env
        key = self._from_keyring(provider)
        remember_secret(key)
        return key

    def delete(self, provider: str) -> bool:
        """Remove the keyring's key; ``False`` when there was none. A key in the
        environment stays in effect (it is not ours to delete)."""
        _check_provider(provider)
        self._backend()
        try:
            keyring.delete_password(self.service, provider)
        except keyring.errors.PasswordDeleteError:
            return False
        except keyring.errors.KeyringError as error:
            raise KeyringUnavailable(_why(error)) from error
        log.info("deleted the %s key from %s", provider, self.backend_name())
        return True

    def status(self, provider: str) -> KeyStatus:
        """Where the key comes from; never raises for a keyring problem (see ``error``)."""
        backend = self.backend_name()
        from_env = self._from_env(provider)
        stored: str | None = None
        problem: str | None = None
        try:
            stored = self._from_keyring(provider)
        except KeyringUnavailable as error:
            problem = error.message
        if from_env is not None:
            return KeyStatus(KeySource.ENV, backend, mask_key(from_env), problem)
        if stored is not None:
            return KeyStatus(KeySource.KEYRING, backend, mask_key(stored), problem)
        return KeyStatus(KeySource.NONE, backend, None, problem)

    async def rotate(
        self,
        provider: str,
        new_key: str,
        check: Callable[[str], Awaitable[bool]] | None = None,
    ) -> KeyStatus:
        """Replace the stored key with ``new_key``, after ``check(new_key)`` (the
        provider's test call) says it works; until then the old key stays.

        Returns the new status: its ``source`` is still ``env`` when an
        environment variable overrides the keyring.
        """
        new_key = validate_key(provider, new_key)
        self._backend()  # fail before spending a check call when nothing can be stored
        if check is not None and not await check(new_key):
            raise InvalidKey(f"The new {provider} key did not pass the provider's check; "
                             "the old key is kept.")
        self.set(provider, new_key)
        return self.status(provider)

    def _from_env(self, provider: str) -> str | None:
        _check_provider(provider)
        value = self._env.get(ENV_VARIABLES[provider], "").strip()
        if value:
            remember_secret(value)
            return value
        return None

    def _from_keyring(self, provider: str) -> str | None:
        _check_provider(provider)
        self._backend()
        try:
            key = keyring.get_password(self.service, provider)
        except keyring.errors.KeyringError as error:
            raise KeyringUnavailable(_why(error)) from error
        return key.strip() or None if key else None

    def _backend(self) -> None:
        if isinstance(keyring.get_keyring(), keyring.backends.fail.Keyring):
            raise KeyringUnavailable()


def _check_provider(provider: str) -> None:
    if provider not in PROVIDERS:
        raise InvalidKey(f"Unknown provider {provider!r}: keys are kept for "
                         f"{', '.join(PROVIDERS)}.")


def _why(error: Exception) -> str:
    # A backend's message can be long or name internals; keep its kind, which is enough
    # to tell "locked" from "not installed".
    return type(error).__name__
