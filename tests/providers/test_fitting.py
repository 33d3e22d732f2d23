from __future__ import annotations

import dataclasses
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from desktop_app.domain.request import (
    GenerationRequest,
    ImageRef,
    ImageToImage,
    OutputFormat,
    Quality,
    RequestKind,
)
from desktop_app.providers.base import Capabilities, SizeRule, WorkFit
from desktop_app.providers.fitting import fit_for, fit_request
from tests.fakes.scripted_provider import ScriptedProvider

FIXED = Capabilities(sizes=SizeRule(allowed=((1024, 1024), (1536, 1024), (1024, 1536))),
                     max_images_per_call=1, formats=("png",))
RULE = Capabilities(sizes=SizeRule(multiple_of=16, min_side=256, max_side=3840,
                                   max_pixels=3840 * 2160, max_aspect=3.0),
                    max_images_per_call=10, formats=("png", "webp", "jpeg"),
                    supports_seed=False)


def test_a_request_that_fits_is_left_alone() -> None:
    req = GenerationRequest(prompt="a cat", width=1024, height=1024)
    fit = fit_request(req, FIXED, allow_adaptation=True)
    assert fit.fits and fit.adaptations == () and fit.calls == (req,)


def test_size_is_moved_to_the_nearest_allowed_one_and_recorded() -> None:
    fit = fit_request(GenerationRequest(prompt="a cat", width=768, height=512), FIXED,
                      allow_adaptation=True)
    assert fit.calls[0].size == "1536x1024"
    assert "size 768x512 -> 1536x1024" in fit.adaptations


def test_images_beyond_the_per_call_limit_are_split_into_calls() -> None:
    fit = fit_request(GenerationRequest(prompt="a cat", width=1024, height=1024, n=3, seed=7),
                      FIXED, allow_adaptation=True)
    assert [c.n for c in fit.calls] == [1, 1, 1]
    assert "3 images split into 3 calls" in fit.adaptations


def test_unsupported_fields_are_ignored_and_listed() -> None:
    req = GenerationRequest(prompt="a cat", width=1024, height=1024, seed=3,
                            negative_prompt="blurry", output_format=OutputFormat.PNG)
    fit = fit_request(req, RULE, allow_adaptation=False)  # ignoring needs no consent
    assert fit.fits
    assert "seed not supported: ignored" in fit.adaptations
    assert "negative prompt not supported: ignored" in fit.adaptations
    assert fit.calls[0].negative_prompt == ""


def test_adaptation_turned_off_makes_a_misfit_a_skip_with_the_reason() -> None:
    fit = fit_request(GenerationRequest(prompt="a cat", width=768, height=768), FIXED,
                      allow_adaptation=False)
    assert not fit.fits
    assert fit.reason is not None and "adapting is turned off" in fit.reason


def test_a_prompt_over_the_provider_limit_cannot_fit() -> None:
    caps = Capabilities(max_prompt_chars=1000)
    fit = fit_request(GenerationRequest(prompt="x" * 1001), caps, allow_adaptation=True)
    assert fit.reason is not None and "at most 1,000" in fit.reason


@given(w=st.integers(8, 512).map(lambda v: v * 8), h=st.integers(8, 512).map(lambda v: v * 8))
def test_rule_sizes_always_adapt_to_an_accepted_size(w: int, h: int) -> None:
    nearest = RULE.sizes.nearest(w, h)
    assert nearest is not None and RULE.sizes.accepts(*nearest)


def test_a_provider_without_quality_control_ignores_quality_and_says_so(
        tmp_path: Path) -> None:
    from desktop_app.providers.local_diffusion.config import LocalDiffusionConfig
    from desktop_app.providers.local_diffusion.provider import LocalDiffusionProvider

    local = LocalDiffusionProvider(LocalDiffusionConfig(data_dir=tmp_path)).capabilities()
    req = GenerationRequest(prompt="a cat", width=512, height=512, quality=Quality.HIGH)
    # "ignored" never blocks, even with adapting turned off
    fit = fit_request(req, local, allow_adaptation=False)
    assert fit.fits and "quality high not supported: ignored" in fit.adaptations
    assert fit.calls[0].quality is Quality.AUTO


