"""Helpers shared by the local provider's tests."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from desktop_app.domain.request import GenerationRequest
from desktop_app.providers.base import Phase, Progress


def request(**changes: object) -> GenerationRequest:
    fields: dict[str, object] = {"prompt": "a lighthouse at dusk", "width": 64, "height": 64,
                                 "steps": 4, "seed": 7}
    fields.update(changes)
    return GenerationRequest(**fields)  # type: ignore[arg-type]


class Recorder:
    """Collects progress events, as the engine's callback would."""

    def __init__(self) -> None:
        self.events: list[Progress] = []

    def __call__(self, event: Progress) -> None:
        self.events.append(event)


def write_safetensors(path: Path, keys: list[str]) -> Path:
    """A valid .safetensors file holding one float per key (written by hand, no torch)."""
    header = {key: {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]}
              for i, key in enumerate(keys)}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * (4 * len(keys)))
    return path


def steps_seen(events: list[Progress]) -> list[int]:
    return [e.step for e in events if e.phase is Phase.GENERATING]
