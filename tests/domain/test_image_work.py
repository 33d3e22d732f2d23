"""Requests with a kind: typed parts, derived sizes, one generic serialization
that reads its own output back and refuses anything else with a clear error."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.request import (
    GenerationRequest,
    ImageRef,
    ImageToImage,
    Inpaint,
    Outpaint,
    Padding,
    RequestKind,
    Upscale,
)

SHA = "ab" * 32
MASK_SHA = "cd" * 32


def source(width: int = 1000, height: int = 750) -> ImageRef:
    return ImageRef(sha256=SHA, width=width, height=height)


def test_a_request_without_work_is_text_to_image_and_needs_no_input() -> None:
    request = GenerationRequest("a lighthouse")
    assert request.kind is RequestKind.TEXT_TO_IMAGE and request.input_images == ()


@pytest.mark.parametrize(("work", "kind", "size"), [
    (ImageToImage(source(), 0.3), RequestKind.IMAGE_TO_IMAGE, (1000, 750)),
    (Inpaint(source(), ImageRef(MASK_SHA, 1000, 750)), RequestKind.INPAINT, (1000, 750)),
    (Outpaint(source(), Padding(left=128, right=256)), RequestKind.OUTPAINT, (1384, 750)),
    (Upscale(source(), 2.0), RequestKind.UPSCALE, (2000, 1500)),
])
def test_each_kind_takes_its_result_size_from_the_source(
        work: ImageToImage | Inpaint | Outpaint | Upscale, kind: RequestKind,
        size: tuple[int, int]) -> None:
    request = GenerationRequest("a lighthouse", width=64, height=64, work=work)
    assert request.kind is kind
    assert (request.width, request.height) == size  # a source need not be a multiple of 8
    assert request.input_images[0].sha256 == SHA


def test_every_kind_survives_a_round_trip_through_json() -> None:
    works: list[ImageToImage | Inpaint | Outpaint | Upscale] = [
        ImageToImage(source(), 0.3),
        Inpaint(source(), ImageRef(MASK_SHA, 1000, 750), 0.9, 6),
        Outpaint(source(), Padding(0, 64, 0, 64)),
        Upscale(source(640, 480), 1.5, 0.25),
    ]
    for work in works:
        request = GenerationRequest("a lighthouse", seed=3, work=work, origin="api")
        text = json.dumps(request.to_dict())
        assert GenerationRequest.from_dict(json.loads(text)) == request
        assert json.loads(text)["work"]["kind"] == work.KIND.value


def test_the_stored_form_names_images_by_hash_never_inlines_pixels() -> None:
    request = GenerationRequest("x", work=Inpaint(source(), ImageRef(MASK_SHA, 1000, 750)))
    stored = json.dumps(request.to_dict())
    assert len(stored) < 1000 and SHA in stored and MASK_SHA in stored


@pytest.mark.parametrize(("build", "message"), [
    (lambda: ImageToImage(source(), 0.0), "Strength must be above 0"),
    (lambda: ImageToImage(source(), 1.5), "Strength must be above 0"),
    (lambda: Inpaint(source(), ImageRef(MASK_SHA, 999, 750)), "paint the mask on the same image"),
    (lambda: Padding(), "at least one side"),
    (lambda: Padding(left=-8), "padding left must be 0"),
    (lambda: Upscale(source(), 1.0), "more than 1x"),
    (lambda: Upscale(source(), 8.0), "at most 4x"),
    (lambda: ImageRef("xyz", 10, 10), "64-hex-digit"),
    (lambda: ImageRef(SHA, 0, 10), "width must be 1 to"),
    (lambda: GenerationRequest("x", work=Upscale(source(3000, 3000), 2.0)),
     "most ImageDesk makes is 4096"),
])
def test_bad_parts_are_refused_saying_what_to_fix(build: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        build()  # type: ignore[operator]


def test_outpaint_padding_parses_the_cli_form_and_refuses_other_text() -> None:
    assert Padding.parse("0, 64,256,0") == Padding(0, 64, 256, 0)
    for text in ("1,2,3", "a,b,c,d", "-1,0,0,0", "1,2,3,4,5", "9" * 50):
        with pytest.raises(InvalidRequest, match="left,top,right,bottom"):
            Padding.parse(text)


def test_an_unknown_kind_of_work_lists_the_known_ones() -> None:
    data = GenerationRequest("x").to_dict()
    data["work"] = {"kind": "colorize", "source": {"sha256": SHA, "width": 8, "height": 8}}
    with pytest.raises(InvalidRequest, match="img2img, inpaint, outpaint, upscale"):
        GenerationRequest.from_dict(data)


def test_an_unknown_field_inside_the_work_is_refused_by_name() -> None:
    data = GenerationRequest("x", work=ImageToImage(source())).to_dict()
    data["work"]["denoise"] = 0.5
    with pytest.raises(InvalidRequest, match="denoise"):
        GenerationRequest.from_dict(data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=5),
    max_leaves=12)
_keys = st.sampled_from(["prompt", "work", "kind", "source", "mask", "sha256", "width",
                         "height", "strength", "padding", "left", "scale", "policy", "mode",
                         "quality", "origin", "gallery_id", "mask_blur"])


# bounded time is the point, but a loaded 2-core CI box is slow to draw examples
@settings(max_examples=300, deadline=timedelta(seconds=2),
          suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_keys, _json | st.dictionaries(_keys, _json, max_size=6), max_size=8))
def test_any_stored_or_received_request_reads_as_a_request_or_a_clear_error(
        data: dict[str, object]) -> None:
    data.setdefault("prompt", "a lighthouse")
    try:
        request = GenerationRequest.from_dict(data)
    except InvalidRequest as error:
        assert str(error)
        return
    assert GenerationRequest.from_dict(request.to_dict()) == request


def test_a_text_job_is_written_exactly_as_round_1_wrote_it_so_older_workers_read_it() -> None:
    plain = GenerationRequest("a lighthouse", seed=5).to_dict()
    assert set(plain) == {"prompt", "negative_prompt", "width", "height", "steps", "guidance",
                          "seed", "n", "output_format", "quality", "policy", "model"}
    with_work = GenerationRequest("x", work=ImageToImage(source()), origin="api").to_dict()
    assert {"work", "origin"} <= set(with_work)
