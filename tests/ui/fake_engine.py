"""A stand-in for ``Engine`` where a test needs the window's wiring, not a real queue:
it records the calls the window makes and answers with empty lists."""

from __future__ import annotations

from typing import Any

from desktop_app.engine.events import EventHub, QueueChanged


class FakeEngine:
    def __init__(self) -> None:
        self.hub = EventHub()
        self.slots: list[Any] = []
        self.running_job_ids: list[int] = []
        self.calls: list[tuple[str, Any]] = []
        self.is_paused = False

    async def jobs(self, states: Any = None, limit: int = 500) -> list[Any]:
        return []

    async def paused(self) -> bool:
        return self.is_paused

    async def pause(self) -> None:
        self.calls.append(("pause", None))
        self.is_paused = True
        self.hub.emit(QueueChanged(paused=True))

    async def resume(self) -> None:
        self.calls.append(("resume", None))
        self.is_paused = False
        self.hub.emit(QueueChanged(paused=False))

    async def search_images(self, text: str = "", **filters: object) -> list[Any]:
        self.calls.append(("search_images", (text, filters)))
        return []

    def prompt_limits(self) -> dict[Any, tuple[int, str]]:
        return {}

    async def provider_statuses(self) -> list[Any]:
        self.calls.append(("provider_statuses", None))
        return []

    async def close(self, *, finish_running: bool = False) -> None:
        self.calls.append(("close", finish_running))
