"""The GUI side's handle on one worker process: spawn, pipes, reader thread, stop.

Imports nothing of the worker side: the child imports ``gpu_worker.main`` by name
(``_child_main``), so the GUI process never loads that package.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from desktop_app.providers.local_diffusion.messages import (
    Command,
    DeviceInfo,
    Shutdown,
    WorkerDied,
    WorkerSettings,
)

Listener = Callable[[object], None]
STOP_GRACE_S = 2.0  # how long a stopping worker may take before it is killed
CANCEL_EVERYTHING = 2**62  # above any job id


class WorkerProcess:
    """One spawned worker. Events go to the subscriber's loop; state kept here is
    guarded by a lock because the reader thread writes it."""

    def __init__(self, settings: WorkerSettings, env: dict[str, str]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._commands_out: Connection
        commands_in, self._commands_out = ctx.Pipe(duplex=False)
        self._events_in, events_out = ctx.Pipe(duplex=False)
        # Shared memory without a lock: only this process writes it (under
        # ``_cancel_lock``), the worker only reads an aligned int64. A locked Value
        # would own a named semaphore, which the resource tracker reports as
        # "leaked" on the user's terminal if the app ends without tearing the
        # worker object down (an os._exit, a crash).
        self._cancel_upto: Any = ctx.Value("q", 0, lock=False)
        self._cancel_lock = threading.Lock()
        self._process = ctx.Process(
            target=_child_main,
            args=(settings, commands_in, events_out, self._cancel_upto, env, os.getpid()),
            name="imagedesk-gpu-worker",
            daemon=True,
        )
        self._child_ends = (commands_in, events_out)
        self._lock = threading.Lock()
        self._subscriber: tuple[asyncio.AbstractEventLoop, Listener] | None = None
        self.device_info: DeviceInfo | None = None
        self.exitcode: int | None = None
        self.dead = False
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        """Spawn the process (blocking for a few milliseconds: call it off the loop)."""
        self._process.start()
        for end in self._child_ends:  # so that EOF reaches us when the child dies
            end.close()
        self._reader = threading.Thread(target=self._read, name="gpu-worker-reader",
                                        daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return not self.dead and self._process.is_alive()

    def subscribe(self, loop: asyncio.AbstractEventLoop, listener: Listener) -> None:
        with self._lock:
            self._subscriber = (loop, listener)
            dead = self.dead
        if dead:
            loop.call_soon(listener, WorkerDied(self.exitcode))

    def unsubscribe(self) -> None:
        with self._lock:
            self._subscriber = None

    def send(self, command: Command) -> bool:
        """False when the worker is gone (its death is reported to the subscriber)."""
        try:
            self._commands_out.send(command)
        except (OSError, ValueError):
            return False
        return True

    def cancel(self, job_id: int) -> None:
        with self._cancel_lock:
            self._cancel_upto.value = max(self._cancel_upto.value, job_id)

    def kill(self) -> None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self._process.kill()

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Cancel whatever runs, ask the worker to exit, and kill it if it has not
        within ``grace_s`` (a step, a VAE decode or a model load cannot be
        interrupted; nothing the worker holds needs saving). Blocking, for at most
        about ``grace_s`` + 1 s: run it off the loop."""
        if self._process.pid is None:
            return
        self.cancel(CANCEL_EVERYTHING)
        self.send(Shutdown())
        self._process.join(grace_s)
        if self._process.is_alive():
            self.kill()
            self._process.join(1.0)
        with contextlib.suppress(OSError):
            self._commands_out.close()
        if self._reader is not None:
            self._reader.join(1.0)

    def _read(self) -> None:
        while True:
            try:
                message: object = self._events_in.recv()
            except (EOFError, OSError):
                break
            except Exception as exc:  # an event that does not unpickle: report, go on
                message = exc
            if isinstance(message, DeviceInfo):
                with self._lock:
                    self.device_info = message
            self._post(message)
        self._process.join(1.0)
        with self._lock:
            self.dead = True
            self.exitcode = self._process.exitcode
        with contextlib.suppress(OSError):
            self._events_in.close()
        self._post(WorkerDied(self.exitcode))

    def _post(self, message: object) -> None:
        with self._lock:
            subscriber = self._subscriber
        if subscriber is None:
            return
        loop, listener = subscriber
        with contextlib.suppress(RuntimeError):  # that loop has closed
            loop.call_soon_threadsafe(listener, message)


def _child_main(*args: Any) -> None:
    """The spawned process's entry point: import the worker side there, not here."""
    from desktop_app.providers.local_diffusion.gpu_worker.main import worker_main

    worker_main(*args)
