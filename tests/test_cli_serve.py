"""``imagedesk serve`` as users run it: a subprocess on its own profile, the real
local provider on the built-in tiny model, the official ``openai`` package as client;
Ctrl+C stops it cleanly."""

from __future__ import annotations

import base64
import io
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import openai
import pytest
from PIL import Image

from tests.test_cli import CLI, cli_env

TOKEN = "serve-test-token-0123456789"


def start_serve(home: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([*CLI, "serve", "--port", "0", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env=cli_env(home, IMAGEDESK_API_TOKEN=TOKEN))
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "serving the ImageDesk API on " in line:
            return process, line.split(" on ", 1)[1].split()[0]
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"serve did not start: {process.communicate()}")


@pytest.mark.slow
def test_the_openai_package_generates_through_serve_on_the_local_model(tmp_path: Path) -> None:
    process, url = start_serve(tmp_path)
    try:
        with openai.OpenAI(base_url=url + "/v1", api_key=TOKEN, max_retries=0,
                           timeout=180) as api:
            reply = api.images.generate(prompt="a small red house", size="64x64",
                                        model="local")
        assert reply.data and reply.data[0].b64_json
        assert Image.open(io.BytesIO(base64.b64decode(reply.data[0].b64_json))).size == (64, 64)
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0 and "the API stopped" in err
    with sqlite3.connect(tmp_path / "data" / "imagedesk.sqlite3") as db:
        rows = db.execute("SELECT state, provider FROM jobs").fetchall()
    assert rows == [("succeeded", "local")]


def test_serve_refuses_a_port_in_use_with_one_line(tmp_path: Path) -> None:
    first, url = start_serve(tmp_path / "a")
    port = url.rsplit(":", 1)[1]
    try:
        second = subprocess.run([*CLI, "serve", "--port", port], capture_output=True,
                                text=True, env=cli_env(tmp_path / "b",
                                                       IMAGEDESK_API_TOKEN=TOKEN), timeout=120)
        assert second.returncode == 5 and f"cannot listen on 127.0.0.1:{port}" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 0
