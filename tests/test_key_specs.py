"""Whatever is pasted as a key, every registered provider's check ends in the key
or in ``InvalidKey`` with a message that never repeats it (pasted text is
untrusted input)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_app.providers import registry
from desktop_app.secrets import InvalidKey, validate_key

KEYED = [d.name for d in registry.with_keys()]


@pytest.mark.parametrize("provider", KEYED)
@settings(deadline=200, max_examples=300)
@given(text=st.text(max_size=600) | st.from_regex(r"sk-[A-Za-z0-9_\-]{0,80}\s?", fullmatch=True))
def test_any_pasted_text_is_a_key_or_a_clear_refusal(provider: str, text: str) -> None:
    try:
        key = validate_key(provider, text)
    except InvalidKey as error:
        assert error.message.startswith(("The ", "An ", "This "))
        secret = text.strip()
        if len(secret) >= 8:
            assert secret not in error.message
        return
    assert key == text.strip() and key and key.isprintable() and "\n" not in key


def test_every_key_spec_names_its_environment_variable() -> None:
    variables = [d.key.env_variable for d in registry.with_keys() if d.key is not None]
    assert len(set(variables)) == len(variables) == len(KEYED)
