"""Jobs on an image through the Images *edits* endpoint: what it can honour, the
one place our mask convention becomes OpenAI's, what is uploaded, and how its
answer becomes the image the user asked for.

- Image to image: the source, no mask. The endpoint has no strength setting, so a
  strength is an adaptation the user must allow.
- Inpaint: the source and a mask. Ours is 8-bit grey, white = repaint
  (``domain/image_work.py``); OpenAI wants an RGBA PNG of the image's size where
  fully transparent = edit (``to_openai_mask``, the only conversion).
- Outpaint: the source on a canvas of the padded size, the new area transparent,
  and a mask over the new area: inpainting of the padding.
- Upscale: not offered. The endpoint repaints the whole picture at one of its own
  sizes; that is not an enlargement of the user's image.

Sizes: the endpoint makes only sizes its model accepts, so the provider asks for the
accepted size nearest the job's result size and resizes the answer to the size the
job asked for, so the gallery, the metadata and a later "use as source" see the
size the user chose. A same-shape resize is recorded as a note; a change of shape
(a stretch) is an adaptation needing consent. Inpaint and outpaint then put the
source's own pixels back wherever the mask keeps them, so what the user did not
mask is byte-for-byte the source, as with the local provider.
"""

from __future__ import annotations

import dataclasses
import io

from PIL import Image

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.images import GeneratedImage
from desktop_app.domain.request import (
    GenerationRequest,
    ImageToImage,
    Inpaint,
    Outpaint,
    OutputFormat,
)
from desktop_app.providers.base import WorkFit
from desktop_app.store.input_images import InputImages

from .models import ModelSpec

SAME_SHAPE_TOLERANCE = 0.02  # an aspect difference a resize absorbs (validate.py's too)
MAX_MASK_BYTES = 4 * 1024 * 1024  # "less than 4MB" (the SDK's docs of ``mask``)
CLOSE_ENOUGH = 0.005  # an aspect error not worth a size farther from the job's


@dataclasses.dataclass(frozen=True)
class EditPlan:
    """What the endpoint will be asked for: the API size, and what that changes."""

    api_size: tuple[int, int]
    fit: WorkFit

    @property
    def size_text(self) -> str:
        return f"{self.api_size[0]}x{self.api_size[1]}"


def plan_edit(request: GenerationRequest, spec: ModelSpec, model: str) -> EditPlan:
    """How ``model`` would serve this job on an image; ``fit.reason`` when it cannot."""
    work = request.work
    width, height = request.width, request.height
    if work is None or request.kind not in spec.edit_kinds:
        what = request.kind.label.lower()
        return EditPlan((width, height), WorkFit(reason=f"{model} cannot do {what} jobs"))
    if spec.square_edits_only and width != height:
        return EditPlan((width, height), WorkFit(
            reason=f"{model} edits take only square images (this job's is {width}x{height})"))
    api = api_size(spec, width, height)
    if api is None:
        return EditPlan((width, height), WorkFit(
            reason=f"{model} cannot make an image near {width}x{height} "
                   f"(supported: {spec.sizes.describe()})"))
    adaptations: list[str] = []
    notes: list[str] = []
    strength = work.strength
    if isinstance(work, ImageToImage) or strength < 1.0:
        adaptations.append(f"strength {strength:g} not honoured: OpenAI edits have no "
                           "strength setting and repaint freely")
    if isinstance(work, Outpaint):  # told, not asked: the padding itself is exact
        notes.append("outpaint made as an OpenAI edit of the padded canvas, source kept")
    if isinstance(work, Inpaint | Outpaint) and work.mask_blur:
        notes.append(f"mask blur {work.mask_blur} px not supported: ignored")
    if api != (width, height):
        made = f"OpenAI made {api[0]}x{api[1]}"
        if abs(api[0] / api[1] - width / height) <= SAME_SHAPE_TOLERANCE * (width / height):
            notes.append(f"size {width}x{height}: {made}, resized to {width}x{height}")
        else:
            adaptations.append(f"size {width}x{height}: {made}, stretched to {width}x{height}")
    return EditPlan(api, WorkFit(adaptations=tuple(adaptations), notes=tuple(notes)))


