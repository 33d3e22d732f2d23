"""Provider keys are read from the keyring once, off the event loop, and again
only after settings are applied (the dialog stores a key, then applies)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from desktop_app.bootstrap import AppContext, KeyCache, apply_settings, open_app, warm_keys
from desktop_app.providers.base import HealthState
from desktop_app.secrets import SERVICE, KeyringUnavailable, KeyStore
from tests.fakes.keyring_memory import InMemoryKeyring, installed_keyring

KEY = "sk-test-" + "k" * 40


class CountingKeys(KeyStore):
    """A KeyStore whose reads are counted, and which can block or fail on demand."""

    def __init__(self, keys: dict[str, str | None], *, unavailable: bool = False) -> None:
        super().__init__(env={})
        self.keys = keys
        self.unavailable = unavailable
        self.reads: dict[str, int] = {}
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def get(self, provider: str) -> str | None:
        self.reads[provider] = self.reads.get(provider, 0) + 1
        self.entered.set()
        assert self.release.wait(10)
        if self.unavailable:
            raise KeyringUnavailable("KeyringLocked")
        return self.keys.get(provider)


class CountingKeyring(InMemoryKeyring):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[str, int]] = []  # (user, thread id)

    def get_password(self, service: str, username: str) -> str | None:
        self.reads.append((username, threading.get_ident()))
        return super().get_password(service, username)

    def reads_of(self, user: str) -> int:
        return sum(1 for name, _ in self.reads if name == user)


@pytest.fixture
def backend() -> Iterator[CountingKeyring]:
    backend = CountingKeyring()
    with installed_keyring(backend):
        yield backend


@pytest.fixture
async def ctx(tmp_path: Path, backend: CountingKeyring) -> AsyncIterator[AppContext]:
    context = open_app({"IMAGEDESK_HOME": str(tmp_path)})
    yield context
    await context.engine.close()


def test_a_key_is_read_once_per_provider_until_the_cache_is_cleared() -> None:
    keys = CountingKeys({"openai": KEY, "remote": None})
    cache = KeyCache(keys)
    assert [cache.get("openai") for _ in range(5)] == [KEY] * 5
    assert [cache.get("remote") for _ in range(3)] == [None] * 3  # "no key" is cached too
    assert keys.reads == {"openai": 1, "remote": 1}
    keys.keys["openai"] = KEY + "new"
    cache.clear()
    assert cache.get("openai") == KEY + "new"
    assert keys.reads == {"openai": 2, "remote": 1}


def test_an_unusable_keyring_is_asked_once_and_reads_as_no_key() -> None:
    keys = CountingKeys({"openai": KEY}, unavailable=True)
    cache = KeyCache(keys)
    assert [cache.get("openai") for _ in range(4)] == [None] * 4
    assert keys.reads == {"openai": 1}


def test_a_read_under_way_when_the_cache_is_cleared_is_not_kept() -> None:
    keys = CountingKeys({"openai": KEY})
    cache = KeyCache(keys)
    keys.release.clear()
    reader = threading.Thread(target=cache.get, args=("openai",))
    reader.start()
    assert keys.entered.wait(10)
    keys.keys["openai"] = KEY + "new"  # the user stores a new key meanwhile...
    cache.clear()  # ...and clearing does not wait for the slow read
    keys.release.set()
    reader.join(10)
    assert cache.get("openai") == KEY + "new"
    assert keys.reads == {"openai": 2}


def test_concurrent_askers_share_one_read() -> None:
    keys = CountingKeys({"openai": KEY})
    cache = KeyCache(keys)
    keys.release.clear()
    results: list[str | None] = []
    askers = [threading.Thread(target=lambda: results.append(cache.get("openai")))
              for _ in range(4)]
    for asker in askers:
        asker.start()
    assert keys.entered.wait(10)
    keys.release.set()
    for asker in askers:
        asker.join(10)
    assert results == [KEY] * 4 and keys.reads == {"openai": 1}


async def test_health_checks_do_not_read_the_keyring_again(
        ctx: AppContext, backend: CountingKeyring) -> None:
    openai = ctx.engine.slot("openai").provider
    for _ in range(5):
        assert (await openai.health()).state is HealthState.NOT_CONFIGURED
    assert backend.reads_of("openai") == 1


async def test_warm_keys_reads_enabled_providers_off_the_event_loop_thread(
        ctx: AppContext, backend: CountingKeyring) -> None:
    await warm_keys(ctx)
    assert [name for name, _ in backend.reads] == ["openai"]  # remote is disabled
    assert all(thread != threading.get_ident() for _, thread in backend.reads)
    await ctx.engine.slot("openai").provider.health()
    assert backend.reads_of("openai") == 1  # the health check used the warmed value


async def test_a_key_saved_then_applied_is_seen_by_the_next_health_check(
        ctx: AppContext, backend: CountingKeyring) -> None:
    openai = ctx.engine.slot("openai").provider
    assert (await openai.health()).state is HealthState.NOT_CONFIGURED
    ctx.keys.set("openai", KEY)  # what the settings dialog does on Save...
    assert (await openai.health()).state is HealthState.NOT_CONFIGURED  # (still cached)
    await apply_settings(ctx, ctx.settings)  # ...before it applies the settings
    openai = ctx.engine.slot("openai").provider
    assert (await openai.health()).state is HealthState.READY
    assert (await openai.health()).state is HealthState.READY
    assert backend.passwords[(SERVICE, "openai")] == KEY
