"""Another process's jobs: ``imagedesk queue add`` (or a second window) writes to
the same database while this engine runs the queue; its jobs must appear in
this queue view and run within a second or two.

The watch asks the store, on the store thread, whether another connection has
committed (``JobQueue.changed_elsewhere``: SQLite's ``PRAGMA data_version``, a
read of a counter in the WAL's shared memory) every ``interval_s``. That costs
microseconds and touches no table, so a sub-second interval is cheap; there is
no busy loop. On a change it calls ``on_change(paused)``: the engine wakes its
runner and emits ``QueueChanged``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from desktop_app.engine.store_thread import StoreThread
from desktop_app.store.database import StoreError
from desktop_app.store.jobs import JobQueue

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.75


class QueueWatch:
    def __init__(self, store: StoreThread, queue: JobQueue, on_change: Callable[[bool], None],
                 interval_s: float = WATCH_INTERVAL_S) -> None:
        self._store = store
        self._queue = queue
        self._on_change = on_change
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin watching (on the running loop); harmless when already watching."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="imagedesk-queue-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self) -> None:
        failing = False
        while True:
            try:
                if await self._store.run(self._queue.changed_elsewhere):
                    self._on_change(await self._store.run(self._queue.is_paused))
                failing = False
            except StoreError as error:  # said once, not every interval, until it recovers
                if not failing:
                    log.warning("cannot watch the queue for other processes' jobs: %s", error)
                failing = True
            await asyncio.sleep(self.interval_s)
