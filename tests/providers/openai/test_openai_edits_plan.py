"""Jobs on an image for OpenAI, without the network: the one mask conversion (on
pixels), which kinds each model's edits endpoint serves, the size asked for, and
what fitting records or refuses for each kind."""

from __future__ import annotations

import dataclasses
import io
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from desktop_app.config import Settings
from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.request import (
    GenerationRequest,
    ImageRef,
    ImageToImage,
    Inpaint,
    Outpaint,
    Padding,
    RequestKind,
    RoutingPolicy,
    Upscale,
)
from desktop_app.providers.descriptor import BuildContext
from desktop_app.providers.fitting import fit_for
from desktop_app.providers.openai_images import OpenAIImagesConfig, OpenAIImagesProvider
from desktop_app.providers.openai_images.descriptor import DESCRIPTOR
from desktop_app.providers.openai_images.edits import (
    api_size,
    plan_edit,
    prepare,
    to_openai_mask,
)
from desktop_app.providers.openai_images.models import (
    DALL_E_2,
    DALL_E_3,
    GPT_IMAGE,
    GPT_IMAGE_LEGACY,
    input_fidelity_for,
)
from desktop_app.store.input_images import InputImages

SHA = "a" * 64
MASK_SHA = "b" * 64


def ref(width: int = 96, height: int = 64, sha: str = SHA) -> ImageRef:
    return ImageRef(sha, width, height)


def job(work: ImageToImage | Inpaint | Outpaint | Upscale, *,
        adapt: bool = True) -> GenerationRequest:
    return GenerationRequest("a red door", work=work,
                             policy=RoutingPolicy(allow_adaptation=adapt))


def provider(tmp_path: Path, model: str = "gpt-image-2", *,
             data_dir: bool = True) -> OpenAIImagesProvider:
    return OpenAIImagesProvider(OpenAIImagesConfig(
        model=model, data_dir=tmp_path if data_dir else None), lambda: "sk-unused")


# -- the mask, on pixels ------------------------------------------------------------------


def test_white_in_our_mask_is_fully_transparent_in_openais_and_black_is_opaque() -> None:
    ours = Image.new("L", (5, 3), 0)
    ours.putpixel((0, 0), 255)
    ours.putpixel((4, 2), 255)
    theirs = to_openai_mask(ours)
    assert theirs.mode == "RGBA" and theirs.size == (5, 3)
    alpha = theirs.getchannel("A")
    for y in range(3):
        for x in range(5):
            expected = 0 if (x, y) in ((0, 0), (4, 2)) else 255
            assert alpha.getpixel((x, y)) == expected, (x, y)


def test_a_soft_brush_edge_is_editable_so_the_model_repaints_what_is_blended() -> None:
    ours = Image.new("L", (4, 1), 0)
    for x, value in enumerate((0, 1, 128, 255)):
        ours.putpixel((x, 0), value)
    alpha = to_openai_mask(ours).getchannel("A")
    assert [alpha.getpixel((x, 0)) for x in range(4)] == [255, 0, 0, 0]


# -- kinds per model ------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "kinds"), [
    ("gpt-image-2", {"txt2img", "img2img", "inpaint", "outpaint"}),
    ("gpt-image-1", {"txt2img", "img2img", "inpaint", "outpaint"}),
    ("dall-e-2", {"txt2img", "inpaint", "outpaint"}),  # no mask: nothing it would edit
    ("dall-e-3", {"txt2img"}),  # no edits endpoint
])
def test_each_model_offers_the_kinds_its_edits_endpoint_serves(
        tmp_path: Path, model: str, kinds: set[str]) -> None:
    offered = provider(tmp_path, model).capabilities().kinds
    assert {k.value for k in offered} == kinds
    assert RequestKind.UPSCALE not in offered


def test_an_unknown_compatible_model_is_offered_text_jobs_only(tmp_path: Path) -> None:
    # its server may have no edits endpoint; a 404 there would shut the provider off
    assert provider(tmp_path, "my-local-flux").capabilities().kinds == frozenset(
        {RequestKind.TEXT_TO_IMAGE})


