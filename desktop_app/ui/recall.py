"""Parameters recalled from an image file (ours or another tool's A1111 ``parameters``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from desktop_app.store.files import read_image_metadata


def parameters_from_png(path: Path) -> dict[str, Any] | None:
    """The prompt editor's fields from the file's metadata, or None when it has none."""
    meta = read_image_metadata(path)
    if meta is None or not meta.is_generated:
        return None
    params: dict[str, Any] = {"prompt": meta.prompt, "negative_prompt": meta.negative_prompt}
    size = meta.fields.get("Size", "")
    width, _, height = size.lower().partition("x")
    if width.strip().isdigit() and height.strip().isdigit():
        params["width"], params["height"] = int(width), int(height)
    else:
        params["width"], params["height"] = meta.width, meta.height
    if meta.steps is not None:
        params["steps"] = meta.steps
    if meta.cfg_scale is not None:
        params["guidance"] = meta.cfg_scale
    if meta.seed is not None:
        params["seed"] = meta.seed
    params["sampler"] = meta.fields.get("Sampler")
    params["model"] = meta.fields.get("Model") or None
    params["model_hash"] = meta.fields.get("Model hash") or None
    skip = meta.fields.get("Clip skip", "").strip()
    params["clip_skip"] = int(skip) if skip.isdigit() and 1 <= int(skip) <= 12 else None
    return params
