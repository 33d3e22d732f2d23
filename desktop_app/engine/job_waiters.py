"""``Engine.wait_for``: a future per caller that resolves with the job once it has
finished, whichever process or path finished it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from desktop_app.domain.job import Job
from desktop_app.engine._background import BackgroundTasks
from desktop_app.engine.events import EventHub, JobFinished


class JobWaiters:
    def __init__(self, hub: EventHub, load: Callable[[int], Awaitable[Job | None]],
                 background: BackgroundTasks) -> None:
        self._load = load
        self._background = background
        self._waiters: dict[int, list[asyncio.Future[Job]]] = {}
        hub.subscribe(self._on_event)

    async def wait_for(self, job_id: int) -> Job:
        future: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(future)
        job = await self._load(job_id)  # it may have finished before we listened
        if job is not None and job.state.finished and not future.done():
            future.set_result(job)
        return await future

    def _on_event(self, event: object) -> None:
        if isinstance(event, JobFinished):
            waiters = self._waiters.pop(event.job_id, [])
            if waiters:
                self._background.spawn(self._resolve(event.job_id, waiters))

    async def _resolve(self, job_id: int, waiters: list[asyncio.Future[Job]]) -> None:
        job = await self._load(job_id)
        for future in waiters:
            if not future.done() and job is not None:
                future.set_result(job)
