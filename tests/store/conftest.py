from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_app.domain.request import GenerationRequest
from desktop_app.store.database import open_database
from desktop_app.store.gallery import Gallery
from desktop_app.store.jobs import JobQueue


class FakeClock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self, now: float = 1_767_225_600.0) -> None:  # 2026-01-01 UTC
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float = 1.0) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "imagedesk.sqlite"


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    connection = open_database(db_path)
    yield connection
    connection.close()


@pytest.fixture
def queue(conn: sqlite3.Connection, clock: FakeClock) -> JobQueue:
    return JobQueue(conn, clock=clock)


@pytest.fixture
def gallery(conn: sqlite3.Connection, clock: FakeClock) -> Gallery:
    return Gallery(conn, clock=clock)


def request(prompt: str = "a lighthouse at dusk", **fields: object) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, **fields)  # type: ignore[arg-type]
