"""The issue's check end to end: the official ``openai`` package asks ImageDesk's API;
the local model is missing, so the real OpenAI provider serves it from the fake
OpenAI server (real HTTP), and the job's attempts say why."""

from __future__ import annotations

from pathlib import Path

import openai

from desktop_app.api.server import ApiServer
from desktop_app.config import default_policy
from tests.api.support import TOKEN
from tests.fakes.fake_openai import FakeOpenAI
from tests.settings_effects import opened


async def test_with_the_local_model_missing_the_real_cloud_provider_serves(
        tmp_path: Path) -> None:
    with FakeOpenAI() as cloud:
        # local first even on this CPU-only machine, then its model is not there
        async with opened(tmp_path, {"local.model": str(tmp_path / "no-such-model"),
                                     "routing.cpu_after_cloud": "false"},
                          base_url=cloud.base_url) as ctx:
            await ctx.engine.start()
            server = ApiServer(ctx.engine, TOKEN, port=0,
                               default_policy=lambda: default_policy(ctx.settings))
            await server.start()
            try:
                async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=TOKEN,
                                              max_retries=0, timeout=120) as api:
                    reply = await api.images.generate(prompt="a harbour", size="1024x1024")
            finally:
                await server.stop()
            assert reply.data and reply.data[0].b64_json
            [job] = await ctx.engine.jobs()
            assert job.provider == "openai" and job.request.origin == "api"
            assert job.fallback_reason is not None and job.fallback_reason.startswith("local")
            assert "no-such-model" not in str(reply)  # no path in what the client sees
