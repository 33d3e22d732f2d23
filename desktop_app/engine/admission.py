"""What a request must pass before it is queued, and which jobs are private.

A blocked term, a wildcard that names no file or an input image that is not stored
is refused at submit time, before anything is stored, and so is what an enabled
local provider the job may run on refuses ahead (``ChecksBeforeQueue``: a LoRA the
prompt names that is not installed). A prompt holding one of the
user's private terms, or a source image from a private folder (or a private job's
image), marks the job private: the mark is recorded on the queued job, so it holds
through restarts and failover (the router keeps such a job on this machine).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal

from desktop_app.domain.content_filter import check_blocked_terms, find_term
from desktop_app.domain.errors import InvalidRequest
from desktop_app.domain.request import GenerationRequest, ImageRef
from desktop_app.engine.prompt_expansion import PromptExpander
from desktop_app.engine.router import mode_allows
from desktop_app.engine.slots import ProviderSlot
from desktop_app.providers.base import ChecksBeforeQueue, ProviderKind
from desktop_app.store.input_images import InputImages


class Admission:
    """The rules a request meets at submit time (``apply`` replaces them)."""

    def __init__(self, *, prompts: PromptExpander, inputs: InputImages | None,
                 slots: Callable[[], Iterable[ProviderSlot]],
                 blocked_terms: Sequence[str] = (), private_terms: Sequence[str] = (),
                 private_folders: Sequence[Path] = ()) -> None:
        self._prompts = prompts
        self._inputs = inputs
        self._slots = slots  # the slots in use now (they change with ``Engine.apply``)
        self.apply(blocked_terms, private_terms, private_folders)

    def apply(self, blocked_terms: Sequence[str], private_terms: Sequence[str],
              private_folders: Sequence[Path]) -> None:
        self._blocked_terms = list(blocked_terms)
        self._private_terms = list(private_terms)
        self._private_folders = list(private_folders)

    async def check(self, request: GenerationRequest) -> GenerationRequest:
        """The request as it is queued (marked private where a rule says so), or
        ``InvalidRequest`` saying what to fix."""
        check_blocked_terms(request.prompt, self._blocked_terms)
        await self._prompts.check(request)  # a wildcard that names no file is refused now
        request = self._privacy_rules(request)
        await self._local_checks(request)
        for ref in request.input_images:  # refused now, not when it runs
            if self._inputs is None or not self._inputs.has(ref):
                raise InvalidRequest(f"The input image {ref.sha256[:12]}… is not stored; add it "
                                     "with Engine.add_input_image first.", field="work")
        return request

    async def _local_checks(self, request: GenerationRequest) -> None:
        """What this machine's provider refuses before a job is queued (a LoRA the
        prompt names that is not installed), when the job may run on it."""
        policy = request.policy
        for slot in self._slots():
            if (slot.kind is ProviderKind.LOCAL and slot.enabled
                    and isinstance(slot.provider, ChecksBeforeQueue)
                    and mode_allows(policy.mode, slot.kind)
                    and policy.provider in (None, slot.name)):
                await slot.provider.check_before_queue(request)

    def _privacy_rules(self, request: GenerationRequest) -> GenerationRequest:
        if request.policy.private:
            return request
        private = any(find_term(text, self._private_terms) is not None
                      for text in (request.prompt, request.negative_prompt))
        if self._inputs is not None:
            private = private or any(self._inputs.is_private(ref)
                                     for ref in request.input_images)
        if private:
            return request.replace(policy=dataclasses.replace(request.policy, private=True))
        return request

    async def add_input_image(self, image: Path | bytes, role: Literal["source", "mask"],
                              gallery_id: int | None = None, *,
                              private: bool = False) -> ImageRef:
        """Store a source image or mask; one from a private folder (or ``private``)
        is marked private, and so are the jobs that use it."""
        if self._inputs is None:
            raise InvalidRequest("This engine has no input image store.", field="work")
        inputs = self._inputs
        if isinstance(image, bytes):
            ref = await asyncio.to_thread(inputs.add, image, role, gallery_id=gallery_id)
        else:
            ref = await asyncio.to_thread(inputs.add_file, image, role, gallery_id)
            private = private or self._in_private_folder(image)
        if private:
            await asyncio.to_thread(inputs.mark_private, ref)
        return ref

    def _in_private_folder(self, path: Path) -> bool:
        try:
            where = path.resolve()
        except (OSError, RuntimeError):
            return True  # cannot tell: fail closed
        return any(where.is_relative_to(folder.expanduser().resolve())
                   for folder in self._private_folders)
