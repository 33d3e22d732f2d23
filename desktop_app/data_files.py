"""The package's data files: icons, styles, price table, model skeletons, desktop entry.

They live inside the package (``desktop_app/data/``) and are read through
``importlib.resources``, so the same call finds them in a source checkout, an
installed wheel (no ``-e`` needed) and a PyInstaller bundle (whose importer maps a
package's files to ``<bundle>/_internal/desktop_app/data``; ``packaging/imagedesk.spec``
puts them there). Qt-side loading of the icon and style sheet is ``ui/resources.py``.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

DATA = "data"


def is_frozen() -> bool:
    """True inside a PyInstaller bundle."""
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


def resources_root() -> Path:
    """The folder that holds the data files, as a real path on disk.

    Every supported install (checkout, wheel, bundle) unpacks the package onto the
    file system, so the files are plain files that subprocesses and Qt can open.
    """
    return Path(str(resources.files("desktop_app").joinpath(DATA)))


def resource_path(*parts: str) -> Path:
    """``desktop_app/data/<parts...>`` as an absolute path (it may not exist; callers
    decide whether a missing file is an error)."""
    return resources_root().joinpath(*parts)