def test_without_the_profiles_data_folder_only_text_jobs_are_offered(tmp_path: Path) -> None:
    caps = provider(tmp_path, data_dir=False).capabilities()
    assert caps.kinds == frozenset({RequestKind.TEXT_TO_IMAGE})
    fit = fit_for(job(Inpaint(ref(), ref(sha=MASK_SHA))), provider(tmp_path, data_dir=False),
                  allow_adaptation=True)
    assert fit.reason == "it cannot do inpaint jobs"


def test_input_fidelity_is_asked_only_where_the_sdk_documents_high() -> None:
    assert input_fidelity_for("gpt-image-1") == "high"
    assert input_fidelity_for("gpt-image-1.5") == "high"
    assert input_fidelity_for("gpt-image-1-mini") is None
    assert input_fidelity_for("gpt-image-2") is None
    assert input_fidelity_for("dall-e-2") is None


# -- sizes --------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "expected"), [
    ((1024, 1024), (1024, 1024)),  # accepted as it is
    ((96, 64), (1008, 672)),  # scaled up to the pixel floor, same 3:2 shape
    ((1000, 750), (1024, 768)),  # 4:3 kept exactly
    ((64, 64), (816, 816)),
])
def test_gpt_image_2_is_asked_for_the_jobs_shape_within_its_pixel_budget(
        size: tuple[int, int], expected: tuple[int, int]) -> None:
    made = api_size(GPT_IMAGE, *size)
    assert made == expected
    assert GPT_IMAGE.sizes.accepts(*expected)


def test_a_same_shape_resize_is_a_note_and_a_stretch_needs_consent() -> None:
    same = plan_edit(job(Inpaint(ref(96, 64), ref(96, 64, MASK_SHA), mask_blur=0)),
                     GPT_IMAGE, "gpt-image-2")
    assert same.api_size == (1008, 672) and same.fit.adaptations == ()
    assert same.fit.notes == ("size 96x64: OpenAI made 1008x672, resized to 96x64",)

    stretched = plan_edit(job(Inpaint(ref(1000, 750), ref(1000, 750, MASK_SHA), mask_blur=0)),
                          GPT_IMAGE_LEGACY, "gpt-image-1")
    assert stretched.api_size == (1536, 1024)
    assert stretched.fit.adaptations == (
        "size 1000x750: OpenAI made 1536x1024, stretched to 1000x750",)


# -- fitting: what is recorded, what is refused --------------------------------------------


def test_image_to_image_is_served_with_its_strength_recorded_as_not_honoured(
        tmp_path: Path) -> None:
    fit = fit_for(job(ImageToImage(ref(1024, 1024), strength=0.3)), provider(tmp_path),
                  allow_adaptation=True)
    assert fit.fits and len(fit.calls) == 1
    assert "strength 0.3 not honoured: OpenAI edits have no strength setting and repaint " \
           "freely" in fit.adaptations


def test_with_adaptation_off_image_to_image_is_skipped_and_the_reason_names_strength(
        tmp_path: Path) -> None:
    request = job(ImageToImage(ref(1024, 1024), strength=0.3), adapt=False)
    fit = fit_for(request, provider(tmp_path), allow_adaptation=False)
    assert not fit.fits and fit.calls == ()
    assert fit.reason is not None and "strength 0.3 not honoured" in fit.reason
    assert "adapting is turned off" in fit.reason


def test_an_inpaint_at_full_strength_needs_no_consent(tmp_path: Path) -> None:
    request = job(Inpaint(ref(1024, 1024), ref(1024, 1024, MASK_SHA)), adapt=False)
    fit = fit_for(request, provider(tmp_path), allow_adaptation=False)
    assert fit.fits
    assert fit.adaptations == ("mask blur 4 px not supported: ignored",)


def test_an_inpaint_at_lower_strength_needs_consent(tmp_path: Path) -> None:
    request = job(Inpaint(ref(1024, 1024), ref(1024, 1024, MASK_SHA), strength=0.6),
                  adapt=False)
    fit = fit_for(request, provider(tmp_path), allow_adaptation=False)
    assert fit.reason is not None and "strength 0.6 not honoured" in fit.reason


def test_upscale_is_not_offered(tmp_path: Path) -> None:
    fit = fit_for(job(Upscale(ref(512, 512))), provider(tmp_path), allow_adaptation=True)
    assert fit.reason == "it cannot do upscale jobs"


