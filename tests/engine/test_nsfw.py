"""The optional NSFW check of outputs: off, blur, block around a threshold."""

from __future__ import annotations

import io
import sys

import pytest
from PIL import Image

from desktop_app.domain.images import GeneratedImage
from desktop_app.engine.nsfw import (
    NsfwAction,
    NsfwMode,
    NsfwSettings,
    Scorer,
    check_image,
    opennsfw_scorer,
)


def png(colour: tuple[int, int, int] = (200, 40, 40), size: int = 64) -> GeneratedImage:
    picture = Image.new("RGB", (size, size), colour)
    for x in range(0, size, 4):  # a pattern, so blurring visibly changes it
        for y in range(size):
            picture.putpixel((x, y), (255, 255, 255))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return GeneratedImage(out.getvalue(), "png", size, size, "local", "m", 1,
                          details={"seed": "1"})


def scorer(value: float) -> Scorer:
    return lambda data: value


def test_off_returns_the_image_untouched_without_scoring() -> None:
    image = png()

    def must_not_run(data: bytes) -> float:
        raise AssertionError("scored while off")

    outcome = check_image(image, NsfwSettings(), must_not_run)
    assert outcome.image is image and outcome.action is NsfwAction.NONE


def test_below_the_threshold_keeps_the_image_and_records_the_score() -> None:
    image = png()
    outcome = check_image(image, NsfwSettings(NsfwMode.BLOCK, 0.8), scorer(0.3))
    assert outcome.image is not None and outcome.image.data == image.data
    assert outcome.image.details["nsfw_score"] == "0.300"
    assert outcome.action is NsfwAction.NONE


def test_block_drops_the_image_and_says_why() -> None:
    outcome = check_image(png(), NsfwSettings(NsfwMode.BLOCK, 0.8), scorer(0.8))
    assert outcome.image is None and outcome.action is NsfwAction.BLOCKED
    assert "0.80" in outcome.message and "Settings" in outcome.message


def test_blur_keeps_a_decodable_blurred_image_of_the_same_size() -> None:
    image = png()
    outcome = check_image(image, NsfwSettings(NsfwMode.BLUR, 0.5), scorer(0.9))
    assert outcome.image is not None and outcome.action is NsfwAction.BLURRED
    assert outcome.image.data != image.data
    blurred = Image.open(io.BytesIO(outcome.image.data))
    assert blurred.format == "PNG" and blurred.size == (64, 64)
    assert outcome.image.details["nsfw_action"] == "blurred"
    assert outcome.image.details["seed"] == "1"


def test_threshold_outside_zero_to_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="threshold"):
        NsfwSettings(NsfwMode.BLOCK, 1.5)


def test_real_classifier_scores_offline_without_torch() -> None:
    score = opennsfw_scorer()(png((30, 90, 200)).data)
    assert 0.0 <= score <= 1.0
    assert "torch" not in sys.modules
