"""The real diffusers pipeline on the built-in tiny model, through the provider (CPU)."""

from __future__ import annotations

import asyncio
import io
import sys

import pytest
from PIL import Image

from desktop_app.domain.errors import Cancelled
from desktop_app.providers.base import CancelToken, HealthState, Phase, Progress
from desktop_app.providers.local_diffusion import BUILTIN_TINY_LABEL, LocalDiffusionProvider
from tests.providers.local_diffusion.support import Recorder, request, steps_seen

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


async def test_generates_pngs_of_the_requested_size_with_seeds_and_provenance(
        tiny_provider: LocalDiffusionProvider) -> None:
    images = await tiny_provider.generate(request(width=96, height=64, n=2, seed=41),
                                          Recorder(), CancelToken())
    assert [i.seed for i in images] == [41, 42]
    for image in images:
        decoded = Image.open(io.BytesIO(image.data))
        assert decoded.format == "PNG" and decoded.size == (96, 64)
        assert (image.width, image.height, image.format) == (96, 64, "png")
        assert image.provider == "local" and image.model == BUILTIN_TINY_LABEL
        assert image.details["device"].startswith("cpu") and image.details["dtype"] == "float32"
        assert image.details["steps"] == "4" and image.details["scheduler"] == "default"
        assert image.details["memory_options"] == "none"  # none asked for
        assert len(image.details["model_hash"]) == 10
    assert images[0].data != images[1].data


async def test_progress_reports_every_step_in_order_with_previews(
        tiny_provider: LocalDiffusionProvider) -> None:
    progress = Recorder()
    await tiny_provider.generate(request(steps=6, n=2), progress, CancelToken())
    assert steps_seen(progress.events) == list(range(1, 13))
    assert {e.total for e in progress.events if e.phase is Phase.GENERATING} == {12}
    assert progress.events[0].phase is Phase.STARTING
    assert progress.events[-1].phase is Phase.FINISHING
    previews = [e.preview_png for e in progress.events if e.preview_png]
    assert previews, "previews every 2 steps were asked for"
    assert Image.open(io.BytesIO(previews[0])).size == (8, 8)  # latent size of 64 px


async def test_same_seed_gives_identical_bytes_and_another_seed_differs(
        tiny_provider: LocalDiffusionProvider) -> None:
    first = await tiny_provider.generate(request(seed=1234), Recorder(), CancelToken())
    again = await tiny_provider.generate(request(seed=1234), Recorder(), CancelToken())
    other = await tiny_provider.generate(request(seed=1235), Recorder(), CancelToken())
    assert first[0].data == again[0].data
    assert first[0].data != other[0].data


async def test_a_missing_seed_is_chosen_and_recorded(
        tiny_provider: LocalDiffusionProvider) -> None:
    images = await tiny_provider.generate(request(seed=None), Recorder(), CancelToken())
    assert images[0].seed is not None
    replay = await tiny_provider.generate(request(seed=images[0].seed), Recorder(), CancelToken())
    assert replay[0].data == images[0].data


async def test_cancel_mid_run_stops_within_a_step_and_the_worker_stays_usable(
        tiny_provider: LocalDiffusionProvider) -> None:
    await tiny_provider.generate(request(), Recorder(), CancelToken())  # warm
    pid, spawns = tiny_provider.worker_pid, tiny_provider.spawn_count
    cancel = CancelToken()
    seen: list[int] = []

    def on_progress(event: Progress) -> None:
        if event.phase is Phase.GENERATING:
            seen.append(event.step)
            if event.step == 3:
                cancel.cancel("stop, please")

    with pytest.raises(Cancelled, match="stop, please"):
        await tiny_provider.generate(request(width=256, height=256, steps=150), on_progress,
                                     cancel)
    # counted in steps, not seconds: at most a step or two in flight when the cancel landed
    assert max(seen) <= 5
    images = await tiny_provider.generate(request(), Recorder(), CancelToken())
    assert len(images) == 1
    assert (tiny_provider.worker_pid, tiny_provider.spawn_count) == (pid, spawns)


async def test_health_reports_the_device_and_loaded_model_once_running(
        tiny_provider: LocalDiffusionProvider) -> None:
    await tiny_provider.generate(request(), Recorder(), CancelToken())
    health = await tiny_provider.health()
    assert health.state is HealthState.READY
    assert health.details["device"] == "cpu" and health.details["model_loaded"] == "yes"
    assert "loaded" in health.message
    latency = tiny_provider.capabilities().estimated_latency_s
    assert 0 < latency < 30  # learned from the jobs above, not the 30 s prior


async def test_the_test_process_never_imports_torch(
        tiny_provider: LocalDiffusionProvider) -> None:
    await tiny_provider.generate(request(), Recorder(), CancelToken())
    assert "torch" not in sys.modules
    assert "diffusers" not in sys.modules


async def test_asyncio_cancellation_of_a_job_leaves_the_worker_usable(
        tiny_provider: LocalDiffusionProvider) -> None:
    started = asyncio.Event()

    def on_progress(event: Progress) -> None:
        if event.phase is Phase.GENERATING:
            started.set()

    task = asyncio.create_task(tiny_provider.generate(
        request(width=256, height=256, steps=150), on_progress, CancelToken()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    progress = Recorder()
    images = await tiny_provider.generate(request(seed=5), progress, CancelToken())
    assert len(images) == 1 and images[0].seed == 5
    assert steps_seen(progress.events) == [1, 2, 3, 4]  # nothing leaked from the old job