def test_dall_e_2_refuses_a_job_that_is_not_square(tmp_path: Path) -> None:
    fit = fit_for(job(Inpaint(ref(96, 64), ref(96, 64, MASK_SHA))),
                  provider(tmp_path, "dall-e-2"), allow_adaptation=True)
    assert fit.reason == "dall-e-2 edits take only square images (this job's is 96x64)"
    square = fit_for(job(Outpaint(ref(256, 192), Padding(top=32, bottom=32)), adapt=False),
                     provider(tmp_path, "dall-e-2"), allow_adaptation=False)
    assert square.fits  # 256x256 is a dall-e-2 size and full strength needs no consent
    assert "outpaint made as an OpenAI edit of the padded canvas, source kept" \
        in square.adaptations


def test_dall_e_3_is_skipped_for_inpaint() -> None:
    plan = plan_edit(job(Inpaint(ref(), ref(sha=MASK_SHA))), DALL_E_3, "dall-e-3")
    assert plan.fit.reason == "dall-e-3 cannot do inpaint jobs"
    assert DALL_E_2.square_edits_only


# -- the upload's byte limit, and the registry's build ------------------------------------


def test_a_source_over_the_upload_limit_is_sent_at_the_api_size_with_its_mask(
        tmp_path: Path) -> None:
    def png(image: Image.Image) -> bytes:
        out = io.BytesIO()
        image.save(out, "PNG")
        return out.getvalue()

    store = InputImages.in_profile(tmp_path)
    rng = random.Random(3)
    source = Image.frombytes("RGB", (512, 512), rng.randbytes(512 * 512 * 3))  # ~790 kB PNG
    mask = Image.new("L", (512, 512), 0)
    mask.paste(255, (0, 0, 256, 512))
    request = job(Inpaint(store.add(png(source)), store.add(png(mask), "mask")))
    small = dataclasses.replace(GPT_IMAGE_LEGACY, sizes=dataclasses.replace(
        GPT_IMAGE_LEGACY.sizes, allowed=((256, 256),)), max_edit_input_bytes=400_000)
    plan = plan_edit(request, small, "gpt-image-1")
    assert plan.api_size == (256, 256)
    prepared = prepare(request, store, plan, small)
    assert len(prepared.image) <= 400_000
    with Image.open(io.BytesIO(prepared.image)) as sent:
        assert sent.size == (256, 256)
    assert prepared.mask is not None
    with Image.open(io.BytesIO(prepared.mask)) as sent_mask:
        assert sent_mask.size == (256, 256)
        alpha = sent_mask.getchannel("A")
        assert alpha.getpixel((10, 10)) == 0 and alpha.getpixel((250, 10)) == 255

    tiny = dataclasses.replace(small, max_edit_input_bytes=1_000)
    with pytest.raises(InvalidRequest, match="OpenAI edits take at most"):
        prepare(request, store, plan, tiny)


def test_the_provider_the_registry_builds_reads_the_profiles_inputs(tmp_path: Path) -> None:
    app_settings = Settings()
    built = DESCRIPTOR.create(DESCRIPTOR.section(app_settings),
                              BuildContext(app_settings, tmp_path, lambda: None))
    assert RequestKind.INPAINT in built.capabilities().kinds
    assert isinstance(built, OpenAIImagesProvider)
    assert built.config.data_dir == tmp_path


@settings(max_examples=150, deadline=None)
@given(st.integers(64, 4096), st.integers(64, 4096))
def test_the_api_size_is_always_one_gpt_image_2_accepts_and_keeps_the_shape_when_it_can(
        width: int, height: int) -> None:
    made = api_size(GPT_IMAGE, width, height)
    assert made is not None and GPT_IMAGE.sizes.accepts(*made)
    if max(width, height) / min(width, height) <= 2.9:  # a shape the model can make
        error = abs(made[0] / made[1] - width / height) / (width / height)
        assert error <= 0.02, (width, height, made)


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=24, max_size=24))
def test_any_mask_converts_pixel_for_pixel(values: bytes) -> None:
    ours = Image.frombytes("L", (6, 4), values)
    alpha = to_openai_mask(ours).getchannel("A")
    assert list(alpha.get_flattened_data()) == [0 if v else 255 for v in values]
