from __future__ import annotations

import logging
from collections.abc import Iterator

import keyring
import keyring.backends.fail
import pytest

from desktop_app.secrets import (
    InvalidKey,
    KeyringUnavailable,
    KeySource,
    KeyStore,
    mask_key,
)
from tests.fakes.keyring_memory import InMemoryKeyring, installed_keyring

KEY = "sk-proj-" + "A1b2C3d4E5f6" * 4 + "wxyz"
OTHER_KEY = "sk-" + "Zz9_" * 12 + "9876"
UNAVAILABLE = ("No usable keyring on this system: install and unlock a Secret Service provider "
               "(e.g. gnome-keyring or KeePassXC), or set OPENAI_API_KEY in the environment.")


@pytest.fixture
def no_keyring() -> Iterator[None]:
    with installed_keyring(keyring.backends.fail.Keyring()):
        yield


@pytest.fixture
def store() -> KeyStore:
    return KeyStore(env={})


def test_fixture_restores_the_previous_backend() -> None:
    before = keyring.get_keyring()
    with installed_keyring(InMemoryKeyring()):
        assert isinstance(keyring.get_keyring(), InMemoryKeyring)
    assert keyring.get_keyring() is before


# --- set / get / delete / status ------------------------------------------------------


def test_set_key_is_read_back_from_the_keyring(
        memory_keyring: InMemoryKeyring, store: KeyStore) -> None:
    store.set("openai", f"  {KEY}\n")
    assert store.get("openai") == KEY
    assert memory_keyring.passwords == {("ImageDesk", "openai"): KEY}


def test_providers_keep_separate_keys(memory_keyring: InMemoryKeyring, store: KeyStore) -> None:
    store.set("openai", KEY)
    store.set("remote", "correct horse")
    assert store.get("openai") == KEY
    assert store.get("remote") == "correct horse"


def test_no_key_reads_as_none(memory_keyring: InMemoryKeyring, store: KeyStore) -> None:
    assert store.get("openai") is None
    status = store.status("openai")
    assert (status.source, status.masked, status.error) == (KeySource.NONE, None, None)


def test_delete_removes_the_key_and_reports_whether_one_existed(
    memory_keyring: InMemoryKeyring, store: KeyStore
) -> None:
    store.set("openai", KEY)
    assert store.delete("openai") is True
    assert store.get("openai") is None
    assert store.delete("openai") is False


def test_status_shows_keyring_source_backend_and_masked_key(
    memory_keyring: InMemoryKeyring, store: KeyStore
) -> None:
    store.set("openai", KEY)
    status = store.status("openai")
    assert status.source == "keyring"
    assert status.masked == "sk-...wxyz"
    assert status.backend == store.backend_name()
    assert "InMemoryKeyring" in status.backend
    assert status.error is None


def test_environment_key_wins_over_the_keyring(memory_keyring: InMemoryKeyring) -> None:
    store = KeyStore(env={"OPENAI_API_KEY": f" {OTHER_KEY} "})
    store.set("openai", KEY)
    assert store.get("openai") == OTHER_KEY
    status = store.status("openai")
    assert (status.source, status.masked) == (KeySource.ENV, "sk-...9876")


def test_remote_password_comes_from_its_own_variable(memory_keyring: InMemoryKeyring) -> None:
    store = KeyStore(env={"IMAGEDESK_REMOTE_PASSWORD": "hunter2hunter2", "OPENAI_API_KEY": ""})
    assert store.get("remote") == "hunter2hunter2"
    assert store.get("openai") is None  # an empty variable is no key


def test_service_name_separates_profiles(memory_keyring: InMemoryKeyring) -> None:
    KeyStore(service="ImageDesk-test", env={}).set("openai", KEY)
    assert KeyStore(env={}).get("openai") is None


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize("bad, complaint", [
    ("", "empty"),
    ("   ", "empty"),
    ("pk-" + "a" * 40, "starts with 'sk-'"),
    ("sk-abc def" + "g" * 30, "contains a space"),
    ("sk-abc\ndef" + "g" * 30, "contains a line break"),
    ("sk-abc\tdef" + "g" * 30, "contains a space"),
    ("sk-" + "a" * 30 + "!", "only letters, digits"),
    ("sk-" + "a" * 30 + "é", "characters a key cannot have"),
    ("sk-abc", "cut off"),
])
def test_malformed_openai_key_is_refused_with_a_reason_and_not_stored(
    memory_keyring: InMemoryKeyring, store: KeyStore, bad: str, complaint: str
) -> None:
    with pytest.raises(InvalidKey) as caught:
        store.set("openai", bad)
    assert complaint in str(caught.value)
    if bad.strip():
        assert bad.strip() not in str(caught.value)
    assert memory_keyring.passwords == {}


def test_short_remote_password_is_refused(memory_keyring: InMemoryKeyring, store: KeyStore) -> None:
    with pytest.raises(InvalidKey, match="8 to 1024 characters"):
        store.set("remote", "short")


def test_remote_password_may_hold_spaces_but_not_line_breaks(
    memory_keyring: InMemoryKeyring, store: KeyStore
) -> None:
    store.set("remote", "correct horse battery")
    assert store.get("remote") == "correct horse battery"
    with pytest.raises(InvalidKey, match="line break"):
        store.set("remote", "correct\nhorse battery")


