"""Comparison grids through the engine: every cell queued in one transaction, each
cell routed and failed over on its own, and once all have finished a labelled grid
image saved to the gallery beside them (a failed cell is a grey tile saying why).

If the app stops before the cells finish, the cells stay in the queue and finish
later like any job; the grid image is drawn only by the run that waits for them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from desktop_app import __version__
from desktop_app.domain.grid import GridAxis, grid_cells
from desktop_app.domain.job import Job, JobState
from desktop_app.domain.request import GenerationRequest
from desktop_app.store.a1111 import a1111_parameters
from desktop_app.store.gallery import ImageRecord, NewImage
from desktop_app.store.grid_image import DrawnCell, draw_grid

if TYPE_CHECKING:
    from desktop_app.engine.engine import Engine


@dataclasses.dataclass(frozen=True)
class GridOutcome:
    jobs: tuple[Job, ...]  # the cells' finished jobs, x varying fastest
    image: ImageRecord  # the grid in the gallery

    @property
    def failed(self) -> int:
        return sum(job.state is not JobState.SUCCEEDED for job in self.jobs)


async def make_grid(engine: Engine, base: GenerationRequest, axes: list[GridAxis], *,
                    run: Callable[[int], Awaitable[None]] | None = None,
                    priority: int = 0) -> GridOutcome:
    """Queue the cells, wait for them (``run(job_id)`` runs one now, as the CLI does;
    without it the engine's runner serves them), then draw and save the grid."""
    cells = grid_cells(base, axes)
    jobs = await engine.submit_many([cell.request for cell in cells], priority)
    if run is not None:
        for job in jobs:
            await run(job.id)
    finished = list(await asyncio.gather(*(engine.wait_for(job.id) for job in jobs)))
    drawn = []
    for cell, job in zip(cells, finished, strict=True):
        images = await engine.images_of(job)
        data = await asyncio.to_thread(images[0].path.read_bytes) if images else None
        drawn.append(DrawnCell(cell.coords, data, job.error or job.state.value,
                               caption(job) if images else ""))
    png = await asyncio.to_thread(draw_grid, axes, drawn)
    record = await engine.add_made_image(png, f"grid_job{finished[0].id}",
                                         grid_parameters(base, axes),
                                         _new_image(base, axes, finished, png))
    return GridOutcome(tuple(finished), record)


def _new_image(base: GenerationRequest, axes: list[GridAxis], jobs: list[Job],
               png: bytes) -> NewImage:
    """The grid's gallery row (its path is set where the file lands)."""
    with Image.open(io.BytesIO(png)) as image:
        width, height = image.size
    provenance = {
        "app": "ImageDesk", "app_version": __version__, "kind": "grid",
        "grid": {"axes": [{"field": a.field, "values": list(a.values)} for a in axes],
                 "jobs": [job.id for job in jobs],
                 "failed": [job.id for job in jobs if job.state is not JobState.SUCCEEDED]},
        "request": base.to_dict(),
    }
    return NewImage(path=Path(), prompt=base.prompt, negative_prompt=base.negative_prompt,
                    width=width, height=height, seed=base.seed, steps=base.steps,
                    guidance=base.guidance, provider="grid", format="png",
                    provenance=provenance, kind="grid")


def caption(job: Job) -> str:
    """"openai · 18 s · $0.04": who made the cell, in how long, for how much."""
    seconds = sum(a.duration_s for a in job.attempts)
    price = "free" if job.cost_usd <= 0 else f"${job.cost_usd:.2f}"
    return f"{job.provider or '?'} · {seconds:.0f} s · {price}"


def grid_parameters(base: GenerationRequest, axes: list[GridAxis]) -> str:
    """The grid's infotext: the base request, and the axes as A1111 names them."""
    extra = {f"{'XYZ'[i]} Type": axis.title for i, axis in enumerate(axes)}
    extra.update({f"{'XYZ'[i]} Values": ", ".join(axis.values) for i, axis in enumerate(axes)})
    return a1111_parameters(prompt=base.prompt, negative_prompt=base.negative_prompt,
                            steps=base.steps, cfg_scale=base.guidance, seed=base.seed,
                            extra=extra)

