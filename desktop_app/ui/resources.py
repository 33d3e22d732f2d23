"""The app icon and style sheet as Qt objects, from the package's data files
(``desktop_app/data/``, located by ``desktop_app.data_files``)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QIcon

from desktop_app.data_files import resources_root

ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)


def resources_dir() -> Path:
    return resources_root()


def app_icon() -> QIcon:
    """The app icon at every rendered size, so high-DPI screens get a crisp one."""
    icon = QIcon()
    folder = resources_dir() / "icons"
    for size in ICON_SIZES:
        path = folder / f"imagedesk-{size}.png"
        if path.exists():
            icon.addFile(str(path))
    return icon


def style_sheet() -> str:
    path = resources_dir() / "styles" / "app.qss"
    return path.read_text(encoding="utf-8") if path.exists() else ""
