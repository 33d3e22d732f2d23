from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_app.store.a1111 import (
    MAX_PARAMETERS_CHARS,
    MetadataError,
    _pairs,
    a1111_parameters,
    parse_a1111_parameters,
    quote,
)


def test_exact_a1111_infotext_layout() -> None:
    text = a1111_parameters("a cat on a mat", "blurry", 20, "Euler a", 7.0, 1, 512, 512,
                            "sd15")
    assert text == ("a cat on a mat\nNegative prompt: blurry\n"
                    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, "
                    "Model: sd15")


def test_no_negative_prompt_line_when_empty_and_fractional_cfg() -> None:
    text = a1111_parameters("x", "", 30, "DPM++ 2M", 7.5, 42, 768, 512, "m")
    assert text == ("x\nSteps: 30, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 42, Size: 768x512, "
                    "Model: m")


def test_values_with_commas_colons_or_newlines_are_json_quoted_as_a1111_does() -> None:
    assert quote("plain") == "plain"
    assert quote("a, b") == '"a, b"'
    assert quote("org/model:v2") == '"org/model:v2"'
    assert quote("two\nlines") == '"two\\nlines"'
    text = a1111_parameters("p", "", 1, None, None, None, 64, 64, "hf:org/model",
                            {"Provider": "local", "Note": 'say "hi", then: go'})
    assert text.splitlines()[-1] == (
        'Steps: 1, Size: 64x64, Model: "hf:org/model", Provider: local, '
        'Note: "say \\"hi\\", then: go"')


def test_cloud_style_parameters_leave_out_unknown_values() -> None:
    text = a1111_parameters("a fox", "", None, None, None, None, 1024, 1024, "gpt-image-1",
                            {"Provider": "openai"})
    assert text == "a fox\nSize: 1024x1024, Model: gpt-image-1, Provider: openai"
    assert parse_a1111_parameters(text)["Prompt"] == "a fox"


@pytest.mark.parametrize(("prompt", "negative"), [
    ("a cat, sitting: on a mat", "lowres, bad hands: extra"),
    ("line one\nline two, with comma\nSteps: like a staircase", "neg one\nneg two"),
    ("東京の夜景、ネオン: 雨", "ぼやけた"),
    ("emoji 🦊 and quotes \"here\"", ""),
    ("(masterpiece:1.2), [best quality], <lora:x:0.5>", "(worst quality:1.4)"),
])
def test_round_trip_keeps_prompt_negative_and_numbers(prompt: str, negative: str) -> None:
    text = a1111_parameters(prompt, negative, 25, "Euler a", 6.5, 123456789, 640, 384,
                            "builtin:tiny", {"Provider": "local"})
    parsed = parse_a1111_parameters(text)
    assert parsed["Prompt"] == prompt
    assert parsed["Negative prompt"] == negative
    assert (parsed["Steps"], parsed["Seed"], parsed["Size"], parsed["CFG scale"]) == (
        "25", "123456789", "640x384", "6.5")
    assert parsed["Model"] == "builtin:tiny"


def test_parses_another_tools_infotext() -> None:
    text = ("masterpiece, 1girl, looking at viewer\n"
            "Negative prompt: (worst quality, low quality:1.4), EasyNegative\n"
            "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 3337410958, "
            "Size: 512x768, Model hash: 7f96a1a9ca, Model: AnythingV5, "
            "Denoising strength: 0.5, Clip skip: 2, "
            'Lora hashes: "add_detail: 7c6bad76eb54", Version: v1.6.0')
    parsed = parse_a1111_parameters(text)
    assert parsed["Prompt"] == "masterpiece, 1girl, looking at viewer"
    assert parsed["Negative prompt"] == "(worst quality, low quality:1.4), EasyNegative"
    assert parsed["Seed"] == "3337410958"
    assert parsed["Lora hashes"] == "add_detail: 7c6bad76eb54"
    assert parsed["Version"] == "v1.6.0"


def test_text_without_a_parameters_line_is_all_prompt() -> None:
    parsed = parse_a1111_parameters("just a caption\nwith two lines")
    assert parsed == {"Prompt": "just a caption\nwith two lines", "Negative prompt": ""}


def test_extra_keys_that_would_break_the_format_are_refused() -> None:
    for key in ("a,b", "x", "Key: y", "Prompt", "Seed"):
        with pytest.raises(ValueError):
            a1111_parameters("p", "", 1, None, None, 1, 64, 64, "m", {key: "v"})


# A1111's own pattern (modules/infotext_utils.py): the reference our linear parser
# must agree with. Run only on short strings here: it is quadratic on long ones.
A1111_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


@settings(max_examples=600, deadline=1000)
@given(st.text(alphabet='ab _-/:,"\\\té1\u00a0', max_size=24))
def test_parameters_line_is_read_exactly_as_a1111_reads_it(line: str) -> None:
    assert _pairs(line) == A1111_PARAM.findall(line)


@pytest.mark.timeout(20)  # the regex took hours on this; the parser takes milliseconds
@pytest.mark.parametrize("unit", ["a", "ab cd ", "a,", "x:", '"', 'ab: "\\", '])
def test_a_long_last_line_is_parsed_in_linear_time(unit: str) -> None:
    line = (unit * MAX_PARAMETERS_CHARS)[:MAX_PARAMETERS_CHARS - 20]
    parsed = parse_a1111_parameters(f"a prompt\n{line}")
    assert parsed["Prompt"].startswith("a prompt")


def test_parameters_text_over_the_limit_is_a_metadata_error() -> None:
    with pytest.raises(MetadataError, match="characters long"):
        parse_a1111_parameters("p" * (MAX_PARAMETERS_CHARS + 1))