def api_size(spec: ModelSpec, width: int, height: int) -> tuple[int, int] | None:
    """The size to ask the endpoint for: a fixed list's nearest, or for a rule (gpt-image-2:
    multiples of 16 within a pixel budget) the accepted size of the job's shape whose
    pixel count is nearest the job's, clamped to the budget. The rule's own ``nearest``
    rounds each side on its own, which can bend the shape more than needed."""
    rule = spec.sizes
    if rule.allowed or rule.accepts(width, height):
        return rule.nearest(width, height)
    aspect = width / height
    low = getattr(rule, "min_pixels", 0)
    high = rule.max_pixels or rule.max_side * rule.max_side
    target = min(max(width * height, low), high)
    best: tuple[tuple[bool, int, float], tuple[int, int]] | None = None
    m = rule.multiple_of
    for w in range(max(m, rule.min_side // m * m), rule.max_side + 1, m):
        h = max(m, round(w / aspect / m) * m)
        if not rule.accepts(w, h):
            continue
        error = abs(w / h - aspect) / aspect
        key = (error > CLOSE_ENOUGH, abs(w * h - target), error)
        if best is None or key < best[0]:
            best = (key, (w, h))
    return best[1] if best is not None else rule.nearest(width, height)


# -- the mask -----------------------------------------------------------------------------


def to_openai_mask(mask: Image.Image) -> Image.Image:
    """Our mask (grey, white = repaint) as OpenAI's: RGBA, the same size, fully
    transparent where the model may edit and opaque elsewhere. Every painted pixel
    (any value above 0) is editable: a soft brush edge is repainted by the model and
    then blended by its grey value when the source is put back (``finish``)."""
    grey = mask.convert("L")
    out = Image.new("RGBA", grey.size, (0, 0, 0, 255))
    out.putalpha(grey.point(lambda v: 0 if v > 0 else 255))
    return out


# -- the upload ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What is uploaded (PNG bytes) and what ``finish`` needs to give back the job's
    image: the source on the result's canvas and where it is kept (grey, white =
    the model's pixels)."""

    image: bytes
    mask: bytes | None
    canvas: Image.Image
    repaint: Image.Image | None  # None: image to image, the whole picture is the model's


def prepare(request: GenerationRequest, inputs: InputImages, plan: EditPlan,
            spec: ModelSpec) -> Prepared:
    """Read the stored inputs and build the upload; runs in a worker thread. The
    source of an image-to-image or inpaint job goes up as the very PNG stored (its
    name is its SHA-256, so what was sent can be checked)."""
    work = request.work
    assert isinstance(work, ImageToImage | Inpaint | Outpaint)
    stored = inputs.read(work.source)
    source = _open(stored).convert("RGB")
    if isinstance(work, ImageToImage):
        return _within_limit(stored, source, None, source, None, plan, spec)
    if isinstance(work, Inpaint):
        repaint = _open(inputs.read(work.mask)).convert("L")
        if repaint.size != source.size:  # ImageRef sizes were checked; the files are ours
            raise InvalidRequest("The mask is not the size of the image.", field="mask")
        return _within_limit(stored, source, to_openai_mask(repaint), source, repaint,
                             plan, spec)
    pad = work.padding
    size = (request.width, request.height)
    canvas = Image.new("RGBA", size, (0, 0, 0, 0))
    canvas.paste(source, (pad.left, pad.top))
    repaint = Image.new("L", size, 255)
    repaint.paste(0, (pad.left, pad.top, pad.left + source.width, pad.top + source.height))
    return _within_limit(_png(canvas), canvas, to_openai_mask(repaint), canvas.convert("RGB"),
                         repaint, plan, spec)


def _within_limit(data: bytes, image: Image.Image, mask: Image.Image | None,
                  canvas: Image.Image, repaint: Image.Image | None, plan: EditPlan,
                  spec: ModelSpec) -> Prepared:
    """Upload ``data`` (``image`` encoded) at the input's own size; a PNG over the
    endpoint's byte limit is sent at the API size instead (the model redraws at that
    size anyway)."""
    mask_data = None if mask is None else _png(mask)
    if len(data) > spec.max_edit_input_bytes or len(mask_data or b"") > MAX_MASK_BYTES:
        image = image.resize(plan.api_size, Image.Resampling.LANCZOS)
        mask = None if mask is None else mask.resize(plan.api_size, Image.Resampling.NEAREST)
        data, mask_data = _png(image), None if mask is None else _png(mask)
        if len(data) > spec.max_edit_input_bytes or len(mask_data or b"") > MAX_MASK_BYTES:
            raise InvalidRequest(
                f"The source image is {len(data) // 2**20} MB as PNG even at "
                f"{plan.size_text}; OpenAI edits take at most "
                f"{spec.max_edit_input_bytes // 2**20} MB. Use a smaller image.", field="work")
    return Prepared(image=data, mask=mask_data, canvas=canvas, repaint=repaint)


# -- the answer ---------------------------------------------------------------------------


def call_request(request: GenerationRequest, plan: EditPlan) -> GenerationRequest:
    """The request as the endpoint serves it: the API size, PNG (the answer is resized
    and composited here, then the saver encodes the format asked for, once)."""
    return request.replace(work=None, width=plan.api_size[0], height=plan.api_size[1],
                           output_format=OutputFormat.PNG)


def finish(image: GeneratedImage, request: GenerationRequest, plan: EditPlan,
           prepared: Prepared) -> GeneratedImage:
    """The endpoint's image as the job's: the requested size, the source's pixels
    wherever the mask keeps them. Runs in a worker thread."""
    size = (request.width, request.height)
    details = dict(image.details)
    details.update(requested_size=request.size, api_size=plan.size_text,
                   edit=request.kind.value)
    if (image.width, image.height) == size and prepared.repaint is None:
        return dataclasses.replace(image, details=details)
    result = _open(image.data).convert("RGB")
    if result.size != size:
        result = result.resize(size, Image.Resampling.LANCZOS)
    if prepared.repaint is not None:
        result = Image.composite(result, prepared.canvas, prepared.repaint)
    if prepared.repaint is not None:
        details["kept_source_pixels"] = "outside the mask"
    return dataclasses.replace(image, data=_png(result), format="png", width=size[0],
                               height=size[1], details=details)


def _open(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.copy()


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=6)
    return out.getvalue()


__all__ = ["EditPlan", "Prepared", "call_request", "finish", "plan_edit",
           "prepare", "to_openai_mask"]
