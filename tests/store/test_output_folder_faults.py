"""An output folder that is read-only or full fails the job with a reason that
says what to fix, without a traceback, and keeps the images already made (and
paid for) in the profile's "unsaved" folder (issue 12.9)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from PIL import Image

from tests.fakes.fake_openai import FakeOpenAI
from tests.store.mounts import fill, read_only, tiny_disk
from tests.test_cli import run

KEY = "sk-test-output-folder-0123456789ab"
EXIT_FAILED = 3


def _read_only(out: Path) -> AbstractContextManager[Path]:
    out.mkdir()
    return read_only(out)


class _FullDisk(AbstractContextManager[Path]):
    def __init__(self, out: Path) -> None:
        self._disk = tiny_disk(out, 64)

    def __enter__(self) -> Path:
        folder = self._disk.__enter__()
        fill(folder)
        return folder

    def __exit__(self, *exc: object) -> None:
        self._disk.__exit__(None, None, None)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as server:
        yield server


@pytest.mark.slow
@pytest.mark.parametrize(("broken", "why"), [(_read_only, "read-only disk"),
                                             (_FullDisk, "disk is full")])
def test_an_unusable_output_folder_fails_the_job_clearly_and_keeps_the_paid_images(
        tmp_path: Path, fake: FakeOpenAI, broken: Callable[[Path], AbstractContextManager[Path]],
        why: str) -> None:
    out = tmp_path / "out"
    env = {"OPENAI_API_KEY": KEY, "IMAGEDESK_OPENAI__BASE_URL": fake.base_url,
           "IMAGEDESK_OUTPUT__FOLDER": str(out)}
    home = tmp_path / "home"
    with broken(out):
        result = run(home, "generate", "a paid lighthouse", "--provider", "openai", "--json",
                     env=env)
    assert result.returncode == EXIT_FAILED, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    job = json.loads(result.stdout)
    assert job["state"] == "failed" and job["images"] == []
    assert f"Could not save the images in {out}" in job["error"] and why in job["error"]
    assert "Settings → Output" in job["error"]  # what to fix
    unsaved = home / "data" / "unsaved"
    assert str(unsaved) in job["error"]
    [kept] = list(unsaved.iterdir())
    with Image.open(kept) as image:  # the paid image, whole, with its prompt
        assert "a paid lighthouse" in image.text["parameters"]  # type: ignore[attr-defined]
    assert len(fake.image_requests()) == 1
