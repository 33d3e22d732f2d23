"""One queue runner per profile: real processes contend for the lock file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_app.store.profile_lock import LOCK_FILE, ProfileBusy, ProfileLock

# A child that takes the lock, says so on stdout, and holds it until killed or
# until its stdin closes.
HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from desktop_app.store.profile_lock import ProfileLock
    lock = ProfileLock(Path(sys.argv[1]))
    print("held" if lock.try_acquire() else "busy", flush=True)
    sys.stdin.read()
""")

# A child that tries once and reports what it saw.
CONTENDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from desktop_app.store.profile_lock import ProfileLock
    lock = ProfileLock(Path(sys.argv[1]))
    print(lock.try_acquire(), lock.holder_pid(), flush=True)
""")


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / LOCK_FILE


@pytest.fixture
def holder(lock_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_path)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def contend(lock_path: Path) -> tuple[bool, int | None]:
    out = subprocess.run([sys.executable, "-c", CONTENDER, str(lock_path)], capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    return out[0] == "True", None if out[1] == "None" else int(out[1])


@pytest.mark.slow
def test_a_second_process_is_refused_and_told_the_holders_pid(
        lock_path: Path, holder: subprocess.Popen[str]) -> None:
    lock = ProfileLock(lock_path)
    assert lock.try_acquire() is False
    assert lock.holder_pid() == holder.pid
    with pytest.raises(ProfileBusy) as busy:
        lock.acquire()
    assert busy.value.pid == holder.pid
    assert busy.value.message == (
        f"Another ImageDesk process (pid {holder.pid}) is running this profile's queue. "
        "Close it, or use `imagedesk queue add` to queue prompts for it.")


@pytest.mark.slow
def test_a_sigkilled_holder_frees_the_lock_for_the_next_process(
        lock_path: Path, holder: subprocess.Popen[str]) -> None:
    lock = ProfileLock(lock_path)
    assert lock.try_acquire() is False
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    assert lock.try_acquire() is True
    assert lock.holder_pid() == os.getpid()
    assert int(lock_path.read_text()) == os.getpid()  # the dead holder's pid is replaced
    lock.release()


@pytest.mark.slow
def test_a_holder_that_exits_normally_frees_the_lock(
        lock_path: Path, holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    assert holder.wait(timeout=10) == 0
    with ProfileLock(lock_path) as lock:
        assert lock.held


@pytest.mark.slow
def test_while_this_process_holds_the_lock_another_process_sees_our_pid(
        lock_path: Path) -> None:
    lock = ProfileLock(lock_path)
    assert lock.try_acquire() is True
    assert contend(lock_path) == (False, os.getpid())
    lock.release()
    taken, pid = contend(lock_path)  # the child takes it, writes its pid, exits
    assert taken is True and pid is not None and pid != os.getpid()


def test_two_locks_on_one_file_in_one_process_exclude_each_other(lock_path: Path) -> None:
    first, second = ProfileLock(lock_path), ProfileLock(lock_path)
    assert first.try_acquire() is True
    assert first.try_acquire() is True  # taking it again while held is a no-op
    assert second.try_acquire() is False
    first.release()
    assert second.try_acquire() is True
    second.release()


def test_the_context_manager_releases_on_exit_even_after_an_error(lock_path: Path) -> None:
    with pytest.raises(RuntimeError), ProfileLock(lock_path):
        assert ProfileLock(lock_path).try_acquire() is False
        raise RuntimeError("boom")
    other = ProfileLock(lock_path)
    assert other.try_acquire() is True
    other.release()


def test_entering_a_held_lock_raises_profile_busy(lock_path: Path) -> None:
    with (ProfileLock(lock_path), pytest.raises(ProfileBusy, match=f"pid {os.getpid()}"),
          ProfileLock(lock_path)):
        pytest.fail("a second holder got in")


def test_release_clears_the_pid_so_nobody_is_reported_as_holder(lock_path: Path) -> None:
    lock = ProfileLock(lock_path)
    lock.try_acquire()
    lock.release()
    lock.release()  # harmless twice
    assert lock.held is False
    assert ProfileLock(lock_path).holder_pid() is None


@pytest.mark.parametrize("content", [b"", b"not a pid", b"\xff\xfe", b"-5"])
def test_an_unreadable_pid_is_reported_as_unknown(lock_path: Path, content: bytes) -> None:
    lock_path.parent.mkdir(parents=True)
    lock_path.write_bytes(content)
    assert ProfileLock(lock_path).holder_pid() is None
    assert ProfileBusy(None).message.startswith("Another ImageDesk process is running")


def test_a_missing_lock_file_has_no_holder(lock_path: Path) -> None:
    assert ProfileLock(lock_path).holder_pid() is None
