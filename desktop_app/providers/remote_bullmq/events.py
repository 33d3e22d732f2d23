"""Following jobs through BullMQ's event stream, across Redis restarts.

One ``QueueEvents`` per provider reads ``bull:<queue>:events`` (an XREAD
loop) and hands each entry to the job it names. BullMQ's Python
``QueueEvents`` stops at the first connection error (it emits ``error`` and
returns), so a supervisor starts a fresh one from the last entry id it saw:
the stream is persisted with the rest of Redis, so nothing between the two
is missed. The provider still checks each job's state now and then (see
``RemoteProvider._check``), in case the stream was trimmed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from bullmq import QueueEvents

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0

# The events a job watcher cares about; every listened event also moves the
# resume point forward.
EVENTS = ("waiting", "active", "progress", "completed", "failed", "delayed", "stalled",
          "removed", "added")


@dataclasses.dataclass(frozen=True)
class JobEvent:
    kind: str
    data: dict[str, Any]


class EventFollower:
    """Routes queue events to per-job inboxes; restarts its reader after errors."""

    def __init__(self, queue: str, make_client: Callable[[], Any], *,
                 restart_delays: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0)) -> None:
        self._queue = queue
        self._make_client = make_client
        self._delays = restart_delays
        self._inboxes: dict[str, asyncio.Queue[JobEvent]] = {}
        self._last_id = "$"
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None

    async def start(self, stream_client: Any) -> None:
        """Begin reading after the stream's current end (read with ``stream_client``),
        so a job submitted after this call cannot complete unseen."""
        if self._task is not None and not self._task.done():
            return
        newest = await stream_client.xrevrange(f"bull:{self._queue}:events", "+", "-", count=1)
        self._last_id = newest[0][0] if newest else "0-0"
        self._task = asyncio.get_running_loop().create_task(self._supervise(),
                                                            name="remote-events")

    def watch(self, job_id: str) -> asyncio.Queue[JobEvent]:
        inbox: asyncio.Queue[JobEvent] = asyncio.Queue()
        self._inboxes[job_id] = inbox
        return inbox

    def unwatch(self, job_id: str) -> None:
        self._inboxes.pop(job_id, None)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # bounded: a library call inside may swallow the cancellation and carry on
            done, _ = await asyncio.wait({task}, timeout=CLOSE_TIMEOUT_S)
            if not done:
                log.warning("the remote event reader did not stop within %.0f s; left behind",
                            CLOSE_TIMEOUT_S)

    def _dispatch(self, kind: str) -> Callable[..., None]:
        def listener(args: dict[str, Any], entry_id: str) -> None:
            self._last_id = entry_id
            inbox = self._inboxes.get(str(args.get("jobId", "")))
            if inbox is not None:
                inbox.put_nowait(JobEvent(kind, dict(args)))
        return listener

    async def _supervise(self) -> None:
        failures = 0
        while True:
            start_id = self._last_id
            events = QueueEvents(self._queue, {
                "connection": self._make_client(), "lastEventId": self._last_id,
                "autorun": False, "blockingTimeout": 2000, "skipVersionCheck": True,
            })
            errors: list[str] = []
            events.on("error", lambda exc, seen=errors: seen.append(f"{type(exc).__name__}: {exc}"))
            for kind in EVENTS:
                events.on(kind, self._dispatch(kind))
            # run() in its own task: QueueEvents.close() cancels the task that runs it.
            reader = asyncio.get_running_loop().create_task(events.run())
            try:
                await reader
            except asyncio.CancelledError:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await events.close()
                raise
            except Exception as exc:  # run() raises before its loop (e.g. INFO failed)
                errors.append(f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(Exception):
                await events.close()
            self.last_error = errors[-1] if errors else "the event reader stopped"
            if self._last_id != start_id:
                failures = 0  # it read something: the server was back
            log.info("remote events: restarting after %s", self.last_error)
            await asyncio.sleep(self._delays[min(failures, len(self._delays) - 1)])
            failures += 1
