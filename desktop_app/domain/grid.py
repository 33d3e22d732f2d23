"""Comparison grids (Automatic1111's X/Y/Z plot): one request varied along up to three
axes, one job per cell.

An axis is ``field=v1,v2,...``: ``seed``, ``steps``, ``guidance`` (or ``cfg``),
``sampler`` (its Automatic1111 name), ``model``, ``provider`` (each cell pinned to
one provider: compare local with the cloud), ``style`` (the cell's style; ``none``
for no style) or ``prompt``: the prompt search-and-replace of A1111 ("Prompt S/R"),
where the first value is a word of the prompt and each value replaces it in turn
(the first cell keeps the prompt as is).
"""

from __future__ import annotations

import dataclasses
import itertools

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.request import GenerationRequest

MAX_AXES = 3
MAX_VALUES = 32
MAX_CELLS = 100
FIELDS = {"seed": "Seed", "steps": "Steps", "guidance": "CFG Scale", "cfg": "CFG Scale",
          "model": "Model", "style": "Style", "prompt": "Prompt S/R", "provider": "Provider",
          "sampler": "Sampler"}


@dataclasses.dataclass(frozen=True)
class GridAxis:
    field: str
    values: tuple[str, ...]

    @property
    def title(self) -> str:
        return FIELDS[self.field]

    @classmethod
    def parse(cls, text: str, which: str = "axis") -> GridAxis:
        """``steps=10,20,30`` (values split at commas; spaces around them are dropped)."""
        name, sep, rest = text.partition("=")
        field = name.strip().lower()
        if not sep or field not in FIELDS:
            raise InvalidRequest(
                f"The {which} must look like steps=10,20,30, with one of "
                f"{', '.join(sorted(FIELDS))} before '=' (got {text[:40]!r}).", field="grid")
        values = tuple(v.strip() for v in rest.split(","))
        if not values or any(not v for v in values):
            raise InvalidRequest(f"The {which} needs values separated by commas, none empty "
                                 f"(got {text[:40]!r}).", field="grid")
        if len(values) > MAX_VALUES:
            raise InvalidRequest(f"The {which} has {len(values)} values; at most "
                                 f"{MAX_VALUES}.", field="grid")
        return cls("guidance" if field == "cfg" else field, values)


@dataclasses.dataclass(frozen=True)
class GridCell:
    coords: tuple[int, ...]  # index along each axis (x, y, z)
    request: GenerationRequest


def grid_cells(base: GenerationRequest, axes: list[GridAxis]) -> list[GridCell]:
    """One request per cell, x varying fastest; ``InvalidRequest`` names the axis and
    value that makes an impossible request."""
    if not 1 <= len(axes) <= MAX_AXES:
        raise InvalidRequest(f"A grid has 1 to {MAX_AXES} axes.", field="grid")
    count = 1
    for axis in axes:
        count *= len(axis.values)
    if count > MAX_CELLS:
        raise InvalidRequest(f"The grid would have {count} cells; at most {MAX_CELLS}. Use "
                             "fewer values.", field="grid")
    if base.seed is None and not any(axis.field == "seed" for axis in axes):
        raise InvalidRequest("A grid compares like with like: give a --seed (or vary the "
                             "seed on an axis).", field="seed")
    cells = []
    for coords in itertools.product(*(range(len(a.values)) for a in reversed(axes))):
        coords = tuple(reversed(coords))
        request = base
        for axis, index in zip(axes, coords, strict=True):
            request = _vary(request, axis, index)
        cells.append(GridCell(coords, request))
    return cells


def _vary(request: GenerationRequest, axis: GridAxis, index: int) -> GenerationRequest:
    value = axis.values[index]
    try:
        if axis.field == "seed":
            return request.replace(seed=int(value))
        if axis.field == "steps":
            return request.replace(steps=int(value))
        if axis.field == "guidance":
            return request.replace(guidance=float(value))
        if axis.field == "model":
            return request.replace(model=value)
        if axis.field == "sampler":
            return request.replace(sampler=value)
        if axis.field == "provider":
            return request.replace(policy=dataclasses.replace(request.policy, provider=value))
        if axis.field == "style":
            styles = () if value.lower() == "none" else (value,)
            return request.replace(styles=(*request.styles, *styles))
        search = axis.values[0]
        if search not in request.prompt:
            raise InvalidRequest(f"Prompt S/R: {search!r} is not in the prompt; the first "
                                 "value must be a word of the prompt.", field="grid")
        return request.replace(prompt=request.prompt.replace(search, value))
    except ValueError:
        raise InvalidRequest(f"{axis.title} value {value!r} is not a number.",
                             field="grid") from None
    except InvalidRequest as error:
        if error.field == "grid":
            raise
        raise InvalidRequest(f"{axis.title} = {value}: {error.message}", field="grid") from None
