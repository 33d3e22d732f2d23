"""The provider slots an engine routes to now, and swapping them after a settings
change: a slot no longer configured is retired (the router skips it) and its
provider is closed once the calls running on it have let go."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence

from desktop_app.domain.errors import ImageDeskError
from desktop_app.engine._background import BackgroundTasks
from desktop_app.engine.events import EventHub, ProviderStateChanged
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import ProviderKind
from desktop_app.resilience.breaker import BreakerTransition

log = logging.getLogger(__name__)


class LiveSlots:
    """The engine's slots in rank order; ``on_change`` hands each new set to the
    runner. Breaker transitions become ``ProviderStateChanged`` events."""

    def __init__(self, slots: Sequence[ProviderSlot], hub: EventHub,
                 background: BackgroundTasks,
                 on_change: Callable[[Sequence[ProviderSlot]], None]) -> None:
        self._slots: list[ProviderSlot] = []
        self._hub = hub
        self._background = background
        self._on_change = on_change
        self._adopt(slots)

    def __iter__(self) -> Iterator[ProviderSlot]:
        return iter(tuple(self._slots))

    def find(self, name: str) -> ProviderSlot:
        for slot in self._slots:
            if slot.name == name:
                return slot
        raise ImageDeskError(f"No provider named {name!r}: known are "
                             f"{', '.join(s.name for s in self._slots)}.")

    def first_local(self) -> ProviderSlot | None:
        """The enabled provider on this machine, if any (the one "warm on start" loads)."""
        return next((s for s in self._slots if s.kind is ProviderKind.LOCAL and s.enabled),
                    None)

    async def replace(self, slots: Sequence[ProviderSlot]) -> None:
        """Swap in rebuilt slots; providers no longer used are closed once their
        running calls have finished with them."""
        old = [s for s in self._slots if s not in slots]
        self._adopt(slots)
        for slot in old:
            slot.retired = True
            self._hub.emit(ProviderStateChanged(slot.name, "closed", "settings changed"))
            if slot.in_flight == 0:
                await self._close(slot, "closing the replaced %s provider failed")
            else:  # a job is still running on it: close it once that job lets go
                slot.on_idle = functools.partial(self._close_later, slot)

    async def close_all(self) -> None:
        for slot in self._slots:
            await self._close(slot, "closing %s failed")

    def _adopt(self, slots: Sequence[ProviderSlot]) -> None:
        self._slots[:] = list(slots)
        for slot in self._slots:
            slot.breaker.on_transition = self._on_breaker_transition
        self._on_change(self._slots)

    async def _close(self, slot: ProviderSlot, failure: str) -> None:
        try:
            await slot.provider.close()
        except Exception:
            log.exception(failure, slot.name)
        if slot.limiter is not None:
            try:
                await slot.limiter.close()
            except Exception:
                log.exception(failure, slot.name)

    def _close_later(self, slot: ProviderSlot) -> None:
        self._background.spawn(self._close(slot, "closing the replaced %s provider failed"))

    def _on_breaker_transition(self, transition: BreakerTransition) -> None:
        self._hub.emit(ProviderStateChanged(transition.provider, transition.new.value,
                                            transition.reason, transition.retry_after_s))
