"""Samplers by their Automatic1111 names: each maps to its diffusers scheduler on the
real tiny model, changes the picture, and is written back under the same name."""

from __future__ import annotations

import pytest

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.grid import GridAxis, grid_cells
from desktop_app.domain.request import GenerationRequest
from desktop_app.domain.samplers import SAMPLERS, sampler_named
from desktop_app.engine.saving import sampler_name
from desktop_app.providers.base import CancelToken
from desktop_app.providers.fitting import fit_request
from desktop_app.providers.local_diffusion import LocalDiffusionProvider
from tests.providers.local_diffusion.support import Recorder, request


def test_a_sampler_is_named_as_a1111_names_it_and_a_typo_lists_the_choices() -> None:
    assert sampler_named("dpm++  2m karras") == "DPM++ 2M Karras"
    assert GenerationRequest("x", sampler="euler A").sampler == "Euler a"
    with pytest.raises(InvalidRequest, match="Unknown sampler 'Eulr'.*Euler a"):
        GenerationRequest("x", sampler="Eulr")
    with pytest.raises(InvalidRequest, match="PLMS sampler needs at least 4 steps"):
        GenerationRequest("x", sampler="PLMS", steps=3)
    job = GenerationRequest("x", sampler="DDIM")
    assert GenerationRequest.from_dict(job.to_dict()) == job
    assert "sampler" not in GenerationRequest("x").to_dict()  # older readers still read it
    cells = grid_cells(GenerationRequest("x", seed=1), [GridAxis.parse("sampler=Euler,DDIM")])
    assert [c.request.sampler for c in cells] == ["Euler", "DDIM"]


def test_a_provider_without_samplers_ignores_the_choice_and_says_so() -> None:
    from desktop_app.providers.base import Capabilities

    fit = fit_request(GenerationRequest("x", sampler="Euler a"), Capabilities(),
                      allow_adaptation=False)
    assert fit.fits and "sampler Euler a not supported: ignored" in fit.adaptations


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_each_sampler_runs_on_the_tiny_model_and_is_recorded_by_its_name(
        tiny_provider: LocalDiffusionProvider) -> None:
    default = await tiny_provider.generate(request(steps=4), Recorder(), CancelToken())
    made = {}
    for name in SAMPLERS:
        [image] = await tiny_provider.generate(request(steps=4, sampler=name), Recorder(),
                                               CancelToken())
        assert sampler_name(dict(image.details)) == name  # what the infotext says
        made[name] = image.data
    assert made["Euler a"] != default[0].data
    assert made["DPM++ 2M Karras"] != made["DPM++ 2M"]  # Karras sigmas are really used


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_clip_skip_2_changes_the_picture_and_is_recorded_as_a1111_writes_it(
        tiny_provider: LocalDiffusionProvider) -> None:
    from desktop_app.domain.images import GeneratedImage
    from desktop_app.engine.saving import ImageSaver

    def infotext(image: GeneratedImage, request: GenerationRequest) -> str:
        from desktop_app.domain.job import Job
        from desktop_app.engine.failover import JobOutcome

        outcome = JobOutcome((image,), (), "local", request)
        saver = ImageSaver.__new__(ImageSaver)
        return saver.parameters(Job(1, request), outcome, image)

    plain_request, skipped_request = request(steps=4), request(steps=4, clip_skip=2)
    [plain] = await tiny_provider.generate(plain_request, Recorder(), CancelToken())
    [skipped] = await tiny_provider.generate(skipped_request, Recorder(), CancelToken())
    assert plain.data != skipped.data
    assert "Clip skip" not in infotext(plain, plain_request)  # A1111 leaves out 1
    assert "Clip skip: 2" in infotext(skipped, skipped_request)
    with pytest.raises(InvalidRequest, match="Clip skip must be from 1"):
        request(clip_skip=13)
