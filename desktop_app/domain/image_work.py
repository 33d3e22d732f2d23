"""Work on an existing image: the typed parts that give a request its kind.

A request with no image work is text-to-image. With one of these parts it is
image-to-image (``ImageToImage``), inpaint (``Inpaint``), outpaint (``Outpaint``)
or upscale (``Upscale``). Input images are never inlined: an ``ImageRef`` names a
content-addressed file in the profile's input store (``store/input_images.py``)
by its SHA-256, with its size so sizes can be checked without reading it.

Mask convention, everywhere in ImageDesk: white (255) = repaint, black (0) = keep.
Providers with another convention convert in one place (the OpenAI provider's
edits module).
"""

from __future__ import annotations

import dataclasses
import enum
import string
from typing import ClassVar

from desktop_app.domain.errors import InvalidRequest

MAX_INPUT_SIDE = 8192  # the largest source image accepted (the output cap is lower)
MAX_PADDING = 2048
MAX_MASK_BLUR = 64
MIN_UPSCALE, MAX_UPSCALE = 1.0, 4.0


class RequestKind(enum.Enum):
    """What a job does, as the editor, the queue and the metadata name it."""

    TEXT_TO_IMAGE = "txt2img"
    IMAGE_TO_IMAGE = "img2img"
    INPAINT = "inpaint"
    OUTPAINT = "outpaint"
    UPSCALE = "upscale"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    RequestKind.TEXT_TO_IMAGE: "Text to image",
    RequestKind.IMAGE_TO_IMAGE: "Image to image",
    RequestKind.INPAINT: "Inpaint",
    RequestKind.OUTPAINT: "Outpaint",
    RequestKind.UPSCALE: "Upscale",
}


@dataclasses.dataclass(frozen=True)
class ImageRef:
    """A stored input image: its content hash and pixel size.

    ``gallery_id`` is set when the image came from the gallery, so the result can
    be linked to it (lineage: source -> results)."""

    sha256: str
    width: int
    height: int
    gallery_id: int | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.sha256, str) and len(self.sha256) == 64
                and all(c in string.hexdigits for c in self.sha256)):
            raise InvalidRequest("An input image must be named by its 64-hex-digit SHA-256.",
                                 field="sha256")
        object.__setattr__(self, "sha256", self.sha256.lower())
        for side in ("width", "height"):
            value = getattr(self, side)
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not 1 <= value <= MAX_INPUT_SIDE:
                raise InvalidRequest(
                    f"An input image's {side} must be 1 to {MAX_INPUT_SIDE} pixels "
                    f"(got {value!r}).", field=side)
        if self.gallery_id is not None and (isinstance(self.gallery_id, bool)
                                            or not isinstance(self.gallery_id, int)):
            raise InvalidRequest("A gallery id must be a whole number.", field="gallery_id")

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


@dataclasses.dataclass(frozen=True)
class Padding:
    """How far outpainting extends the canvas on each side, in pixels."""

    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0

    def __post_init__(self) -> None:
        for side in ("left", "top", "right", "bottom"):
            value = getattr(self, side)
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not 0 <= value <= MAX_PADDING:
                raise InvalidRequest(
                    f"Outpaint padding {side} must be 0 to {MAX_PADDING} pixels (got {value!r}).",
                    field="padding")
        if not any((self.left, self.top, self.right, self.bottom)):
            raise InvalidRequest("Outpainting needs padding on at least one side.",
                                 field="padding")

    @classmethod
    def parse(cls, text: str) -> Padding:
        """``"left,top,right,bottom"`` (the CLI's ``--outpaint``), e.g. ``0,0,256,0``."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 4 or not all(p.isascii() and p.isdigit() and len(p) <= 5
                                      for p in parts):
            shown = text if len(text) <= 40 else text[:40] + "…"
            raise InvalidRequest(f"Outpaint padding must look like left,top,right,bottom "
                                 f"in pixels, e.g. 0,0,256,0 (got {shown!r}).", field="padding")
        left, top, right, bottom = (int(p) for p in parts)
        return cls(left, top, right, bottom)


def _strength(value: object, *, low_inclusive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidRequest("Strength must be a number between 0 and 1.", field="strength")
    strength = float(value)
    if not (0.0 < strength <= 1.0 or (low_inclusive and strength == 0.0)):
        raise InvalidRequest(
            f"Strength must be above 0 and at most 1 (got {value}): 0.3 keeps most of the "
            "source, 1.0 repaints it entirely.", field="strength")
    return strength


def _blur(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MASK_BLUR:
        raise InvalidRequest(f"Mask blur must be 0 to {MAX_MASK_BLUR} pixels (got {value!r}).",
                             field="mask_blur")
    return value


@dataclasses.dataclass(frozen=True)
class ImageToImage:
    """Repaint the whole source; ``strength`` says how far from it the result may go."""

    KIND: ClassVar[RequestKind] = RequestKind.IMAGE_TO_IMAGE
    source: ImageRef
    strength: float = 0.75

    def __post_init__(self) -> None:
        object.__setattr__(self, "strength", _strength(self.strength))

    def result_size(self) -> tuple[int, int]:
        return self.source.size


@dataclasses.dataclass(frozen=True)
class Inpaint:
    """Repaint where the mask is white; every other pixel stays the source's."""

    KIND: ClassVar[RequestKind] = RequestKind.INPAINT
    source: ImageRef
    mask: ImageRef
    strength: float = 1.0
    mask_blur: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "strength", _strength(self.strength))
        object.__setattr__(self, "mask_blur", _blur(self.mask_blur))
        if self.mask.size != self.source.size:
            raise InvalidRequest(
                f"The mask is {self.mask.width}x{self.mask.height} but the image is "
                f"{self.source.width}x{self.source.height}: paint the mask on the same image.",
                field="mask")

    def result_size(self) -> tuple[int, int]:
        return self.source.size


@dataclasses.dataclass(frozen=True)
class Outpaint:
    """Extend the canvas by ``padding`` and paint the new area to match."""

    KIND: ClassVar[RequestKind] = RequestKind.OUTPAINT
    source: ImageRef
    padding: Padding
    strength: float = 1.0
    mask_blur: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "strength", _strength(self.strength))
        object.__setattr__(self, "mask_blur", _blur(self.mask_blur))

    def result_size(self) -> tuple[int, int]:
        p = self.padding
        return self.source.width + p.left + p.right, self.source.height + p.top + p.bottom


@dataclasses.dataclass(frozen=True)
class Upscale:
    """Enlarge by ``scale``, then repaint at low strength for detail ("hires fix")."""

    KIND: ClassVar[RequestKind] = RequestKind.UPSCALE
    source: ImageRef
    scale: float = 2.0
    strength: float = 0.3

    def __post_init__(self) -> None:
        scale = self.scale
        if isinstance(scale, bool) or not isinstance(scale, int | float) or scale != scale \
                or not MIN_UPSCALE < float(scale) <= MAX_UPSCALE:
            raise InvalidRequest(f"Upscale must be more than {MIN_UPSCALE:g}x and at most "
                                 f"{MAX_UPSCALE:g}x (got {scale!r}).", field="scale")
        object.__setattr__(self, "scale", float(scale))
        object.__setattr__(self, "strength", _strength(self.strength))

    def result_size(self) -> tuple[int, int]:
        return round(self.source.width * self.scale), round(self.source.height * self.scale)


ImageWork = ImageToImage | Inpaint | Outpaint | Upscale
