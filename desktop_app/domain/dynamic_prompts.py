"""Dynamic prompts: ``{red|green|blue}`` picks one option, ``__name__`` draws a line
from the wildcard file ``name.txt`` — the syntax Automatic1111's Dynamic Prompts
extension taught our users.

The choice is derived from the job's seed, so the same seed gives the same
expansion (and the same picture). A brace group without ``|`` is left as written
(NovelAI-style emphasis such as ``{masterpiece}`` keeps working). Options and
wildcard lines may themselves hold groups and wildcards; expansion is bounded in
depth and size, so a wildcard file that names itself ends in a clear error.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable, Sequence

from desktop_app.domain.errors import InvalidRequest

WILDCARD = re.compile(r"__([A-Za-z0-9][A-Za-z0-9_\-/]{0,99}?)__")
MAX_DEPTH = 10  # wildcards within wildcards
MAX_EXPANDED_CHARS = 32_000  # the longest prompt a request takes

Lines = Callable[[str], Sequence[str]]  # wildcard name -> its lines (raises if unknown)


class WildcardError(InvalidRequest):
    """A wildcard that names no file, or a file that cannot serve (say which, and where)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="prompt")


def is_dynamic(text: str) -> bool:
    """Whether ``text`` holds a wildcard or an option group to expand."""
    if WILDCARD.search(text):
        return True
    return any(isinstance(node, _Group) for node in _walk(_parse(text)))


def wildcard_names(text: str) -> list[str]:
    """The wildcard names written in ``text`` itself (not those inside wildcard files)."""
    return [match.group(1) for match in WILDCARD.finditer(text)]


def expand(template: str, seed: int, lines: Lines) -> str:
    """The prompt ``template`` becomes for ``seed``: every group and wildcard chosen."""
    rng = random.Random(f"imagedesk-dynamic-prompt:{seed}")
    return _expand(template, rng, lines, depth=0)


def _expand(text: str, rng: random.Random, lines: Lines, depth: int) -> str:
    if depth > MAX_DEPTH:
        raise WildcardError(f"Wildcards nest deeper than {MAX_DEPTH} levels; does a "
                            "wildcard file name itself?")
    chosen = _render(_parse(text), rng)  # options first, then the wildcards they leave
    out: list[str] = []
    size = 0
    position = 0
    for match in WILDCARD.finditer(chosen):
        drawn = _expand(_draw(match.group(1), rng, lines), rng, lines, depth + 1)
        out += [chosen[position:match.start()], drawn]
        size += match.start() - position + len(drawn)
        position = match.end()
        _check_size(size)
    out.append(chosen[position:])
    _check_size(size + len(chosen) - position)
    return "".join(out)


def _check_size(size: int) -> None:
    if size > MAX_EXPANDED_CHARS:
        raise WildcardError(f"The expanded prompt is longer than {MAX_EXPANDED_CHARS:,} "
                            "characters; shorten the wildcard files it draws from.")


def _draw(name: str, rng: random.Random, lines: Lines) -> str:
    choices = [line for line in lines(name) if line]
    if not choices:
        raise WildcardError(f"The wildcard __{name}__ has no lines to draw from.")
    return rng.choice(choices)


# The template as a tree, parsed in one pass: text, and groups whose options are
# sequences of nodes. Braces holding no top-level "|" stay text, as do unclosed ones.
@dataclasses.dataclass
class _Group:
    options: list[list[_Node]]


_Node = str | _Group
MAX_GROUP_NESTING = 20


@dataclasses.dataclass
class _Frame:
    options: list[list[_Node]] = dataclasses.field(default_factory=list)
    current: list[_Node] = dataclasses.field(default_factory=list)

    def as_text(self) -> list[_Node]:
        """What an unclosed or bar-less brace was: the text as written."""
        nodes: list[_Node] = ["{"]
        for option in self.options:
            nodes += [*option, "|"]
        return nodes + self.current


def _parse(text: str) -> list[_Node]:
    stack = [_Frame()]
    run: list[str] = []  # plain characters since the last brace or bar

    def flush() -> None:
        if run:
            stack[-1].current.append("".join(run))
            run.clear()

    for char in text:
        if char == "{":
            flush()
            if len(stack) > MAX_GROUP_NESTING:
                raise WildcardError(f"Option groups {{a|b}} nest deeper than "
                                    f"{MAX_GROUP_NESTING} levels.")
            stack.append(_Frame())
        elif char == "|" and len(stack) > 1:
            flush()
            stack[-1].options.append(stack[-1].current)
            stack[-1].current = []
        elif char == "}" and len(stack) > 1:
            flush()
            frame = stack.pop()
            if frame.options:
                stack[-1].current.append(_Group([*frame.options, frame.current]))
            else:
                stack[-1].current += [*frame.as_text(), "}"]
        else:
            run.append(char)
    flush()
    while len(stack) > 1:
        frame = stack.pop()
        stack[-1].current += frame.as_text()
    return stack[0].current


def _walk(nodes: list[_Node]) -> list[_Node]:
    found: list[_Node] = []
    pending = list(nodes)
    while pending:
        node = pending.pop()
        found.append(node)
        if isinstance(node, _Group):
            for option in node.options:
                pending += option
    return found


def _render(nodes: list[_Node], rng: random.Random) -> str:
    return "".join(node if isinstance(node, str) else _render(rng.choice(node.options), rng)
                   for node in nodes)
