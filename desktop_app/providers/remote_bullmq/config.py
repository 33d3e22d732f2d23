"""Settings of the remote provider (desktop side) and of a worker (GPU machine side)."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path

from desktop_app.providers.remote_bullmq.protocol import Transport

DEFAULT_QUEUE = "imagedesk"


class Placement(enum.Enum):
    """Where remote workers sit in the route, relative to this machine's GPU."""

    BEFORE_LOCAL = "before_local"
    AFTER_LOCAL = "after_local"
    WHEN_LOCAL_BUSY = "when_local_busy"  # only when the local GPU is busy or unavailable


def _check_queue(queue: str) -> None:
    if not queue or any(ch.isspace() or ch in ":{}" for ch in queue):
        raise ValueError(f"The queue name {queue!r} must be a non-empty word without spaces, "
                         "':' or braces (e.g. imagedesk or studio-gpus).")


def _check_url(url: str) -> None:
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"The Redis URL must start with redis://, rediss:// or unix:// "
                         f"(e.g. redis://render-box:6379/0), not {url[:40]!r}.")


@dataclasses.dataclass(frozen=True)
class RemoteConfig:
    """The desktop side. ``redis_url`` empty means "not configured".

    The password comes from the key store (provider ``remote``), never from
    here; a password inside the URL is used only when the key store has none.
    """

    redis_url: str = ""
    queue: str = DEFAULT_QUEUE
    transport: Transport = Transport.REDIS
    shared_folder: Path | None = None  # this machine's mount of the workers' results folder
    connect_timeout_s: float = 3.0
    health_cache_s: float = 1.0
    poll_s: float = 2.0  # direct job-state check, a safety net under the event stream
    cancel_grace_s: float = 10.0  # wait this long for a worker to confirm a cancel
    lost_redis_grace_s: float = 60.0  # an in-flight job survives a Redis outage this long
    no_worker_grace_s: float = 30.0  # a queued job with no live worker fails after this
    keep_finished_s: int = 3600  # BullMQ keeps finished jobs this long (bounded memory)

    def __post_init__(self) -> None:
        _check_url(self.redis_url)
        _check_queue(self.queue)
        if self.transport is Transport.FOLDER and self.shared_folder is None:
            raise ValueError("The folder transport needs the shared folder's path on this "
                             "machine.")


@dataclasses.dataclass(frozen=True)
class WorkerConfig:
    """A worker process on a GPU machine.

    ``lock_s`` / ``stalled_check_s`` / ``max_stalled`` are BullMQ's
    ``lockDuration`` / ``stalledInterval`` / ``maxStalledCount``: a job whose
    worker stops renewing its lock for ``lock_s`` is put back in the queue by
    another worker's check (every ``stalled_check_s``), at most ``max_stalled``
    times before it fails as lost.
    """

    name: str = ""  # shown in the desktop's health details; default host-pid
    results_folder: Path | None = None  # serves the folder transport when set
    heartbeat_s: float = 2.0
    lock_s: float = 30.0
    stalled_check_s: float = 15.0
    max_stalled: int = 2
    cancel_poll_s: float = 0.2
    shutdown_grace_s: float = 60.0  # on SIGTERM, finish the current job within this, else return it
    result_ttl_s: int = 600  # unread results expire from Redis
    max_result_bytes: int = 64 * 2**20  # per job through Redis; larger needs the folder transport
    warm_up: bool = True  # load the model before taking jobs

    def __post_init__(self) -> None:
        if self.heartbeat_s <= 0 or self.lock_s <= 0 or self.stalled_check_s <= 0:
            raise ValueError("Worker timings must be positive.")
        if self.max_stalled < 0:
            raise ValueError("max_stalled must be 0 or more.")
