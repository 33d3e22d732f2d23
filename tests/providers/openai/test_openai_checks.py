"""The pieces under the provider: image checks, the price table, Retry-After
parsing and gpt-image-2's size rule."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_app.domain.errors import Misconfigured, Transient
from desktop_app.providers.openai_images import PriceTable, spec_for
from desktop_app.providers.openai_images.errors import redact, retry_after_s
from desktop_app.providers.openai_images.prices import TokenUsage, usage_from
from desktop_app.providers.openai_images.validate import (
    ImageLimits,
    decode_b64,
    validate_image,
)
from tests.fakes.openai_payloads import image_bytes, png_bomb

LIMITS = ImageLimits(max_bytes=5_000_000, max_pixels=16_777_216)


def test_a_good_image_passes_every_check() -> None:
    data = image_bytes(640, 480, "webp")
    decoded = validate_image(decode_b64(base64.b64encode(data).decode(), LIMITS),
                             width=640, height=480, limits=LIMITS)
    assert (decoded.format, decoded.width, decoded.height) == ("webp", 640, 480)


@pytest.mark.parametrize("payload", [
    "aGVsbG8=\n",  # a newline: not strict base64
    "aGVsbG8",  # missing padding
    "!!!!",
    "",
    None,
    42,
])
def test_anything_but_strict_base64_is_refused(payload: object) -> None:
    with pytest.raises(Transient, match="unusable image"):
        decode_b64(payload, LIMITS)


def test_a_payload_over_the_byte_cap_is_refused_before_decoding() -> None:
    small = ImageLimits(max_bytes=1000, max_pixels=LIMITS.max_pixels)
    with pytest.raises(Transient, match="1,000"):
        decode_b64(base64.b64encode(b"\0" * 5000).decode(), small)


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    with pytest.raises(Transient, match="pixels"):
        validate_image(png_bomb(), width=1024, height=1024,
                       limits=LIMITS)


def test_the_pixel_cap_is_the_configured_one() -> None:
    tight = ImageLimits(max_bytes=LIMITS.max_bytes, max_pixels=1000 * 1000)
    with pytest.raises(Transient, match="1,000,000 pixels"):
        validate_image(image_bytes(1024, 1024), width=1024,
                       height=1024, limits=tight)


def test_a_truncated_image_is_refused() -> None:
    data = image_bytes(256, 256)
    with pytest.raises(Transient, match="does not decode"):
        validate_image(data[: len(data) // 2], width=256, height=256,
                       limits=LIMITS)


@pytest.mark.parametrize(("got", "ok"), [
    ((1024, 1024), True), ((512, 512), True), ((2048, 1152), True),
    ((64, 32), False), ((1024, 768), False), ((4096, 2304), False),
])
def test_the_size_must_be_plausible_for_the_request(got: tuple[int, int], ok: bool) -> None:
    want = (1024, 1024) if got[0] == got[1] or got == (64, 32) or got == (1024, 768) else (
        1536, 864)
    data = image_bytes(*got)
    if ok:
        validate_image(data, width=want[0], height=want[1],
                       limits=LIMITS)
    else:
        with pytest.raises(Transient, match="asked for"):
            validate_image(data, width=want[0], height=want[1],
                           limits=LIMITS)


# -- prices ------------------------------------------------------------------

def test_token_usage_is_read_from_sdk_shaped_or_plain_data() -> None:
    usage = usage_from({"input_tokens": 10, "output_tokens": 300,
                        "input_tokens_details": {"text_tokens": 7, "image_tokens": 3}})
    assert usage == TokenUsage(text_in=7, image_in=3, image_out=300)
    assert usage_from(None) is None
    assert usage_from({"input_tokens": "lots"}) is None


def test_an_edited_price_table_is_used(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": [{
        "name": "x", "match": ["gpt-image-2*"],
        "tokens_per_million": {"text_input": 1.0, "image_output": 2.0},
        "per_image": {"*": {"auto": 0.5}}, "per_image_reference_size": "1024x1024"}]}))
    table = PriceTable.load(path)
    prices = table.for_model("gpt-image-2")
    assert prices is not None
    assert prices.token_cost(TokenUsage(text_in=1_000_000, image_out=1_000_000)) == 3.0
    assert table.estimate("gpt-image-2", 2048, 1024, "auto") == pytest.approx(1.0)
    assert table.estimate("dall-e-2", 512, 512, None) == 0.0  # not in this table


def test_a_missing_price_table_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(Misconfigured, match="missing"):
        PriceTable.load(tmp_path / "nope.json")


# -- Retry-After and redaction --------------------------------------------------

@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after": "3"}, 3.0),
    ({"retry-after": "0.5"}, 0.5),
    ({"retry-after-ms": "250"}, 0.25),
    ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
    ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
    ({"retry-after": "-4"}, None),
    ({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, 60.0),
    ({}, None),
])
def test_retry_after_headers_are_read(headers: dict[str, str], expected: float | None) -> None:
    now = 1792567620.0  # 2026-10-21 07:27:00 UTC
    assert retry_after_s(headers, now=now) == expected


def test_redaction_removes_given_secrets_and_key_shapes() -> None:
    text = redact("bad key sk-proj-abcdef123456 and Bearer tok3n and s3cret-value",
                  ("s3cret-value",))
    assert "abcdef123456" not in text and "tok3n" not in text and "s3cret" not in text


# -- gpt-image-2 size rule -------------------------------------------------------

@given(st.integers(8, 512).map(lambda v: v * 8), st.integers(8, 512).map(lambda v: v * 8))
def test_nearest_gpt_image_2_size_is_always_one_it_accepts(width: int, height: int) -> None:
    rule = spec_for("gpt-image-2").sizes
    nearest = rule.nearest(width, height)
    assert nearest is not None and rule.accepts(*nearest)
    if rule.accepts(width, height):
        assert nearest == (width, height)
