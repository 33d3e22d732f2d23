"""Where ``resources/`` (icons, price table, styles, model skeletons, desktop entry) lives.

From a source checkout (or an editable install) it is the folder next to the
``desktop_app`` package; in a PyInstaller bundle it is ``resources/`` inside
the bundle's data folder (``sys._MEIPASS``), where ``packaging/imagedesk.spec``
puts it. Every module that reads a resource asks here, so there is one answer
to "where are the resources" for both cases.
"""

from __future__ import annotations

import sys
from pathlib import Path

RESOURCES = "resources"


def is_frozen() -> bool:
    """True inside a PyInstaller bundle."""
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


def resources_root() -> Path:
    """The ``resources`` folder: the bundle's copy when frozen, else the repository's."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / RESOURCES
    return Path(__file__).resolve().parent.parent / RESOURCES


def resource_path(*parts: str) -> Path:
    """``resources/<parts...>`` as an absolute path (it may not exist; callers decide
    whether a missing file is an error)."""
    return resources_root().joinpath(*parts)
