"""Remote GPU workers through BullMQ on Redis: the desktop-side provider
(``RemoteProvider``) and the headless worker (``worker.run_worker``) share the
payload schema in ``protocol``. Nothing here imports torch."""

from desktop_app.providers.remote_bullmq.config import (
    DEFAULT_QUEUE,
    Placement,
    RemoteConfig,
    WorkerConfig,
)
from desktop_app.providers.remote_bullmq.protocol import Transport
from desktop_app.providers.remote_bullmq.provider import RemoteProvider

__all__ = ["DEFAULT_QUEUE", "Placement", "RemoteConfig", "RemoteProvider", "Transport",
           "WorkerConfig"]
