"""Icons and the style sheet from ``resources/`` (next to the package, or in a frozen bundle)."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtGui import QIcon

ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)


def resources_dir() -> Path:
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


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
