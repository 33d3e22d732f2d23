"""LoRAs and textual-inversion embeddings, written in the prompt as Automatic1111's
users write them.

- ``<lora:name>`` or ``<lora:name:0.8>`` (A1111's ``<lyco:...>`` is the same):
  the LoRA whose file is ``name.safetensors`` in the model library, at that
  weight (1 when none is written); ``<lora:name:0.8:0.5>`` (or ``te=``/``unet=``)
  weighs the text encoder and the UNet apart, as A1111 does. The tag stays in
  the prompt as written (and in the infotext, as A1111 keeps it); the text
  encoder gets the prompt without it (``PromptLoras.text``).
- An embedding is used by writing its file's name as a word of the prompt or the
  negative prompt (``embedding_words``), as in A1111.

The prompt is untrusted text (pasted, recalled from files, sent to the API):
``parse_loras`` reads it in one pass, in time linear in its length, and ends in
a value or an ``InvalidRequest`` saying which tag is wrong and how to write it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

from desktop_app.domain.errors import InvalidRequest

TAG_KINDS = ("lora", "lyco")  # A1111 registers "lyco" as another name of "lora"
MAX_LORAS = 20
MAX_NAME_CHARS = 200
MAX_WEIGHT = 10.0  # A1111 takes any number; |w| > 10 only burns the image
_SHOWN = 60
# what cannot be part of an embedding's name as a prompt word
_WORD_BREAKS = frozenset(" \t\n\r,()[]{}<>:|\"'")


@dataclasses.dataclass(frozen=True)
class LoraTag:
    """One ``<lora:name:weight>`` of the prompt."""

    name: str
    weight: float = 1.0  # the text encoder's, and the UNet's unless ``unet_weight``
    unet_weight: float | None = None

    @property
    def unet(self) -> float:
        return self.weight if self.unet_weight is None else self.unet_weight

    @property
    def written(self) -> str:
        unet = "" if self.unet_weight is None else f":{self.unet_weight!r}"
        return f"<lora:{self.name}:{self.weight!r}{unet}>"


@dataclasses.dataclass(frozen=True)
class PromptLoras:
    text: str  # the prompt without its LoRA tags: what the text encoder reads
    loras: tuple[LoraTag, ...]


def parse_loras(prompt: str) -> PromptLoras:
    """The LoRA tags of ``prompt`` and the prompt without them (one pass)."""
    out: list[str] = []
    loras: list[LoraTag] = []
    pos, end = 0, len(prompt)
    while pos < end:
        start = prompt.find("<", pos)
        if start < 0:
            out.append(prompt[pos:])
            break
        out.append(prompt[pos:start])
        kind = next((k for k in TAG_KINDS if prompt.startswith(f"<{k}:", start)), None)
        if kind is None:
            out.append("<")
            pos = start + 1
            continue
        body_at = start + len(kind) + 2
        close = prompt.find(">", body_at)
        # A1111's pattern <(\w+):([^>]+)> stops a tag at the first ">"; a "<" inside it
        # means the ">" belongs to something else
        opened = prompt.find("<", body_at)
        if close < 0 or (0 <= opened < close):
            raise InvalidRequest(f"The LoRA tag {_shown(prompt[start:start + _SHOWN])} is not "
                                 f"closed: write it as <{kind}:name:0.8>.", field="prompt")
        loras.append(_tag(prompt[body_at:close], kind))
        if len(loras) > MAX_LORAS:
            raise InvalidRequest(f"The prompt names more than {MAX_LORAS} LoRAs; use fewer.",
                                 field="prompt")
        pos = close + 1
    names = [tag.name for tag in loras]
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise InvalidRequest(f"The LoRA {twice!r} is named twice in the prompt; keep one tag "
                             "with the weight you want.", field="prompt")
    return PromptLoras(_tidy("".join(out)), tuple(loras))


def without_loras(prompt: str) -> str:
    return parse_loras(prompt).text


def _tag(body: str, kind: str) -> LoraTag:
    """A1111's arguments: ``name[:te[:unet]]``, or ``te=`` / ``unet=`` by name; the UNet
    weight is the text encoder's unless given (extensions-builtin/Lora)."""
    parts = body.split(":")
    name = parts[0].strip()
    written = f"<{kind}:{body}>"
    if not name:
        raise InvalidRequest(f"The LoRA tag {_shown(written)} has no name: write "
                             f"<{kind}:name:0.8>.", field="prompt")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidRequest(f"The LoRA name in {_shown(written)} is longer than "
                             f"{MAX_NAME_CHARS} characters.", field="prompt")
    positional: list[str] = []
    named: dict[str, str] = {}
    for arg in parts[1:]:
        if "=" in arg:
            key, _, value = arg.partition("=")
            if key.strip() not in ("te", "unet"):
                raise InvalidRequest(f"The LoRA tag {_shown(written)} sets {key.strip()!r}; "
                                     "ImageDesk takes te= and unet= weights only.",
                                     field="prompt")
            named[key.strip()] = value
        else:
            positional.append(arg)
    if len(positional) > 2:
        raise InvalidRequest(f"The LoRA tag {_shown(written)} has more than two weights "
                             "(ImageDesk does not take A1111's dyn dimension): write "
                             f"<{kind}:{name}:0.8> or <{kind}:{name}:0.8:0.6>.",
                             field="prompt")
    te_text = named.get("te", positional[0] if positional else "")
    te = _weight(te_text, written, kind, name) if te_text.strip() else 1.0
    unet_text = named.get("unet", positional[1] if len(positional) > 1 else "")
    unet = _weight(unet_text, written, kind, name) if unet_text.strip() else None
    return LoraTag(name, te, None if unet == te else unet)


def _weight(text: str, written: str, kind: str, name: str) -> float:
    text = text.strip()
    try:
        if len(text) > 32:
            raise ValueError(text)
        weight = float(text)
    except ValueError:
        raise InvalidRequest(f"The weight in {_shown(written)} is not a number: write it "
                             f"like <{kind}:{name}:0.8>.", field="prompt") from None
    if not math.isfinite(weight) or abs(weight) > MAX_WEIGHT:
        raise InvalidRequest(f"The weight in {_shown(written)} must be between "
                             f"-{MAX_WEIGHT:g} and {MAX_WEIGHT:g}.", field="prompt")
    return weight + 0.0  # -0.0 reads as 0


def _tidy(text: str) -> str:
    """Spaces and commas a removed tag leaves doubled are what A1111 leaves too; only
    the ends are trimmed."""
    return text.strip()


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "…")


def prompt_words(text: str) -> Iterable[str]:
    """The words of a prompt as an embedding name can appear in it (lower case):
    split at spaces and A1111's punctuation, so ``(easynegative:1.2)`` holds
    ``easynegative``."""
    word: list[str] = []
    for ch in text:
        if ch in _WORD_BREAKS:
            if word:
                yield "".join(word).lower()
                word = []
        else:
            word.append(ch)
    if word:
        yield "".join(word).lower()


def embedding_words(texts: Iterable[str], names: Iterable[str]) -> list[str]:
    """Which of ``names`` (embeddings by file name) appear as words in ``texts``, in
    the order of ``names``; compared without case, as CLIP lower-cases prompts."""
    words: set[str] = set()
    for text in texts:
        words.update(prompt_words(text))
    return [name for name in names if name.lower() in words]
