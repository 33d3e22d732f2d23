"""Styles apply as Automatic1111 applies them."""

from __future__ import annotations

import pytest

from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.styles import Style, apply_styles, merge


def test_a_placeholder_wraps_the_prompt_and_a_style_without_one_is_appended() -> None:
    assert merge("a cat", "oil painting of {prompt}, detailed") == "oil painting of a cat, detailed"
    assert merge("a cat", "film grain") == "a cat, film grain"
    assert merge("", "film grain") == "film grain" and merge("a cat", "") == "a cat"


def test_several_styles_apply_in_order_to_both_prompts() -> None:
    styles = [Style("painted", "oil painting of {prompt}", "photo"),
              Style("grainy", "film grain", "{prompt}, blurry")]
    assert apply_styles("a cat", "lowres", styles) == (
        "oil painting of a cat, film grain", "lowres, photo, blurry")


@pytest.mark.parametrize("name", ["", "   ", "two\nlines", "x" * 101])
def test_a_style_needs_a_one_line_name(name: str) -> None:
    with pytest.raises(InvalidRequest, match="needs a name"):
        Style(name)
