"""LoRA tags and embedding words in the prompt (domain/prompt_networks.py)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.prompt_networks import (
    MAX_LORAS,
    LoraTag,
    embedding_words,
    parse_loras,
)
from desktop_app.domain.request import GenerationRequest


def test_tags_are_read_and_removed_from_the_encoder_text_but_kept_in_the_prompt() -> None:
    request = GenerationRequest(prompt="a lighthouse <lora:film_grain:0.8>, dusk <lyco:Moody>")
    assert request.loras == (LoraTag("film_grain", 0.8), LoraTag("Moody", 1.0))
    assert request.prompt_for_encoder == "a lighthouse , dusk"
    assert "<lora:film_grain:0.8>" in request.prompt  # the infotext keeps it, as A1111's


def test_angle_brackets_that_are_not_lora_tags_stay_text() -> None:
    found = parse_loras("i <3 cats, <hypernet:x:1> and a < b > c")
    assert found.loras == ()
    assert found.text == "i <3 cats, <hypernet:x:1> and a < b > c"


@pytest.mark.parametrize(("prompt", "says"), [
    ("x <lora:>", "has no name"),
    ("x <lora:grain:strong>", "is not a number"),
    ("x <lora:grain:0.5:0.7:8>", "more than two weights"),
    ("x <lora:grain:dyn=8>", "te= and unet= weights only"),
    ("x <lora:grain:0.5", "is not closed"),
    ("x <lora:grain <lora:b>", "is not closed"),
    ("<lora:a> <lora:a:0.5>", "named twice"),
    ("<lora:a:11>", "between -10 and 10"),
    ("<lora:a:inf>", "between -10 and 10"),
])
def test_a_malformed_tag_is_refused_before_anything_is_queued(prompt: str, says: str) -> None:
    with pytest.raises(InvalidRequest, match=says) as caught:
        GenerationRequest(prompt=prompt)
    assert caught.value.field == "prompt"


def test_text_encoder_and_unet_weights_apart_as_a1111_reads_them() -> None:
    assert parse_loras("<lora:a:0.8:0.5>").loras == (LoraTag("a", 0.8, 0.5),)
    assert parse_loras("<lora:a:unet=0.3>").loras == (LoraTag("a", 1.0, 0.3),)
    assert parse_loras("<lora:a:te=0.2:unet=0.4>").loras == (LoraTag("a", 0.2, 0.4),)
    assert parse_loras("<lora:a:0.6:0.6>").loras[0].unet == 0.6


def test_too_many_loras_are_refused() -> None:
    prompt = " ".join(f"<lora:n{i}>" for i in range(MAX_LORAS + 1))
    with pytest.raises(InvalidRequest, match="more than"):
        parse_loras(prompt)


def test_embeddings_are_found_as_words_without_case() -> None:
    found = embedding_words(["(EasyNegative:1.2), bad-hands-5", "a cat"],
                            ["easynegative", "bad-hands-5", "cat_style", "a"])
    assert found == ["easynegative", "bad-hands-5", "a"]
    assert embedding_words(["catstyle"], ["cat"]) == []


TAGGY = st.text(alphabet=st.sampled_from(list("<>:lorayc.0123456789-e ,ab\n")), max_size=200)


# hostile shapes: a tag opened thousands of times, never closed (bounded by the deadline)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=1000)
@given(st.one_of(TAGGY, st.text(max_size=300)))
@example("<" * 32_000)
@example("<lora:" * 5_000)
@example("<lora:a>" * 20 + "<" * 30_000)
@example("<lora:" + "a" * 31_000)
def test_any_prompt_ends_in_tags_or_a_typed_error(prompt: str) -> None:
    try:
        found = parse_loras(prompt)
    except InvalidRequest as error:
        assert error.field == "prompt" and error.message
        return
    assert len(found.loras) <= MAX_LORAS
    for tag in found.loras:
        assert tag.name and -10 <= tag.weight <= 10
        # written back as a tag, it reads as the same LoRA
        assert parse_loras(tag.written).loras == (tag,)

