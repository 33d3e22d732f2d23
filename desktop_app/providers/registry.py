"""The providers ImageDesk knows: one ``ProviderDescriptor`` per provider package
(see ``providers.descriptor``). Bootstrap, secrets, the CLI, the Settings
dialog and the checks read this list; no other module names a provider.

Adding a provider: write its package with a ``descriptor.py`` and list it in
``BUILT_IN`` below. ``register`` adds one at run time (tests; later plug-ins).
Importing this module is cheap: no provider SDK loads until a factory runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.domain.errors import ImageDeskError
from desktop_app.providers.base import ConnectionOutcome, ConnectionReport, ProviderKind
from desktop_app.providers.descriptor import (
    BuildContext,
    CheckContext,
    KeySpec,
    ProviderDescriptor,
    RoutePlace,
    ServeRequest,
)
from desktop_app.providers.local_diffusion.descriptor import DESCRIPTOR as LOCAL
from desktop_app.providers.openai_images.descriptor import DESCRIPTOR as OPENAI
from desktop_app.providers.remote_bullmq.descriptor import DESCRIPTOR as REMOTE

if TYPE_CHECKING:
    from desktop_app.providers.local_diffusion.config import FamilyDefaults
    from desktop_app.providers.local_diffusion.library import Library

BUILT_IN: tuple[ProviderDescriptor, ...] = (LOCAL, OPENAI, REMOTE)

_known: list[ProviderDescriptor] = list(BUILT_IN)


class UnknownProvider(ImageDeskError):
    """A name no descriptor has; the message lists the known ones."""


def descriptors() -> tuple[ProviderDescriptor, ...]:
    return tuple(_known)


def names() -> tuple[str, ...]:
    return tuple(d.name for d in _known)


def get(name: str) -> ProviderDescriptor:
    for descriptor in _known:
        if descriptor.name == name:
            return descriptor
    raise UnknownProvider(f"Unknown provider {name!r}: known are {', '.join(names())}.")


def label_of(name: str) -> str:
    return next((d.label for d in _known if d.name == name), name)


def check_local_model_source(model: str) -> str | None:
    """What is wrong with a local model path before a job is queued (None: fine).
    Hugging Face ids pass here; whether they may be fetched is a setting."""
    from desktop_app.providers.local_diffusion.model_source import check_model_source

    return check_model_source(model, allow_download=True)


async def local_model_library(models_dir: Path, folders: Sequence[Path], *, hashed: bool,
                              progress: Callable[[int, int, Path], None] | None = None
                              ) -> Library:
    """The models on this machine the local provider could use: the Hugging Face
    cache, ``models_dir`` and ``folders``, scanned (and, with ``hashed``, hashed)
    in worker threads (``providers.local_diffusion.library``)."""
    from desktop_app.providers.local_diffusion.library import find_models

    return await find_models(models_dir, folders, hashed=hashed, progress=progress)


def local_family_defaults(family: str) -> FamilyDefaults:
    """What a new job on a model of ``family`` (a library entry's family, e.g. "sdxl")
    starts with: size, guidance, negative prompt (an unknown family: SD 1.x's)."""
    from desktop_app.providers.local_diffusion.config import Architecture

    try:
        return Architecture(family).defaults
    except ValueError:
        return Architecture.UNKNOWN.defaults


def local_model_family(model: str) -> str:
    """The family of a model as Settings names it: a checkpoint's from its header (a
    bounded read: call it off the loop), others guessed from the name."""
    from desktop_app.providers.local_diffusion.config import (
        SINGLE_FILE_SUFFIXES,
        guess_architecture,
    )
    from desktop_app.providers.local_diffusion.families import family_of_file

    path = Path(model).expanduser()
    if model.lower().endswith(SINGLE_FILE_SUFFIXES) and path.is_file():
        return family_of_file(path).value
    return guess_architecture(model).value


def with_keys() -> tuple[ProviderDescriptor, ...]:
    """The providers that need a secret (an API key, a password)."""
    return tuple(d for d in _known if d.key is not None)


def register(descriptor: ProviderDescriptor) -> None:
    """Add a provider after the built-in ones; its name must be new."""
    if descriptor.name in names():
        raise ImageDeskError(f"A provider named {descriptor.name!r} is already registered.")
    _known.append(descriptor)


def unregister(name: str) -> None:
    if any(d.name == name for d in BUILT_IN):
        raise ImageDeskError(f"The built-in provider {name!r} cannot be removed.")
    _known[:] = [d for d in _known if d.name != name]


@contextlib.contextmanager
def registered(descriptor: ProviderDescriptor) -> Iterator[ProviderDescriptor]:
    """``register`` for the duration of a ``with`` block."""
    register(descriptor)
    try:
        yield descriptor
    finally:
        unregister(descriptor.name)


__all__ = [
    "BUILT_IN",
    "BuildContext",
    "CheckContext",
    "ConnectionOutcome",
    "ConnectionReport",
    "KeySpec",
    "ProviderDescriptor",
    "ProviderKind",
    "RoutePlace",
    "ServeRequest",
    "UnknownProvider",
    "check_local_model_source",
    "descriptors",
    "get",
    "label_of",
    "names",
    "register",
    "registered",
    "unregister",
    "with_keys",
]
