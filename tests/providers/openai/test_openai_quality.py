"""Quality per job: the CLI's ``--quality`` reaches the server, and the price
recorded is the price table's for that quality and size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app.domain.request import Quality
from desktop_app.providers.openai_images import default_prices_path
from tests.fakes.fake_openai import FakeOpenAI, Fault, Reply
from tests.providers.openai.conftest import ProviderFactory
from tests.providers.openai.support import KEY, generate, request


def _table(model_name: str) -> dict[str, dict[str, float]]:
    table = json.loads(default_prices_path().read_text())
    entry = next(m for m in table["models"] if m["name"] == model_name)
    per_image: dict[str, dict[str, float]] = entry["per_image"]
    return per_image


@pytest.mark.parametrize("quality", list(Quality))
async def test_each_quality_is_sent_and_priced_from_the_table(
        server: FakeOpenAI, make_provider: ProviderFactory, quality: Quality) -> None:
    server.script([Reply(Fault.OK, usage=None)])  # no token usage: the table prices it
    [image] = await generate(make_provider(model="gpt-image-1"),
                             request(width=1536, height=1024, quality=quality))
    body = server.image_requests()[0].body
    assert body is not None and body["quality"] == quality.value
    assert image.cost_usd == pytest.approx(_table("gpt-image-1")["1536x1024"][quality.value])
    assert image.details["quality"] == quality.value


async def test_a_rule_sized_model_scales_the_quality_price_by_pixels(
        server: FakeOpenAI, make_provider: ProviderFactory) -> None:
    server.script([Reply(Fault.OK, usage=None)])
    [image] = await generate(make_provider(), request(width=2048, height=1024,
                                                      quality=Quality.LOW))
    assert image.cost_usd == pytest.approx(_table("gpt-image-2")["*"]["low"] * 2, rel=1e-6)


def _cli(home: Path, server: FakeOpenAI, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEDESK_", "OPENAI_"))}
    env.update(IMAGEDESK_HOME=str(home), OPENAI_API_KEY=KEY,
               IMAGEDESK_OPENAI__BASE_URL=server.base_url,
               IMAGEDESK_OPENAI__MODEL="gpt-image-1",
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    return subprocess.run([sys.executable, "-m", "desktop_app", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_cli_quality_reaches_the_server_and_sets_the_recorded_cost(
        tmp_path: Path, server: FakeOpenAI) -> None:
    server.default = Reply(Fault.OK, usage=None)
    result = _cli(tmp_path, server, "generate", "a lighthouse at dusk", "--provider", "openai",
                  "--size", "1024x1024", "--quality", "high", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["state"] == "succeeded" and out["provider"] == "openai"
    [body] = [r.body for r in server.image_requests()]
    assert body is not None and body["quality"] == "high"
    assert out["cost"] == pytest.approx(_table("gpt-image-1")["1024x1024"]["high"])
    assert KEY not in result.stdout + result.stderr


def test_cli_rejects_an_unknown_quality_before_anything_is_queued(
        tmp_path: Path, server: FakeOpenAI) -> None:
    result = _cli(tmp_path, server, "generate", "a cat", "--quality", "ultra")
    assert result.returncode != 0
    assert "invalid choice: 'ultra'" in result.stderr and "high" in result.stderr
    assert server.request_count == 0