def test_unknown_provider_is_refused(memory_keyring: InMemoryKeyring, store: KeyStore) -> None:
    with pytest.raises(InvalidKey, match="Unknown provider 'stability'"):
        store.set("stability", KEY)


# --- rotation -------------------------------------------------------------------------


async def test_rotate_replaces_the_key_after_the_check_passes(
    memory_keyring: InMemoryKeyring, store: KeyStore
) -> None:
    store.set("openai", KEY)
    checked: list[str] = []

    async def check(key: str) -> bool:
        checked.append(key)
        assert store.get("openai") == KEY  # the old key is still in place while checking
        return True

    status = await store.rotate("openai", OTHER_KEY, check)
    assert checked == [OTHER_KEY]
    assert store.get("openai") == OTHER_KEY
    assert status.masked == "sk-...9876"


async def test_rotate_keeps_the_old_key_when_the_check_fails(
    memory_keyring: InMemoryKeyring, store: KeyStore
) -> None:
    store.set("openai", KEY)

    async def check(key: str) -> bool:
        return False

    with pytest.raises(InvalidKey, match="did not pass the provider's check; the old key is kept"):
        await store.rotate("openai", OTHER_KEY, check)
    assert store.get("openai") == KEY


async def test_rotate_without_a_check_replaces_at_once(
    memory_keyring: InMemoryKeyring, store: KeyStore
) -> None:
    store.set("openai", KEY)
    await store.rotate("openai", OTHER_KEY)
    assert store.get("openai") == OTHER_KEY


async def test_rotate_refuses_a_malformed_key_before_calling_the_check(
    memory_keyring: InMemoryKeyring, store: KeyStore
) -> None:
    calls = 0

    async def check(key: str) -> bool:
        nonlocal calls
        calls += 1
        return True

    with pytest.raises(InvalidKey):
        await store.rotate("openai", "not-a-key", check)
    assert calls == 0


# --- no usable keyring ----------------------------------------------------------------


def test_fail_backend_gives_the_fix_on_set(no_keyring: None, store: KeyStore) -> None:
    with pytest.raises(KeyringUnavailable) as caught:
        store.set("openai", KEY)
    assert str(caught.value).startswith(UNAVAILABLE)
    assert KEY not in str(caught.value)


def test_fail_backend_gives_the_fix_on_get(no_keyring: None, store: KeyStore) -> None:
    with pytest.raises(KeyringUnavailable) as caught:
        store.get("openai")
    assert str(caught.value).startswith(UNAVAILABLE)


def test_fail_backend_gives_the_fix_on_delete(no_keyring: None, store: KeyStore) -> None:
    with pytest.raises(KeyringUnavailable):
        store.delete("openai")


async def test_fail_backend_refuses_rotation_before_spending_a_check(
    no_keyring: None, store: KeyStore
) -> None:
    async def check(key: str) -> bool:
        raise AssertionError("the check must not run when the key cannot be stored")

    with pytest.raises(KeyringUnavailable):
        await store.rotate("openai", KEY, check)


def test_fail_backend_status_reports_the_problem_instead_of_raising(
    no_keyring: None, store: KeyStore
) -> None:
    status = store.status("openai")
    assert status.source == "none"
    assert status.error == UNAVAILABLE
    assert status.backend == "fail Keyring"


def test_environment_key_works_without_a_keyring(no_keyring: None) -> None:
    store = KeyStore(env={"OPENAI_API_KEY": KEY})
    assert store.get("openai") == KEY
    assert store.status("openai").source == "env"


def test_locked_keyring_error_on_read_and_write_becomes_the_fix(
    memory_keyring: InMemoryKeyring, store: KeyStore
) -> None:
    memory_keyring.locked = True
    for action in (lambda: store.get("openai"), lambda: store.set("openai", KEY)):
        with pytest.raises(KeyringUnavailable) as caught:
            action()
        assert str(caught.value).startswith(UNAVAILABLE)
        assert "KeyringLocked" in str(caught.value)
        assert KEY not in str(caught.value)


def test_nothing_is_written_to_a_file_when_the_keyring_fails(
    no_keyring: None, store: KeyStore, tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    with pytest.raises(KeyringUnavailable):
        store.set("openai", KEY)
    assert list(home.rglob("*")) == []


# --- the key never leaks --------------------------------------------------------------


async def test_key_never_appears_in_logs(
    memory_keyring: InMemoryKeyring, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = KeyStore(env={})
    store.set("openai", KEY)
    store.get("openai")
    store.status("openai")
    await store.rotate("openai", OTHER_KEY)
    store.delete("openai")
    assert caplog.records, "the store should say what it did"
    for record in caplog.records:
        assert KEY not in record.getMessage() and OTHER_KEY not in record.getMessage()


def test_mask_key_shows_only_the_prefix_and_last_four() -> None:
    assert mask_key(KEY) == "sk-...wxyz"
    assert mask_key("hunter2hunter2xy") == "...r2xy"
    assert mask_key("short") == "****"
