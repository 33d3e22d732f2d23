from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from desktop_app.engine.events import Event, EventHub
from desktop_app.engine.failover import JobContext
from desktop_app.engine.metrics import Metrics
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import CancelToken, ImageProvider
from desktop_app.resilience.breaker import BreakerConfig, CircuitBreaker
from desktop_app.resilience.clock import FakeClock
from desktop_app.resilience.cooldown import CooldownGate
from desktop_app.resilience.retry import RetryPolicy


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> list[Event]:
    return []


@pytest.fixture
def hub(events: list[Event]) -> EventHub:
    hub = EventHub()
    hub.subscribe(events.append)
    return hub


@pytest.fixture
def make_slot(clock: FakeClock) -> Callable[..., ProviderSlot]:
    def make(provider: ImageProvider, priority: int = 0, **kw: object) -> ProviderSlot:
        config = kw.pop("breaker_config", BreakerConfig(window="count", window_size=6,
                                                        min_calls=3, failure_rate=0.5))
        assert isinstance(config, BreakerConfig)
        return ProviderSlot(
            provider=provider,
            breaker=CircuitBreaker(provider.name, config, clock),
            gate=CooldownGate(clock),
            retry=kw.pop("retry", RetryPolicy(max_attempts=3, base_s=1.0, max_s=4.0)),  # type: ignore[arg-type]
            priority=priority,
            **kw,  # type: ignore[arg-type]
        )

    return make


@pytest.fixture
def make_ctx(clock: FakeClock, hub: EventHub) -> Callable[..., JobContext]:
    def make(deadline_s: float = 600.0, **kw: object) -> JobContext:
        return JobContext(job_id=1, hub=hub, metrics=Metrics(), clock=clock,
                          rng=random.Random(1), cancel=CancelToken(),
                          deadline=clock.monotonic() + deadline_s, **kw)  # type: ignore[arg-type]

    return make
