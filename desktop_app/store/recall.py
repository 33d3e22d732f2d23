"""What "reuse the settings of this image" restores of work on an existing image:
its kind, strength, mask blur and upscale.

For an image ImageDesk made, the request recorded in its provenance says it
exactly. For another tool's image (or one imported without our provenance) the
A1111 infotext says what it can: ``Denoising strength``, ``Mask blur``,
``Hires upscale`` (``store/a1111.py``). Text-to-image settings (prompt, size,
steps...) are recalled as before; this adds the part a text job does not have.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.image_work import Inpaint, Outpaint, RequestKind, Upscale
from desktop_app.domain.request import GenerationRequest
from desktop_app.store.a1111 import MetadataError
from desktop_app.store.gallery import ImageRecord
from desktop_app.store.image_metadata import ImageMetadata, metadata_from_texts

__all__ = ["RecalledWork", "recalled_request", "recalled_work", "work_from_metadata"]


@dataclasses.dataclass(frozen=True)
class RecalledWork:
    """The image-work settings an image was made with (None: not recorded)."""

    kind: RequestKind
    strength: float | None = None
    mask_blur: int | None = None
    scale: float | None = None


def recalled_request(record: ImageRecord) -> GenerationRequest | None:
    """The request a gallery image ImageDesk made ran as (None for another tool's)."""
    data = record.provenance.get("request")
    if not isinstance(data, Mapping):
        return None
    try:
        return GenerationRequest.from_dict(data)
    except InvalidRequest:
        return None


def recalled_work(record: ImageRecord) -> RecalledWork | None:
    """A gallery image's work settings; None for a text-to-image one."""
    provenance = record.provenance
    from_request = _from_request(provenance.get("request"))
    if from_request is not None:
        return from_request
    if provenance.get("kind") == RequestKind.TEXT_TO_IMAGE.value:
        return None
    parameters = provenance.get("parameters")
    if isinstance(parameters, str):  # imported: the infotext it carried
        try:
            meta = metadata_from_texts(record.format, record.width, record.height, parameters,
                                       None)
        except MetadataError:
            return None
        return work_from_metadata(meta)
    return None


def work_from_metadata(meta: ImageMetadata) -> RecalledWork | None:
    """A file's work settings: from our provenance when it has it, else from its
    A1111 fields. None for a text-to-image file."""
    if meta.provenance is not None:
        from_request = _from_request(meta.provenance.get("request"))
        if from_request is not None or "request" in meta.provenance:
            return from_request
    if meta.hires_upscale is not None:
        return RecalledWork(RequestKind.UPSCALE, meta.denoising_strength,
                            scale=meta.hires_upscale)
    if meta.mask_blur is not None:
        return RecalledWork(RequestKind.INPAINT, meta.denoising_strength, meta.mask_blur)
    if meta.denoising_strength is not None:
        return RecalledWork(RequestKind.IMAGE_TO_IMAGE, meta.denoising_strength)
    return None


def _from_request(data: Any) -> RecalledWork | None:
    if not isinstance(data, Mapping):
        return None
    try:
        request = GenerationRequest.from_dict(data)
    except InvalidRequest:
        return None
    work = request.work
    if work is None:
        return None
    return RecalledWork(
        kind=work.KIND, strength=work.strength,
        mask_blur=work.mask_blur if isinstance(work, Inpaint | Outpaint) else None,
        scale=work.scale if isinstance(work, Upscale) else None)
