from __future__ import annotations

from collections.abc import Callable

import pytest

from desktop_app.resilience.breaker import BreakerConfig, CircuitBreaker
from desktop_app.resilience.clock import FakeClock
from tests.resilience.recorder import Recorder


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_breaker(
    clock: FakeClock, recorder: Recorder
) -> Callable[..., CircuitBreaker]:
    def make(**overrides: object) -> CircuitBreaker:
        config = BreakerConfig(**overrides)  # type: ignore[arg-type]
        return CircuitBreaker("local", config, clock, on_transition=recorder)

    return make
