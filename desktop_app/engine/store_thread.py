"""The store runs on one dedicated thread: SQLite calls never block the engine's
loop (and so never the UI thread), and one thread keeps them in submission order."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


class StoreThread:
    def __init__(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="imagedesk-store")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Fire and forget, in order with every other call; failures are logged."""
        future = self._executor.submit(fn, *args)
        future.add_done_callback(_log_failure)

    def call_sync(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Block until done: for start-up and shut-down paths outside the loop."""
        return self._executor.submit(functools.partial(fn, *args, **kwargs)).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def _log_failure(future: concurrent.futures.Future[Any]) -> None:
    error = future.exception()
    if error is not None:
        log.error("store call failed: %s", error, exc_info=error)
