"""Styles: named prompt and negative-prompt templates, applied as Automatic1111 applies
them. A style's text holding ``{prompt}`` wraps the user's prompt there; a style
without it is added after the prompt, joined by ", ". Several styles apply in order.
"""

from __future__ import annotations

import dataclasses

from desktop_app.domain.errors import InvalidRequest

PLACEHOLDER = "{prompt}"
MAX_NAME_CHARS = 100


@dataclasses.dataclass(frozen=True)
class Style:
    name: str
    prompt: str = ""
    negative_prompt: str = ""

    def __post_init__(self) -> None:
        name = self.name.strip() if isinstance(self.name, str) else ""
        if not name or len(name) > MAX_NAME_CHARS or any(c in name for c in "\r\n\x00"):
            raise InvalidRequest(f"A style needs a name of 1 to {MAX_NAME_CHARS} characters on "
                                 "one line.", field="styles")
        object.__setattr__(self, "name", name)


def merge(prompt: str, style_text: str) -> str:
    """A1111's ``merge_prompts``: ``{prompt}`` in the style is replaced, else appended."""
    if PLACEHOLDER in style_text:
        return style_text.replace(PLACEHOLDER, prompt)
    return ", ".join(part for part in (prompt.strip(), style_text.strip()) if part)


def apply_styles(prompt: str, negative_prompt: str,
                 styles: list[Style]) -> tuple[str, str]:
    for style in styles:
        prompt = merge(prompt, style.prompt)
        negative_prompt = merge(negative_prompt, style.negative_prompt)
    return prompt, negative_prompt
