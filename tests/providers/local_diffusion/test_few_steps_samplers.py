"""A scheduler that cannot run a job's steps (PLMS, diffusers' PNDM, below 4) is a
typed, permanent InvalidRequest saying what to change — not a worker failure
(Transient, retried for nothing) with NumPy's broadcasting error as its message."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.image_work import ImageToImage
from desktop_app.providers.base import CancelToken
from desktop_app.providers.local_diffusion import LocalDiffusionConfig, LocalDiffusionProvider
from desktop_app.providers.local_diffusion.step_rules import too_few_steps
from tests.providers.local_diffusion.image_inputs import gradient_png, store
from tests.providers.local_diffusion.support import Recorder, request

ON_THE_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")  # tiny_provider's loop


@ON_THE_MODULE_LOOP
async def test_plms_from_settings_with_too_few_steps_is_refused_before_a_worker_starts(
        tmp_path: Path) -> None:
    provider = LocalDiffusionProvider(LocalDiffusionConfig(data_dir=tmp_path,
                                                           scheduler="pndm"))
    with pytest.raises(InvalidRequest) as caught:
        await provider.generate(request(steps=3), Recorder(), CancelToken())
    assert caught.value.message == (
        "The PLMS sampler (the sampler chosen in Settings → Local) needs at least 4 steps, "
        "and this job asks for 3: use 4 or more steps, or another sampler.")
    assert caught.value.field == "steps"
    assert provider.spawn_count == 0  # nothing started for a job that cannot run
    await provider.close()


def test_four_steps_and_other_samplers_pass() -> None:
    assert too_few_steps("pndm", 4) is None
    assert too_few_steps("euler", 1) is None
    assert too_few_steps("default", 1) is None


@pytest.mark.slow
@ON_THE_MODULE_LOOP
async def test_plms_on_an_image_asking_too_few_steps_is_invalid_in_the_worker(
        local_data_dir: Path) -> None:
    provider = LocalDiffusionProvider(LocalDiffusionConfig(
        data_dir=local_data_dir, scheduler="pndm", torch_threads=2))
    source = store(local_data_dir, gradient_png(64, 64))
    try:
        # 2 steps at 0.6: the pipeline would be set up for 2 steps (and run 1)
        with pytest.raises(InvalidRequest) as caught:
            await provider.generate(request(steps=2, work=ImageToImage(source, 0.6)),
                                    Recorder(), CancelToken())
        assert caught.value.message == (
            "The PLMS sampler needs at least 4 steps, and this job asks for 2: use 4 or "
            "more steps, or another sampler.")
        # the worker is fine, and the rule is the pipeline's count: 2 steps at 0.3 are
        # asked as 4 (so that one runs), which PLMS can do
        [image] = await provider.generate(request(steps=2, work=ImageToImage(source, 0.3)),
                                          Recorder(), CancelToken())
        assert image.details["scheduler"] == "pndm"
    finally:
        await provider.close()
