"""Which process runs a profile's queue: the one holding its lock. Only that one
recovers and runs jobs, so a CLI beside the window does not requeue the window's
running jobs; another process waits and takes over once the holder exits."""

from __future__ import annotations

import asyncio

from desktop_app.store.profile_lock import ProfileBusy, ProfileLock

LOCK_RETRY_S = 2.0


class QueueOwnership:
    """``lock`` None: this engine is the only one (tests, a temporary profile)."""

    def __init__(self, lock: ProfileLock | None) -> None:
        self._lock = lock

    def owned(self) -> bool:
        """Whether this process runs the queue (taking the lock if it is free)."""
        return self._lock is None or self._lock.held or self._lock.try_acquire()

    @property
    def held(self) -> bool:
        """Whether this process ran the queue, without trying to take it."""
        return self._lock is None or self._lock.held

    def holder_pid(self) -> int | None:
        return self._lock.holder_pid() if self._lock is not None else None

    def claim(self) -> None:
        """Become the process that runs the queue, or raise ``ProfileBusy``."""
        if not self.owned():
            raise ProfileBusy(self.holder_pid())

    async def wait(self) -> None:
        """Return once this process runs the queue."""
        while not self.owned():
            await asyncio.sleep(LOCK_RETRY_S)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
