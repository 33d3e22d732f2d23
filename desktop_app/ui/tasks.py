"""Fire-and-forget engine calls from widgets, with failures shown instead of lost.

Widgets call ``spawn(engine.cancel(job_id))``; the coroutine runs on the shared
qasync loop, and an exception (an ``ImageDeskError`` with a sentence for the
user, or a bug) is handed to the window's error reporter rather than logged to
nobody. Tasks are held until done so the loop never drops them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from desktop_app.domain.errors import ImageDeskError

log = logging.getLogger(__name__)
T = TypeVar("T")

ErrorReporter = Callable[[str], None]
_reporter: ErrorReporter | None = None
_tasks: set[asyncio.Future[Any]] = set()


def set_error_reporter(reporter: ErrorReporter | None) -> None:
    global _reporter
    _reporter = reporter


def report_error(message: str) -> None:
    if _reporter is not None:
        _reporter(message)
    else:
        log.error("%s", message)


def spawn(
    coro: Coroutine[Any, Any, T], on_done: Callable[[T], None] | None = None
) -> asyncio.Future[T]:
    """Run ``coro`` on the running loop; ``on_done(result)`` on success, report on failure."""
    task = asyncio.ensure_future(coro)
    _tasks.add(task)

    def finished(t: asyncio.Future[T]) -> None:
        _tasks.discard(t)
        if t.cancelled():
            return
        error = t.exception()
        if error is None:
            if on_done is not None:
                on_done(t.result())
        elif isinstance(error, ImageDeskError):
            report_error(error.message)
        else:
            log.error("background task failed", exc_info=error)
            report_error(f"Something went wrong: {error}")

    task.add_done_callback(finished)
    return task


def pending() -> int:
    """How many spawned tasks have not finished (tests wait for zero)."""
    return len(_tasks)
