"""The user's own blocked-terms list, applied to a prompt before it is queued."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from desktop_app.domain.errors import InvalidRequest


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def find_term(prompt: str, terms: Iterable[str]) -> str | None:
    """The first of ``terms`` in ``prompt`` as a whole word or phrase (ignoring case and
    Unicode width/compatibility forms), as the user wrote it; None if there is none."""
    folded = _fold(prompt)
    for term in terms:
        needle = _fold(term).strip()
        if needle and re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", folded):
            return term.strip()
    return None


def check_blocked_terms(prompt: str, terms: Iterable[str]) -> None:
    """Raise ``InvalidRequest`` naming the first blocked term found as a whole word or phrase.

    Matching ignores case and Unicode width/compatibility forms, so "NSFW" and
    "ｎｓｆｗ" both match a blocked "nsfw"; "class" does not match a blocked "ass".
    Only the prompt is checked: the negative prompt is where users list what
    they want kept out.
    """
    term = find_term(prompt, terms)
    if term is not None:
        raise InvalidRequest(
            f'The prompt contains the blocked term "{term}" '
            "(your blocked-terms list in Settings). Remove it to continue.",
            field="prompt",
        )
