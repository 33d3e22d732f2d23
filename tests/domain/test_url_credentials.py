"""A URL's user name and password never survive ``hide_url_credentials``, whatever
characters they hold; the rest of the text is kept."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_app.domain.url_credentials import hide_url_credentials

# what a user name or password may hold: anything but the characters that end a word
USERINFO = st.text(st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc"),
                                 blacklist_characters="'\"<>`"), min_size=1, max_size=30,
                   ).filter(lambda text: not any(c.isspace() for c in text))


@given(user=USERINFO, password=USERINFO)
def test_any_user_name_and_password_are_hidden_and_the_host_is_kept(
        user: str, password: str) -> None:
    shown = hide_url_credentials(f"could not reach https://{user}:{password}@gw.example/v1 now")
    assert shown == "could not reach https://[redacted]@gw.example/v1 now"


@pytest.mark.parametrize(("text", "expected"), [
    ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
    ("https://api.openai.com/v1 and a@b.c", "https://api.openai.com/v1 and a@b.c"),
    ("'http://alice:pw@h/v1'", "'http://[redacted]@h/v1'"),
    ("HTTP://token@h", "HTTP://[redacted]@h"),
    ("a http://u:p@h and redis://:pw@r:6379/0", "a http://[redacted]@h and redis://[redacted]@r:6379/0"),
])
def test_only_the_user_info_of_each_url_goes(text: str, expected: str) -> None:
    assert hide_url_credentials(text) == expected