def test_a_provider_with_other_qualities_adapts_and_needs_consent() -> None:
    caps = Capabilities(qualities=("auto", "medium", "high"))  # dall-e-3: no "low"
    req = GenerationRequest(prompt="a cat", quality=Quality.LOW)
    assert fit_request(req, caps, allow_adaptation=True).adaptations == ("quality low -> auto",)
    refused = fit_request(req, caps, allow_adaptation=False)
    assert not refused.fits and "quality low -> auto" in (refused.reason or "")


def test_a_quality_the_provider_has_is_left_alone() -> None:
    caps = Capabilities(qualities=("auto", "low", "medium", "high"))
    req = GenerationRequest(prompt="a cat", quality=Quality.LOW)
    fit = fit_request(req, caps, allow_adaptation=False)
    assert fit.adaptations == () and fit.calls[0].quality is Quality.LOW


# -- a provider's own account of a job on an image (FitsWork) ----------------------------

_SOURCE = ImageRef("c" * 64, 640, 480)


class _Approximate(ScriptedProvider):
    """Serves image-to-image, saying what it would change: ``answer`` each time."""

    def __init__(self, answer: WorkFit) -> None:
        super().__init__("approx", caps=Capabilities(
            sizes=SizeRule(multiple_of=16), max_images_per_call=4,
            kinds=frozenset({RequestKind.TEXT_TO_IMAGE, RequestKind.IMAGE_TO_IMAGE})))
        self.answer = answer
        self.asked: list[GenerationRequest] = []

    def fit_work(self, request: GenerationRequest) -> WorkFit:
        self.asked.append(request)
        return self.answer


def _img2img() -> GenerationRequest:
    return GenerationRequest(prompt="a cat", work=ImageToImage(_SOURCE, 0.5), n=2)


def test_a_providers_notes_are_recorded_without_consent_and_its_adaptations_need_it() -> None:
    noted = _Approximate(WorkFit(notes=("made at 1024x768, resized",)))
    fit = fit_for(_img2img(), noted, allow_adaptation=False)
    assert fit.fits and fit.adaptations == ("made at 1024x768, resized",)
    assert [c.kind for c in fit.calls] == [RequestKind.IMAGE_TO_IMAGE]

    adapted = _Approximate(WorkFit(adaptations=("strength 0.5 not honoured",)))
    refused = fit_for(_img2img(), adapted, allow_adaptation=False)
    assert refused.reason == ("needs adapting (strength 0.5 not honoured) and adapting "
                              "is turned off")
    allowed = fit_for(_img2img(), adapted, allow_adaptation=True)
    assert allowed.fits and "strength 0.5 not honoured" in allowed.adaptations


def test_a_providers_reason_skips_it_and_a_text_job_never_asks() -> None:
    unable = _Approximate(WorkFit(reason="only square images"))
    assert fit_for(_img2img(), unable, allow_adaptation=True).reason == "only square images"
    text = GenerationRequest(prompt="a cat", width=512, height=512)
    assert fit_for(text, unable, allow_adaptation=True).fits
    assert [r.kind for r in unable.asked] == [RequestKind.IMAGE_TO_IMAGE]


def test_a_provider_that_cannot_apply_loras_gets_the_prompt_without_them_or_is_skipped(
        ) -> None:
    req = GenerationRequest(prompt="a cat <lora:grain:0.8>, film", width=1024, height=1024)
    adapted = fit_request(req, FIXED, allow_adaptation=True)
    assert [c.prompt for c in adapted.calls] == ["a cat , film"]
    assert adapted.adaptations == ("LoRA grain left out of the prompt: it cannot apply LoRAs",)
    refused = fit_request(req, FIXED, allow_adaptation=False)
    assert refused.reason == "it cannot apply LoRAs (grain) and adapting is turned off"
    only_tags = fit_request(req.replace(prompt="<lora:grain>"), FIXED, allow_adaptation=True)
    assert only_tags.reason is not None and "nothing else" in only_tags.reason
    local = dataclasses.replace(FIXED, supports_loras=True)
    assert fit_request(req, local, allow_adaptation=False).calls == (req,)
