"""Jobs another process adds (``imagedesk queue add`` beside a running window)
appear in this engine's queue and run within a second or two (issue 11.12)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from desktop_app.domain.job import JobState
from desktop_app.engine.engine import Engine
from desktop_app.engine.events import Event, JobFinished, QueueChanged
from desktop_app.store.profile_lock import LOCK_FILE, ProfileLock
from tests.fakes.scripted_engine import engine_in, slot_for
from tests.fakes.scripted_provider import ScriptedProvider
from tests.test_cli import CLI, cli_env

SEEN_WITHIN_S = 5.0  # the watch looks every 0.75 s; generous for a loaded machine


def _engine(home: Path) -> Engine:
    """The window's engine on the CLI's profile: its database and its lock."""
    data = home / "data"
    data.mkdir(parents=True, exist_ok=True)
    return engine_in(home, [slot_for(ScriptedProvider("local"), concurrency=1)],
                     db_path=data / "imagedesk.sqlite3", lock=ProfileLock(data / LOCK_FILE),
                     rng=random.Random(1))


@pytest.mark.slow
async def test_a_job_added_by_the_cli_appears_and_runs_in_a_running_engine(
        tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    events: list[Event] = []
    engine.hub.subscribe(events.append)
    await engine.start()
    try:
        await asyncio.sleep(1.0)  # idle: the runner waits for work
        cli = await asyncio.create_subprocess_exec(
            *CLI, "queue", "add", "a cat from the command line", "--json",
            env=cli_env(tmp_path), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(cli.communicate(), 240)
        assert cli.returncode == 0, err.decode()

        async def finished() -> JobFinished:
            while True:
                done = [e for e in events if isinstance(e, JobFinished)]
                if done:
                    return done[0]
                await asyncio.sleep(0.05)

        event = await asyncio.wait_for(finished(), SEEN_WITHIN_S)
        assert event.state is JobState.SUCCEEDED
        assert any(isinstance(e, QueueChanged) for e in events)  # the view reloads too
        [job] = await engine.jobs()
        assert job.request.prompt == "a cat from the command line"
        assert job.state is JobState.SUCCEEDED and job.image_ids
    finally:
        await engine.close()
