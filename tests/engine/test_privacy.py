"""A private job's image stays private when it becomes the source of another job."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from desktop_app.domain.errors import OutOfMemory
from desktop_app.domain.image_work import ImageToImage, RequestKind
from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest, RoutingPolicy
from desktop_app.providers.base import ProviderKind
from desktop_app.store.input_images import InputImages
from tests.fakes.scripted_engine import scripted_engine
from tests.fakes.scripted_provider import ScriptedProvider


async def test_using_a_private_jobs_image_as_a_source_keeps_the_new_job_private(
        tmp_path: Path) -> None:
    local = ScriptedProvider("local")
    local.caps = dataclasses.replace(local.caps, kinds=frozenset(RequestKind))
    cloud = ScriptedProvider("openai", ProviderKind.CLOUD)
    engine = scripted_engine(tmp_path, local, cloud, inputs=InputImages(tmp_path / "inputs"))
    try:
        first = await engine.submit(GenerationRequest(
            "my family", width=64, height=64, seed=1, policy=RoutingPolicy(private=True)))
        await engine.run_until_idle()
        done = await engine.job(first.id)
        assert done is not None and done.state is JobState.SUCCEEDED
        [made] = await engine.images_of(done)
        assert made.provenance["private"] is True and made.provenance["left_machine"] is False
        source = await engine.use_as_source(made.id)
        local.script = [OutOfMemory("CUDA out of memory")]
        second = await engine.submit(GenerationRequest(
            "warmer", width=64, height=64, seed=1, work=ImageToImage(source, 0.4)))
        assert second.request.policy.private  # marked when queued, kept in the queue row
        await engine.run_until_idle()
        failed = await engine.job(second.id)
        assert failed is not None and failed.state is JobState.FAILED
        assert cloud.calls == []
    finally:
        await engine.close()
