"""What the CLI shows of jobs that wait: a job held after a paid call a stop
interrupted, a quarantined row, and a job waiting for a rate limit."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fake_openai import FakeOpenAI
from tests.test_cli import run

KEY = "sk-test-" + "h" * 32


def db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "data" / "imagedesk.sqlite3")


def add(home: Path, prompt: str) -> int:
    result = run(home, "queue", "add", prompt, "--json")
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout)["id"])


def test_a_job_held_after_an_interrupted_paid_call_says_how_to_run_it_again(
        tmp_path: Path) -> None:
    job = add(tmp_path, "a paid fox")
    with db(tmp_path) as conn:  # as a crash during the OpenAI call leaves it
        conn.execute("UPDATE jobs SET state = 'running', started_at = ?, paid_call = 'openai' "
                     "WHERE id = ?", (time.time(), job))
    recovered = run(tmp_path, "queue", "run")  # the next run recovers, holding it
    assert recovered.returncode == 0, recovered.stderr

    listed = run(tmp_path, "queue", "list")
    assert listed.returncode == 0, listed.stderr
    [note] = [line for line in listed.stdout.splitlines() if line.startswith(f"job {job} ")]
    assert note.startswith(f"job {job} held: ImageDesk stopped during a paid call to openai")
    assert note.endswith(f"To run it again: `imagedesk queue retry {job}`.")
    [row] = json.loads(run(tmp_path, "queue", "list", "--json").stdout)
    assert (row["state"], row["error_class"]) == ("failed", "InterruptedPaidCall")
    assert row["waiting_for_you"] == note.removeprefix(f"job {job} ")

    retried = run(tmp_path, "queue", "retry", str(job))  # what the note says to do
    assert retried.returncode == 0 and f"job {job}: queued" in retried.stdout
    after = run(tmp_path, "queue", "list")
    assert "held:" not in after.stdout


def test_a_quarantined_job_shows_why(tmp_path: Path) -> None:
    good, bad = add(tmp_path, "a good fox"), add(tmp_path, "a damaged fox")
    with db(tmp_path) as conn:
        conn.execute("UPDATE jobs SET request = '{not json' WHERE id = ?", (bad,))
    listed = run(tmp_path, "queue", "list")
    assert listed.returncode == 0, listed.stderr
    [note] = [line for line in listed.stdout.splitlines() if line.startswith("job ")]
    assert note.startswith(f"job {bad} quarantined: ")
    rows = {r["id"]: r for r in json.loads(run(tmp_path, "queue", "list", "--json").stdout)}
    assert rows[good]["waiting_for_you"] is None and rows[good]["state"] == "queued"
    assert rows[bad]["state"] == "failed" and rows[bad]["waiting_for_you"].startswith(
        "quarantined: ")


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as fake:
        yield fake


def test_generate_says_when_its_job_waits_for_the_rate_limit(
        tmp_path: Path, server: FakeOpenAI) -> None:
    env = {"OPENAI_API_KEY": KEY, "IMAGEDESK_OPENAI__BASE_URL": server.base_url,
           "IMAGEDESK_OPENAI__RATE_LIMITS": json.dumps([{"limit": 1, "period_s": 8}])}
    args = ("generate", "a lighthouse", "--provider", "openai", "--size", "1024x1024")
    first = run(tmp_path, *args, env=env)
    assert first.returncode == 0, first.stderr
    assert "waiting for" not in first.stderr
    second = run(tmp_path, *args, env=env)  # the same minute: the one slot is taken
    assert second.returncode == 0, second.stderr
    waits = [line for line in second.stderr.splitlines() if "rate limit" in line]
    assert len(waits) == 1 and waits[0].startswith("waiting for openai's rate limit, ")
    assert len(server.image_requests()) == 2
