"""The store's mark that a job is in (or just came out of) a call that may be
charged for, so a crash there never leads to a silent second charge.

The mark is committed before the call goes out (``started`` is awaited) and
lifted when the call fails; a call that returned images keeps the job marked
until its images are saved (finishing the job clears it). Recovery holds a
marked job as failed until the user retries it (``store.interrupted``).
"""

from __future__ import annotations

import functools

from desktop_app.engine.store_thread import StoreThread
from desktop_app.store.jobs import JobQueue


class PaidCallJournal:
    """One job's paid-call marks, written through the store thread."""

    def __init__(self, store: StoreThread, queue: JobQueue, job_id: int) -> None:
        self._store = store
        self._queue = queue
        self.job_id = job_id

    async def started(self, provider: str) -> None:
        """Before a cloud call: returns once the mark is durable. A store fault is
        raised, so no paid call starts that a crash could make invisible."""
        await self._store.run(self._queue.paid_call_started, self.job_id, provider)

    def ended(self, *, charged: bool) -> None:
        """After the call: queued in order with the job's later writes."""
        self._store.submit(functools.partial(self._queue.paid_call_ended, self.job_id,
                                             charged=charged))
