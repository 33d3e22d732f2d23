"""API keys and passwords, kept in the OS keyring. The only module that imports
``keyring``.

A key set in the environment (the variable its provider's descriptor names:
``OPENAI_API_KEY``, ``IMAGEDESK_REMOTE_PASSWORD``) wins over the keyring.
When no usable keyring exists (a headless Linux without a Secret Service:
keyring's ``fail`` backend raises ``NoKeyringError`` on reads and writes
alike) every operation raises ``KeyringUnavailable`` saying how to
fix it. There is no plain-text fallback, and no key is ever logged or put in
an error message.
"""

from __future__ import annotations

import enum
import logging
import os
import secrets as random_secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import keyring
import keyring.backends.fail
import keyring.errors

from desktop_app.domain.errors import ImageDeskError
from desktop_app.logging_setup import remember_secret

if TYPE_CHECKING:
    from desktop_app.providers.descriptor import KeySpec

log = logging.getLogger(__name__)

SERVICE = "ImageDesk"

_UNAVAILABLE = (
    "No usable keyring on this system: install and unlock a Secret Service provider "
    "(e.g. gnome-keyring or KeePassXC), or set OPENAI_API_KEY in the environment."
)


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
    """The key stripped of surrounding whitespace, or ``InvalidKey`` saying what is wrong.
    The provider's own format check comes from its descriptor's ``KeySpec``."""
    spec = _spec(provider)
    key = key.strip()
    if not key:
        raise InvalidKey(f"The {provider} key is empty: paste the whole {spec.noun}.")
    if "\n" in key or "\r" in key:
        raise InvalidKey(f"The {provider} key contains a line break: paste it again "
                         "as one line.")
    if spec.check is not None:  # first: its messages are the more precise
        try:
            spec.check(key)
        except ValueError as error:
            raise InvalidKey(str(error)) from None
    if not key.isprintable():
        raise InvalidKey(f"The {provider} key contains characters a key cannot have: "
                         "copy it again from its source.")
    return key


def env_variable(provider: str) -> str:
    """The environment variable whose value wins over the keyring for ``provider``."""
    return _spec(provider).env_variable


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
        _spec(provider)
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
        value = self._env.get(env_variable(provider), "").strip()
        if value:
            remember_secret(value)
            return value
        return None

    def _from_keyring(self, provider: str) -> str | None:
        _spec(provider)
        self._backend()
        try:
            key = keyring.get_password(self.service, provider)
        except keyring.errors.KeyringError as error:
            raise KeyringUnavailable(_why(error)) from error
        return key.strip() or None if key else None

    def _backend(self) -> None:
        if isinstance(keyring.get_keyring(), keyring.backends.fail.Keyring):
            raise KeyringUnavailable()


API_TOKEN = "api"  # the keyring entry of the local HTTP API's token (docs/api.md)
API_TOKEN_VARIABLE = "IMAGEDESK_API_TOKEN"
_TOKEN_BYTES = 32


def _check_api_token(token: str) -> None:
    if len(token) < 16:
        raise ValueError("The API token is too short: use at least 16 characters.")
    if not all(c.isascii() and (c.isalnum() or c in "-_.~+/=") for c in token):
        raise ValueError("The API token may hold only letters, digits and - _ . ~ + / =.")


def _app_specs() -> dict[str, KeySpec]:
    """Secrets of ImageDesk itself, not of a provider: kept like a provider's key."""
    from desktop_app.providers.descriptor import KeySpec

    return {API_TOKEN: KeySpec("API token", API_TOKEN_VARIABLE, _check_api_token,
                               "Settings → General, or made on first use")}


def api_token(keys: KeyStore) -> str:
    """The local API's token: from ``IMAGEDESK_API_TOKEN``, else the keyring, else a
    new random one stored in the keyring (made on first use). Without a usable
    keyring and without the variable, ``KeyringUnavailable`` says to set it."""
    try:
        token = keys.get(API_TOKEN)
        if token is None:
            token = new_api_token(keys)
    except KeyringUnavailable as error:
        raise KeyringUnavailable(f"for the API token, set {API_TOKEN_VARIABLE} to a token "
                                 "of your choice") from error
    return token


def new_api_token(keys: KeyStore) -> str:
    """Make, store and return a new API token; the old one stops working."""
    token = random_secrets.token_urlsafe(_TOKEN_BYTES)
    keys.set(API_TOKEN, token)
    return token


def _spec(provider: str) -> KeySpec:
    own = _app_specs().get(provider)
    if own is not None:
        return own
    from desktop_app.providers import registry  # descriptors only: no provider SDK loads

    known = registry.with_keys()
    for descriptor in known:
        if descriptor.name == provider and descriptor.key is not None:
            return descriptor.key
    raise InvalidKey(f"Unknown provider {provider!r}: keys are kept for "
                     f"{', '.join(d.name for d in known)}.")


def _why(error: Exception) -> str:
    # A backend's message can be long or name internals; keep its kind, which is enough
    # to tell "locked" from "not installed".
    return type(error).__name__
