"""A job's prompts as they run: its styles applied, then wildcards and option groups
expanded for its seed.

The queued job keeps what the user wrote (and the style names); the run gets the
result, so the provider receives the full prompt and the same seed always gives the
same one. Styles and wildcards are checked when the job is submitted (every style
and wildcard it names must exist), so a typo is refused at once instead of failing
the job later.
"""

from __future__ import annotations

import asyncio
import random

from desktop_app.domain import dynamic_prompts
from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.request import GenerationRequest
from desktop_app.domain.styles import apply_styles
from desktop_app.engine.failover import with_seed
from desktop_app.store.styles import StyleLibrary
from desktop_app.store.wildcards import WildcardFolder


class PromptExpander:
    def __init__(self, wildcards: WildcardFolder | None,
                 styles: StyleLibrary | None = None) -> None:
        self._wildcards = wildcards
        self._styles = styles

    @staticmethod
    def is_template(request: GenerationRequest) -> bool:
        return bool(request.styles) or dynamic_prompts.is_dynamic(request.prompt) \
            or dynamic_prompts.is_dynamic(request.negative_prompt)

    async def check(self, request: GenerationRequest) -> None:
        """Raise ``WildcardError`` (an ``InvalidRequest``) for a template that cannot expand."""
        if self.is_template(request):
            await asyncio.to_thread(self._expand, request, request.seed or 0)

    async def for_run(self, request: GenerationRequest, rng: random.Random) -> GenerationRequest:
        """The request as it runs: seeded, and its prompts expanded for that seed."""
        request = with_seed(request, rng)
        if not self.is_template(request):
            return request
        assert request.seed is not None
        return await asyncio.to_thread(self._expand, request, request.seed)

    def _expand(self, request: GenerationRequest, seed: int) -> GenerationRequest:
        prompt, negative = request.prompt, request.negative_prompt
        if request.styles:
            if self._styles is None:
                raise InvalidRequest("This job names styles, but this profile has no styles "
                                     "file.", field="styles")
            prompt, negative = apply_styles(prompt, negative,
                                            self._styles.get(request.styles))
        lines = self._wildcards.lines if self._wildcards else _no_wildcards
        return request.replace(
            prompt=dynamic_prompts.expand(prompt, seed, lines),
            negative_prompt=dynamic_prompts.expand(negative, seed + 1, lines))


def _no_wildcards(name: str) -> tuple[str, ...]:
    raise dynamic_prompts.WildcardError(f"__{name}__ names a wildcard, but this profile has "
                                        "no wildcards folder.")
