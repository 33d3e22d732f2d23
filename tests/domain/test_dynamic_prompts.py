"""Wildcards and option groups: the same seed gives the same prompt, bad ones say why."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop_app.domain.dynamic_prompts import WildcardError, expand, is_dynamic, wildcard_names

FILES = {"hair": ["red hair", "blue hair", "{long|short} green hair"],
         "colors/warm": ["amber", "crimson"], "empty": [], "loop": ["a __loop__"]}


def lines(name: str) -> list[str]:
    if name not in FILES:
        raise WildcardError(f"no {name}")
    return FILES[name]


def test_the_same_seed_gives_the_same_expansion_and_seeds_differ() -> None:
    template = "a {cat|dog|{big|small} bird} with __hair__ in __colors/warm__ light"
    by_seed = {seed: expand(template, seed, lines) for seed in range(40)}
    assert all(expand(template, seed, lines) == text for seed, text in by_seed.items())
    assert len(set(by_seed.values())) > 5  # the options really vary with the seed
    for text in by_seed.values():
        assert "{" not in text and "__" not in text and "|" not in text
        assert text.startswith("a ") and text.endswith(" light")


def test_every_option_is_reachable() -> None:
    seen = {expand("{red|green|blue}", seed, lines) for seed in range(60)}
    assert seen == {"red", "green", "blue"}


def test_braces_without_a_bar_and_unclosed_braces_stay_as_written() -> None:
    assert expand("{masterpiece}, (best:1.2) {a|b", 1, lines) == "{masterpiece}, (best:1.2) {a|b"
    assert not is_dynamic("{masterpiece}, [cat:dog:0.5], (x)")
    assert is_dynamic("{a|b}") and is_dynamic("__hair__")
    assert wildcard_names("__hair__ and __colors/warm__") == ["hair", "colors/warm"]


def test_an_empty_option_is_allowed() -> None:
    assert {expand("cat{| with a hat}", seed, lines) for seed in range(30)} == {
        "cat", "cat with a hat"}


@pytest.mark.parametrize(("template", "message"), [
    ("__nothere__", "no nothere"),
    ("__empty__", "__empty__ has no lines"),
    ("__loop__", "nest deeper than 10"),
    ("{" * 30 + "a|b" + "}" * 30, "nest deeper than 20"),
])
def test_a_template_that_cannot_expand_says_why(template: str, message: str) -> None:
    with pytest.raises(WildcardError, match=message):
        expand(template, 1, lines)


def test_an_expansion_that_grows_past_the_prompt_limit_is_refused() -> None:
    big = {"big": ["x" * 20_000]}
    with pytest.raises(WildcardError, match="longer than 32,000"):
        expand("__big__ __big__", 1, lambda name: big[name])


_text = st.text(alphabet="{}|_ab ", max_size=400)


@settings(max_examples=300, deadline=timedelta(seconds=2),
          suppress_health_check=[HealthCheck.too_slow])
@given(_text, st.integers(0, 2**32 - 1))
def test_any_template_expands_or_says_why_in_bounded_time(template: str, seed: int) -> None:
    try:
        text = expand(template, seed, lambda name: ["w"])
    except WildcardError as error:
        assert str(error)
        return
    assert text == expand(template, seed, lambda name: ["w"])


def test_a_hostile_template_is_handled_in_linear_time() -> None:
    # one pass over the text: 30,000 unbalanced braces must not cost a quadratic scan
    assert expand("}" * 15_000 + "{a" * 15, 1, lines).startswith("}}}")
    assert expand("{a|" * 15 + "b", 1, lines) == "{a|" * 15 + "b"
