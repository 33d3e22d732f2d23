"""The editor's fields follow the chosen model's family (issue 14.1): an SDXL model
starts jobs at 1024 px with SDXL's guidance and negative prompt, an SD 1.x one at
512 px — except the fields the user changed, which stay as the user left them."""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtWidgets import QDoubleSpinBox, QPlainTextEdit, QSpinBox

from desktop_app.providers import registry

ModelChoice = tuple[str, str, str | None]  # name, path, short hash (None: not known yet)


@dataclasses.dataclass(frozen=True)
class JobDefaults:
    """What a new job on one model starts with (its family's defaults)."""

    width: int
    height: int
    guidance: float
    negative_prompt: str


def family_job_defaults(family: str) -> JobDefaults:
    """A family's defaults (the local provider's capabilities) as the editor's fields."""
    found = registry.local_family_defaults(family)
    width, height = found.size
    return JobDefaults(width, height, found.guidance, found.negative_prompt)


def model_choices(library: Any, settings_family: str
                  ) -> tuple[list[ModelChoice], dict[str | None, JobDefaults]]:
    """The editor's Model list from a library scan (its loadable checkpoints) and each
    one's family defaults; ``None`` is the model in Settings, of ``settings_family``."""
    entries = [e for e in getattr(library, "entries", ())
               if e.kind == "checkpoint" and e.loadable]
    defaults: dict[str | None, JobDefaults] = {
        str(e.path): family_job_defaults(e.family) for e in entries}
    defaults[None] = family_job_defaults(settings_family)
    return [(e.name, str(e.path), e.hash) for e in entries], defaults


class DefaultsFollower:
    """Puts a model's defaults into the size, guidance and negative-prompt fields that
    still hold what was put there last (by this, or the editor's first values): a
    field whose value differs was changed by the user and is left alone."""

    def __init__(self, width: QSpinBox, height: QSpinBox, guidance: QDoubleSpinBox,
                 negative: QPlainTextEdit) -> None:
        self._width, self._height = width, height
        self._guidance, self._negative = guidance, negative
        self._applied = self._shown()

    def _shown(self) -> JobDefaults:
        return JobDefaults(self._width.value(), self._height.value(), self._guidance.value(),
                           self._negative.toPlainText())

    def apply(self, defaults: JobDefaults) -> None:
        shown, last = self._shown(), self._applied
        if (shown.width, shown.height) == (last.width, last.height):
            self._width.setValue(defaults.width)
            self._height.setValue(defaults.height)
        if round(shown.guidance, 2) == round(last.guidance, 2):
            self._guidance.setValue(defaults.guidance)
        if shown.negative_prompt == last.negative_prompt:
            self._negative.setPlainText(defaults.negative_prompt)
        self._applied = defaults
