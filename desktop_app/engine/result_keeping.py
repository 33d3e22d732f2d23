"""A finished job's images, kept: screened for NSFW content where the user asked,
written to the gallery folder (each file journalled on the job first, so a crash
leaves no file the index does not know), then indexed and the job finished in one
transaction. If indexing fails the files go too, so folder and index agree."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from desktop_app.domain.job import Job
from desktop_app.engine.failover import JobOutcome
from desktop_app.engine.nsfw import NsfwMode, NsfwSettings, Scorer, screen_images
from desktop_app.engine.saving import ImageSaver
from desktop_app.engine.store_thread import StoreThread
from desktop_app.store.gallery import Gallery
from desktop_app.store.jobs import JobQueue


class ResultKeeper:
    """``nsfw`` is replaced by ``apply``; the saver's folder and quality too."""

    def __init__(self, *, store: StoreThread, queue: JobQueue, gallery: Gallery,
                 saver: ImageSaver, nsfw: NsfwSettings, scorer: Scorer | None) -> None:
        self._store = store
        self._queue = queue
        self._gallery = gallery
        self.saver = saver
        self.nsfw = nsfw
        self._scorer = scorer

    async def keep(self, job: Job, outcome: JobOutcome) -> list[int]:
        """The gallery ids of the images kept (the runner's ``save``)."""
        if self.nsfw.mode is not NsfwMode.OFF:
            kept = await asyncio.to_thread(screen_images, outcome.images, self.nsfw,
                                           self._scorer)
            outcome = dataclasses.replace(outcome, images=kept)

        def journal(path: Path) -> None:  # runs on the file thread; waits for the commit
            self._store.call_sync(self._queue.note_pending_files, job.id, [path])

        saved = await asyncio.to_thread(self.saver.write_files, job, outcome, journal)
        try:
            return await self._store.run(self.saver.index_and_finish, self._queue,
                                         self._gallery, job, outcome, saved)
        except BaseException:  # not indexed: the files must go too, so folder and index agree
            await asyncio.shield(asyncio.to_thread(self.saver.remove_saved, saved))
            raise
