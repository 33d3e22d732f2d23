"""Automatic1111's "infotext": the ``parameters`` text that A1111's PNG Info tab,
Civitai, ComfyUI loaders and most image tools read.

Format (modules/processing.py ``create_infotext``)::

    <prompt, any number of lines>
    Negative prompt: <negative prompt, any number of lines>     (only when non-empty)
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model: x

A value holding a comma, a colon or a line break is JSON-quoted
(``infotext_utils.quote``). A reader takes the LAST line as the parameters line
when it holds at least three ``key: value`` pairs (``parse_generation_parameters``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

# A1111's own pattern, kept verbatim so we parse exactly what it parses.
_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_KEY = re.compile(r"^\w[\w \-/]+$")
NEGATIVE = "Negative prompt:"


def quote(value: object) -> str:
    """A1111's ``quote``: JSON-quote a value holding ``,``, ``:`` or a line break."""
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def unquote(text: str) -> str:
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str) else text


def format_number(value: float) -> str:
    """``7.0`` -> ``7``, ``7.5`` -> ``7.5``: how A1111's UI values read."""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def a1111_parameters(prompt: str, negative_prompt: str = "", steps: int | None = None,
                     sampler: str | None = None, cfg_scale: float | None = None,
                     seed: int | None = None, width: int | None = None,
                     height: int | None = None, model: str | None = None,
                     extra: Mapping[str, str] | None = None) -> str:
    """The infotext for one image; ``None`` values are left out, as A1111 does."""
    pairs: dict[str, str | None] = {
        "Steps": None if steps is None else str(int(steps)),
        "Sampler": sampler or None,
        "CFG scale": None if cfg_scale is None else format_number(cfg_scale),
        "Seed": None if seed is None else str(int(seed)),
        "Size": f"{int(width)}x{int(height)}" if width and height else None,
        "Model": model or None,
    }
    for key, value in (extra or {}).items():
        if not _KEY.match(key) or key in pairs or key in ("Prompt", "Negative prompt"):
            raise ValueError(f"{key!r} cannot be an infotext key")
        pairs[key] = value
    line = ", ".join(f"{k}: {quote(v)}" for k, v in pairs.items() if v is not None and v != "")
    negative = f"\n{NEGATIVE} {negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative}\n{line}".strip()


def parse_a1111_parameters(text: str) -> dict[str, str]:
    """Inverse of ``a1111_parameters``, by A1111's rules, for any tool's infotext.

    Returns ``{"Prompt": ..., "Negative prompt": ..., "Steps": "20", "Size": "512x512",
    ...}`` with values unquoted; keys as written (A1111's spelling)."""
    *lines, last = text.strip().split("\n")
    if len(_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for raw in lines:
        line = raw.strip()
        if line.startswith(NEGATIVE):
            in_negative = True
            line = line[len(NEGATIVE):].strip()
        (negative if in_negative else prompt).append(line)
    result = {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative)}
    for key, value in _PARAM.findall(last):
        result[key] = unquote(value.strip()) if value.startswith('"') else value.strip()
    return result
