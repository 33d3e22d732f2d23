"""Runs the real engine over a profile's queue until it is empty; the kill test
SIGKILLs it at random moments. The provider is scripted and quick, so kills land
in every phase: routing, generating, writing files, committing."""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

from desktop_app.engine.engine import Engine
from desktop_app.resilience.retry import RetryPolicy
from tests.fakes.scripted_engine import engine_in, slot_for
from tests.fakes.scripted_provider import ScriptedProvider


def build(home: Path) -> Engine:
    provider = ScriptedProvider("local", script=["slow:0.02"] * 10_000)
    return engine_in(home, [slot_for(provider, retry=RetryPolicy(), concurrency=2)],
                     rng=random.Random())


async def main(home: Path) -> None:
    engine = build(home)
    print("ready", flush=True)
    await engine.run_until_idle()
    await engine.close()
    print("idle", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
