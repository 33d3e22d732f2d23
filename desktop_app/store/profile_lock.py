"""One queue runner per profile: an OS file lock that says which process owns
the job queue.

The window and the CLI can open the same profile at once. Both may read the
store and add jobs, but only one may recover interrupted jobs and run the
queue: a second runner would "recover" the first one's running jobs (it cannot
tell them from a crash) and run them twice, paying twice for cloud images.

The lock is ``flock(LOCK_EX | LOCK_NB)`` on POSIX and ``msvcrt.locking`` on
Windows, taken on an open file. The OS drops it when the holding process dies,
however it dies (SIGKILL, power loss aside), so a crash never leaves a stale
lock behind. The file also carries the holder's pid, for the message that tells
the user which process to close; the pid is a hint, the lock is the truth.

flock belongs to the open file description: a second ``ProfileLock`` on the
same file in the same process is refused like another process would be. The
descriptor is not inherited across exec (Python's default), so a spawned worker
process never keeps the lock alive after the app is gone.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from types import TracebackType

from desktop_app.domain.errors import ImageDeskError

LOCK_FILE = "runner.lock"
# Windows locks are mandatory: a locked byte cannot be read by anyone else. The
# lock therefore covers one byte past the pid text, so ``holder_pid`` can still read it.
_WINDOWS_LOCK_OFFSET = 64
_PID_MAX_CHARS = 32


class ProfileBusy(ImageDeskError):
    """Another process holds this profile's queue; the message says what to do."""

    def __init__(self, pid: int | None) -> None:
        who = f"Another ImageDesk process (pid {pid})" if pid else "Another ImageDesk process"
        super().__init__(f"{who} is running this profile's queue. Close it, or use "
                         "`imagedesk queue add` to queue prompts for it.")
        self.pid = pid


class ProfileLock:
    """The exclusive right to run one profile's queue, held until ``release`` or
    the end of the process.

    >>> lock = ProfileLock(paths.data_dir / LOCK_FILE)
    >>> if not lock.try_acquire():
    ...     raise ProfileBusy(lock.holder_pid())
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock without waiting; ``False`` when another holder has it.
        When taken, our pid is written into the file. Raises ``OSError`` when the
        file cannot be opened or locked at all (a read-only folder, a file system
        without locks)."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _lock(fd):
                os.close(fd)
                return False
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, str(os.getpid()).encode("ascii"))
        except BaseException:
            os.close(fd)  # closing drops a lock we may have taken
            raise
        self._fd = fd
        return True

    def acquire(self) -> None:
        """Take the lock or raise ``ProfileBusy`` naming the holder's pid."""
        if not self.try_acquire():
            raise ProfileBusy(self.holder_pid())

    def holder_pid(self) -> int | None:
        """The pid the current holder wrote (ours when we hold it); ``None`` when
        the file is missing, empty or unreadable. Best effort: a holder that has
        just taken the lock may not have written its pid yet, and a holder that
        died leaves its pid until the next one overwrites it."""
        if self._fd is not None:
            return os.getpid()
        try:
            with open(self.path, "rb") as file:
                text = file.read(_PID_MAX_CHARS)
        except OSError:
            return None
        try:
            pid = int(text.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            return None
        return pid if pid > 0 else None

    def release(self) -> None:
        """Give the lock up (clearing the pid first); harmless when not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> ProfileLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()

    def __del__(self) -> None:  # an unreleased lock must not outlive its owner object
        with contextlib.suppress(Exception):
            self.release()


if sys.platform == "win32":
    import msvcrt

    def _lock(fd: int) -> bool:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
