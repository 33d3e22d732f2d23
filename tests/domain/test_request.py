from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_app.domain.content_filter import check_blocked_terms
from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.request import (
    MAX_PROMPT_CHARS,
    GenerationRequest,
    OutputFormat,
    Quality,
    RouteMode,
    RoutingPolicy,
    parse_size,
)


def test_prompt_is_normalised_nfc_without_control_characters_and_trimmed() -> None:
    req = GenerationRequest(prompt="  cafe\u0301 at\x00 night\n\twith\x1b rain \r\n ")
    assert req.prompt == "café at night\n\twith rain"


@pytest.mark.parametrize(
    "prompt",
    [
        "می\u200cخواهم",  # Persian "I want": ZWNJ keeps the two parts of the word apart
        "\U0001F468\u200d\U0001F469\u200d\U0001F467 at the beach",  # one family emoji
        "क्\u200dष",  # Devanagari half-form conjunct asked for with ZWJ
    ],
)
def test_joiners_that_are_spelling_survive_normalisation_unchanged(prompt: str) -> None:
    req = GenerationRequest(prompt=prompt, negative_prompt=prompt)
    assert req.prompt == prompt and req.negative_prompt == prompt
    assert GenerationRequest.from_dict(req.to_dict()).prompt == prompt


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a\u200bcat", "acat"),  # zero-width space
        ("\u202ecat a\u202c", "cat a"),  # right-to-left override ... pop
        ("\u2066a cat\u2069 \u202a\u202b\u202d", "a cat"),  # isolates and embeddings
        ("\u200d\u200c a cat \u200c", "a cat"),  # joiners at the ends join nothing
    ],
)
def test_other_invisible_format_characters_are_removed(prompt: str, expected: str) -> None:
    assert GenerationRequest(prompt=prompt).prompt == expected


@pytest.mark.parametrize("prompt", ["", "   ", "\x00\x01", "\u200b", "\u200d", " \u200c\u200d "])
def test_empty_prompt_is_rejected_with_a_clear_message(prompt: str) -> None:
    with pytest.raises(InvalidRequest, match="Enter a prompt") as info:
        GenerationRequest(prompt=prompt)
    assert info.value.field == "prompt"


def test_overlong_prompt_says_how_long_it_is_and_the_cap() -> None:
    with pytest.raises(InvalidRequest, match=r"32,001 characters.*32,000"):
        GenerationRequest(prompt="x" * (MAX_PROMPT_CHARS + 1))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("width", 0, "between 64 and 4096"),
        ("height", 10_000, "between 64 and 4096"),
        ("width", 513, "multiple of 8.*try 512"),
        ("steps", 0, "Steps must be between 1 and 150"),
        ("steps", 1.5, "whole number"),
        ("guidance", -1, "Guidance must be between 0 and 30"),
        ("guidance", float("nan"), "Guidance must be between"),
        ("guidance", "7", "Guidance must be a number"),
        ("seed", -1, "seed must be between 0 and 4294967295"),
        ("seed", 2**32, "seed must be between"),
        ("n", 0, "number of images must be between 1 and 16"),
        ("n", 1000, "number of images must be between 1 and 16"),
        ("n", True, "whole number"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as info:
        GenerationRequest(prompt="a cat", **{field: value})  # type: ignore[arg-type]
    assert info.value.field == field


def test_unknown_fields_are_rejected_by_name() -> None:
    with pytest.raises(InvalidRequest, match="Unknown request field.*colour"):
        GenerationRequest.from_dict({"prompt": "a cat", "colour": "red"})


def test_unknown_enum_value_lists_the_allowed_ones() -> None:
    with pytest.raises(InvalidRequest, match="output_format 'gif': use one of png, jpeg, webp"):
        GenerationRequest.from_dict({"prompt": "a cat", "output_format": "gif"})


def test_round_trip_through_dict_keeps_every_field() -> None:
    req = GenerationRequest(
        prompt="a lighthouse, at dusk: moody", negative_prompt="blur", width=768, height=512,
        steps=30, guidance=5.5, seed=42, n=2, output_format=OutputFormat.WEBP,
        policy=RoutingPolicy(mode=RouteMode.CLOUD_ONLY, allow_failover_after_refusal=True),
        model="builtin:tiny",
    )
    assert GenerationRequest.from_dict(req.to_dict()) == req


def test_content_failover_after_refusal_is_off_by_default() -> None:
    assert GenerationRequest(prompt="x").policy.allow_failover_after_refusal is False


def test_parse_size_accepts_wxh_and_rejects_garbage() -> None:
    assert parse_size("768x512") == (768, 512)
    with pytest.raises(InvalidRequest, match="512x512"):
        parse_size("big")


def test_blocked_term_is_named_and_matches_whole_words_ignoring_case_and_width() -> None:
    with pytest.raises(InvalidRequest, match='blocked term "gore"'):
        check_blocked_terms("A scene with GORE everywhere", ["gore"])
    with pytest.raises(InvalidRequest, match='"nsfw"'):
        check_blocked_terms("ｎｓｆｗ art", ["nsfw"])
    check_blocked_terms("a classic gorilla", ["ass", "gore"])  # no partial-word matches
    check_blocked_terms("anything", ["", "  "])


def test_quality_is_stored_with_the_request_and_read_back() -> None:
    req = GenerationRequest(prompt="a cat", quality=Quality.HIGH)
    assert req.to_dict()["quality"] == "high"
    assert GenerationRequest.from_dict(req.to_dict()).quality is Quality.HIGH


def test_a_row_stored_before_quality_existed_reads_as_auto() -> None:
    old_row = GenerationRequest(prompt="a cat").to_dict()
    del old_row["quality"]
    assert GenerationRequest.from_dict(old_row).quality is Quality.AUTO


def test_an_unknown_quality_says_which_ones_exist() -> None:
    with pytest.raises(InvalidRequest, match="quality 'ultra': use one of auto, low, medium, "
                                             "high") as info:
        GenerationRequest.from_dict({"prompt": "a cat", "quality": "ultra"})
    assert info.value.field == "quality"
    with pytest.raises(InvalidRequest, match="Unknown quality"):
        GenerationRequest(prompt="a cat", quality="high")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["²x2", "512x٥١٢", "9" * 5000 + "x512", "512x512x512", "", "x"])
def test_a_size_that_is_not_two_plain_numbers_is_refused_with_the_format(text: str) -> None:
    with pytest.raises(InvalidRequest, match="Size must look like 512x512"):
        parse_size(text)


@given(st.text(max_size=60))
def test_any_size_text_parses_or_is_refused_clearly(text: str) -> None:
    try:
        width, height = parse_size(text)
    except InvalidRequest:
        return
    assert 0 <= width < 10**6 and 0 <= height < 10**6
