"""Wildcards and option groups in a job's prompts, expanded once its seed is known.

The queued job keeps the template; the run gets the expansion for its seed, so the
provider receives the expanded prompt and the same seed always gives the same one.
A template is checked when the job is submitted (every wildcard it names must exist),
so a typo is refused at once instead of failing the job later.
"""

from __future__ import annotations

import asyncio
import random

from desktop_app.domain import dynamic_prompts
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.failover import with_seed
from desktop_app.store.wildcards import WildcardFolder


class PromptExpander:
    def __init__(self, wildcards: WildcardFolder | None) -> None:
        self._wildcards = wildcards

    @staticmethod
    def is_template(request: GenerationRequest) -> bool:
        return (dynamic_prompts.is_dynamic(request.prompt)
                or dynamic_prompts.is_dynamic(request.negative_prompt))

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
        lines = self._wildcards.lines if self._wildcards else _no_wildcards
        return request.replace(
            prompt=dynamic_prompts.expand(request.prompt, seed, lines),
            negative_prompt=dynamic_prompts.expand(request.negative_prompt, seed + 1, lines))


def _no_wildcards(name: str) -> tuple[str, ...]:
    raise dynamic_prompts.WildcardError(f"__{name}__ names a wildcard, but this profile has "
                                        "no wildcards folder.")
