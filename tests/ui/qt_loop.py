"""The qasync loop for tests, as measured to work 10/10 times (see the Qt notes):
set it as the current and running loop; on teardown cancel its tasks, process
events, unset the running loop and close it. Never ``loop.stop()``: that calls
``QApplication.exit()`` and every later ``qtbot.waitSignal`` returns at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import qasync
import shiboken6
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication


@contextlib.contextmanager
def qasync_loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    event_loop = qasync.QEventLoop(qapp, already_running=False)
    asyncio.set_event_loop(event_loop)
    asyncio.events._set_running_loop(event_loop)
    try:
        yield event_loop
    finally:
        for task in asyncio.all_tasks(event_loop):
            task.cancel()
        for _ in range(5):
            qapp.processEvents()
        asyncio.events._set_running_loop(None)
        event_loop.close()
        asyncio.set_event_loop(None)
        # qasync's close() only marks its timer object stopped; a call_later still
        # pending (an SDK's timeout, a long sleep) keeps a Qt timer alive in it, and
        # when Python's cycle collector frees the loop on a worker thread of a later
        # test, Qt warns "Timers cannot be stopped from another thread". Delete it
        # here, on the GUI thread.
        timer = getattr(event_loop, "_timer", None)
        if isinstance(timer, QObject) and shiboken6.isValid(timer):
            shiboken6.delete(timer)
