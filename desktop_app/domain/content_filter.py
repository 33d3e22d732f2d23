"""The user's own blocked-terms list, applied to a prompt before it is queued."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from desktop_app.domain.errors import InvalidRequest


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def check_blocked_terms(prompt: str, terms: Iterable[str]) -> None:
    """Raise ``InvalidRequest`` naming the first blocked term found as a whole word or phrase.

    Matching ignores case and Unicode width/compatibility forms, so "NSFW" and
    "ｎｓｆｗ" both match a blocked "nsfw"; "class" does not match a blocked "ass".
    Only the prompt is checked: the negative prompt is where users list what
    they want kept out.
    """
    folded = _fold(prompt)
    for term in terms:
        needle = _fold(term).strip()
        if not needle:
            continue
        if re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", folded):
            raise InvalidRequest(
                f'The prompt contains the blocked term "{term.strip()}" '
                "(your blocked-terms list in Settings). Remove it to continue.",
                field="prompt",
            )
