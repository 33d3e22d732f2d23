"""Comparison grids through the real engine: all cells queued at once, each routed on
its own, the labelled grid saved to the gallery with a note where a cell failed."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from desktop_app.domain.errors import InvalidRequest, OutOfMemory
from desktop_app.domain.grid import GridAxis, grid_cells
from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.events import Event, JobAdded, JobStarted
from desktop_app.engine.grids import make_grid
from desktop_app.providers.base import ProviderKind
from desktop_app.store.a1111 import parse_a1111_parameters
from tests.fakes.scripted_engine import scripted_engine
from tests.fakes.scripted_provider import ScriptedProvider

BASE = GenerationRequest("a red fox in snow", width=64, height=64, seed=1, steps=10)


def test_a_caption_says_who_made_a_cell_in_how_long_for_how_much() -> None:
    from desktop_app.domain.job import Attempt, Job, Outcome
    from desktop_app.engine.grids import caption

    job = Job(id=1, request=BASE, state=JobState.SUCCEEDED, provider="openai",
              attempts=[Attempt("local", Outcome.FAILED, duration_s=2.0),
                        Attempt("openai", Outcome.SUCCEEDED, duration_s=16.4, cost_usd=0.04)])
    assert caption(job) == "openai · 18 s · $0.04"


def test_cells_vary_x_fastest_and_prompt_search_and_replace_works() -> None:
    axes = [GridAxis.parse("steps=10,20"), GridAxis.parse("prompt=fox,cat,owl")]
    cells = grid_cells(BASE, axes)
    assert [(c.coords, c.request.steps, c.request.prompt) for c in cells] == [
        ((0, 0), 10, "a red fox in snow"), ((1, 0), 20, "a red fox in snow"),
        ((0, 1), 10, "a red cat in snow"), ((1, 1), 20, "a red cat in snow"),
        ((0, 2), 10, "a red owl in snow"), ((1, 2), 20, "a red owl in snow")]


@pytest.mark.parametrize(("axes", "message"), [
    (["steps=10,abc"], "Steps value 'abc' is not a number"),
    (["steps=10,0"], "Steps = 0"),
    (["prompt=wolf,cat"], "'wolf' is not in the prompt"),
    (["colour=red"], "one of cfg, guidance, model"),
    (["seed=" + ",".join(map(str, range(11))), "steps=" + ",".join(map(str, range(1, 11)))],
     "110 cells; at most 100"),
])
def test_a_grid_that_cannot_be_made_says_which_axis_and_value(axes: list[str],
                                                             message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        grid_cells(BASE, [GridAxis.parse(text) for text in axes])


async def test_every_cell_is_queued_before_any_runs_and_the_grid_notes_a_failed_cell(
        tmp_path: Path) -> None:
    local = ScriptedProvider("local", script=["ok", OutOfMemory("CUDA out of memory")])
    cloud = ScriptedProvider("openai", ProviderKind.CLOUD,
                             script=[OutOfMemory("no"), "ok", "ok"])
    engine = scripted_engine(tmp_path, local, cloud)
    seen: list[Event] = []
    engine.hub.subscribe(seen.append)
    try:
        await engine.start()
        outcome = await make_grid(engine, BASE, [GridAxis.parse("steps=10,20"),
                                                 GridAxis.parse("seed=1,2")])
    finally:
        await engine.close()
    order = [type(e) for e in seen if isinstance(e, JobAdded | JobStarted)]
    assert order[:4] == [JobAdded] * 4  # one transaction, then they run
    states = [job.state for job in outcome.jobs]
    assert states.count(JobState.SUCCEEDED) == 3 and outcome.failed == 1
    grid = outcome.image
    assert grid.kind == "grid" and grid.path.is_file()
    with Image.open(grid.path) as image:
        params = parse_a1111_parameters(image.text["parameters"])  # type: ignore[attr-defined]
        assert params["X Type"] == "Steps" and params["X Values"] == "10, 20"
        assert params["Y Type"] == "Seed"
        assert image.width > 2 * 64 and image.height > 2 * 64  # two columns, titles beside
        assert grid.provenance["grid"]["failed"] == [
            job.id for job in outcome.jobs if job.state is JobState.FAILED]
    # the failed cell is a grey tile (text over part of it)
    pixels = Image.open(io.BytesIO(grid.path.read_bytes())).convert("RGB")
    colours = dict((colour, count) for count, colour in pixels.getcolors(1 << 20) or [])
    assert colours.get((200, 200, 200), 0) > 64 * 64 // 2


async def test_a_bad_cell_queues_none_of_them(tmp_path: Path) -> None:
    engine = scripted_engine(tmp_path, ScriptedProvider("local"), blocked_terms=["owl"])
    try:
        with pytest.raises(InvalidRequest, match='blocked term "owl"'):
            await make_grid(engine, BASE, [GridAxis.parse("prompt=fox,cat,owl")])
        assert await engine.jobs() == []
    finally:
        await engine.close()


async def test_compare_providers_sends_the_prompt_to_each_and_captions_time_and_cost(
        tmp_path: Path) -> None:
    local = ScriptedProvider("local")
    cloud = ScriptedProvider("openai", ProviderKind.CLOUD, cost_per_image=0.04)
    engine = scripted_engine(tmp_path, local, cloud)
    try:
        await engine.start()
        outcome = await make_grid(engine, BASE, [GridAxis.parse("provider=local,openai")])
    finally:
        await engine.close()
    assert [job.provider for job in outcome.jobs] == ["local", "openai"]
    assert len(local.calls) == 1 and len(cloud.calls) == 1  # each served its own cell
    assert [job.cost_usd for job in outcome.jobs] == [0.0, pytest.approx(0.04)]
    with Image.open(outcome.image.path) as image:
        params = parse_a1111_parameters(image.text["parameters"])  # type: ignore[attr-defined]
    assert params["X Type"] == "Provider" and params["X Values"] == "local, openai"
