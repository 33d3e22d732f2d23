"""Automatic1111's "infotext": the ``parameters`` text that A1111's PNG Info tab,
Civitai, ComfyUI loaders and most image tools read.

Format (modules/processing.py ``create_infotext``)::

    <prompt, any number of lines>
    Negative prompt: <negative prompt, any number of lines>     (only when non-empty)
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model: x

A value holding a comma, a colon or a line break is JSON-quoted
(``infotext_utils.quote``). A reader takes the LAST line as the parameters line
when it holds at least three ``key: value`` pairs (``parse_generation_parameters``).

The text comes from files, so it is untrusted: it is parsed in time linear in
its length (A1111's own regex, run with ``findall``, retries from every offset of
a long line without a colon and takes quadratic time: 64 KB took a minute) and
texts longer than ``MAX_PARAMETERS_CHARS`` are refused with ``MetadataError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from desktop_app.domain.image_work import ImageWork, Inpaint, Outpaint, Upscale
from desktop_app.store.database import StoreError

# A1111's pattern is r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)'; ``_pairs``
# matches exactly what its ``findall`` matches, with the pieces below, each run once
# per position and never retried from inside a span already seen.
_SPACE = re.compile(r"\s*")  # after the colon
_KEY_RUN = re.compile(r"\w[\w \-/]*")
_QUOTED = re.compile(r'"(?:\\.|[^\\"])++"')  # possessive: no backtracking
_KEY = re.compile(r"^\w[\w \-/]+$")
NEGATIVE = "Negative prompt:"
# Far above any real infotext (a few KB, tens with long prompts and extension
# fields) and small enough that the most hostile one parses in a fraction of a
# second (bench/bench_metadata.py).
MAX_PARAMETERS_CHARS = 128 * 1024


class MetadataError(StoreError):
    """An image file's metadata cannot be used; the message says which part and why."""


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


DENOISING_STRENGTH = "Denoising strength"
MASK_BLUR = "Mask blur"
HIRES_UPSCALE = "Hires upscale"


def work_fields(work: ImageWork | None) -> dict[str, str]:
    """The infotext keys A1111 writes for work on an existing image, in its order.

    img2img and inpaint (``StableDiffusionProcessingImg2Img.init``) add
    ``Denoising strength`` and, for a mask blurred by more than 0 pixels,
    ``Mask blur``; outpainting (its "outpainting mk2" script) is an inpaint of the
    padded canvas and writes the same. An upscale is A1111's "hires fix":
    ``Hires upscale`` with the second pass's ``Denoising strength``, and ``Size``
    then names the size before the upscale (``a1111_parameters``' caller writes
    the source's size). Values are written as A1111's UI sends them: 0.75, 1, 2."""
    if work is None:
        return {}
    fields = {DENOISING_STRENGTH: format_number(work.strength)}
    if isinstance(work, Inpaint | Outpaint) and work.mask_blur > 0:
        fields[MASK_BLUR] = str(work.mask_blur)
    if isinstance(work, Upscale):  # an extra parameter: after Denoising strength
        fields[HIRES_UPSCALE] = format_number(work.scale)
    return fields


def parse_a1111_parameters(text: str) -> dict[str, str]:
    """Inverse of ``a1111_parameters``, by A1111's rules, for any tool's infotext.

    Returns ``{"Prompt": ..., "Negative prompt": ..., "Steps": "20", "Size": "512x512",
    ...}`` with values unquoted; keys as written (A1111's spelling). Raises
    ``MetadataError`` for a text over ``MAX_PARAMETERS_CHARS``."""
    if len(text) > MAX_PARAMETERS_CHARS:
        raise MetadataError(f"its parameters text is {len(text):,} characters long "
                            f"(at most {MAX_PARAMETERS_CHARS:,} are read)")
    *lines, last = text.strip().split("\n")
    pairs = _pairs(last)
    if len(pairs) < 3:
        lines.append(last)
        pairs = []
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
    for key, value in pairs:
        result[key] = unquote(value.strip()) if value.startswith('"') else value.strip()
    return result


def _pairs(line: str) -> list[tuple[str, str]]:
    """``_PARAM.findall(line)`` of A1111's pattern, in linear time.

    Where the regex fails at an offset inside a run of key characters, it fails
    at every later offset of that run too (the run ends at the same character,
    which is not a colon), so the scan jumps past the run instead of retrying;
    an offset that is not a word character (after spaces) fails at once."""
    found: list[tuple[str, str]] = []
    pos, end = 0, len(line)
    while pos < end:
        # Every offset before the next word character fails: skip to it.
        run = _KEY_RUN.search(line, pos)
        if run is None:
            break
        start, colon = run.span()
        if colon - start < 2 or colon >= end or line[colon] != ":":
            pos = max(pos + 1, colon)
            continue
        value_at = _SPACE.match(line, colon + 1).end()  # type: ignore[union-attr]
        quoted = _QUOTED.match(line, value_at)
        if quoted is not None and (quoted.end() == end or line[quoted.end()] == ","):
            value_end = quoted.end()
        else:
            comma = line.find(",", value_at)
            value_end = end if comma < 0 else comma
        found.append((line[start:colon], line[value_at:value_end]))
        pos = value_end + 1
    return found
