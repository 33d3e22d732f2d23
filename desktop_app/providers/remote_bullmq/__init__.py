"""Remote GPU workers through BullMQ on Redis: the desktop-side provider
(``provider.RemoteProvider``) and the headless worker (``worker.run_worker``)
share the payload schema in ``protocol``. Nothing here imports torch.

Importing this package is cheap (settings and enums only); ``RemoteProvider``
is loaded on first use because bullmq and redis take ~0.1 s to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from desktop_app.providers.remote_bullmq.config import (
    DEFAULT_QUEUE,
    Placement,
    RemoteConfig,
    WorkerConfig,
)
from desktop_app.providers.remote_bullmq.protocol import Transport

if TYPE_CHECKING:
    from desktop_app.providers.remote_bullmq.provider import RemoteProvider


def __getattr__(name: str) -> Any:
    if name == "RemoteProvider":
        from desktop_app.providers.remote_bullmq.provider import RemoteProvider

        return RemoteProvider
    raise AttributeError(name)


__all__ = ["DEFAULT_QUEUE", "Placement", "RemoteConfig", "RemoteProvider", "Transport",
           "WorkerConfig"]
