"""Waiting for an event in a test, instead of sleeping for a guessed time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0,
                     what: str = "the condition") -> None:
    """Return as soon as ``condition()`` holds; fail after ``timeout_s`` (a hang, not a
    measurement: the bound is generous so a loaded machine never trips it)."""
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(poll(), timeout_s)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {timeout_s} s") from None
