"""The ``ui.theme`` setting: system, light or dark, applied to the running app at once.

"system" gives back the palette the platform chose at start; "light" and "dark"
set a full palette of their own (the style sheet is written against palette roles,
so it follows), and tell the platform the colour scheme where Qt can.
"""

from __future__ import annotations

from typing import Literal

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

Theme = Literal["system", "light", "dark"]
_system_palette: QPalette | None = None  # the platform's, kept the first time a theme is set

_DARK = {
    QPalette.ColorRole.Window: "#2b2b2b", QPalette.ColorRole.WindowText: "#e6e6e6",
    QPalette.ColorRole.Base: "#1e1e1e", QPalette.ColorRole.AlternateBase: "#262626",
    QPalette.ColorRole.Text: "#e6e6e6", QPalette.ColorRole.Button: "#333333",
    QPalette.ColorRole.ButtonText: "#e6e6e6", QPalette.ColorRole.ToolTipBase: "#333333",
    QPalette.ColorRole.ToolTipText: "#e6e6e6", QPalette.ColorRole.Highlight: "#3478f6",
    QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.Link: "#6ea8fe",
    QPalette.ColorRole.PlaceholderText: "#8c8c8c", QPalette.ColorRole.BrightText: "#ff6b6b",
}
_LIGHT = {
    QPalette.ColorRole.Window: "#f3f3f3", QPalette.ColorRole.WindowText: "#1f1f1f",
    QPalette.ColorRole.Base: "#ffffff", QPalette.ColorRole.AlternateBase: "#f6f6f6",
    QPalette.ColorRole.Text: "#1f1f1f", QPalette.ColorRole.Button: "#ececec",
    QPalette.ColorRole.ButtonText: "#1f1f1f", QPalette.ColorRole.ToolTipBase: "#ffffdc",
    QPalette.ColorRole.ToolTipText: "#1f1f1f", QPalette.ColorRole.Highlight: "#3478f6",
    QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.Link: "#0a58ca",
    QPalette.ColorRole.PlaceholderText: "#7a7a7a", QPalette.ColorRole.BrightText: "#d1242f",
}


def palette_for(theme: Theme) -> QPalette | None:
    """The palette a light or dark theme sets; None for "system"."""
    colours = {"dark": _DARK, "light": _LIGHT}.get(theme)
    if colours is None:
        return None
    palette = QPalette()
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    disabled = QColor("#7f7f7f")
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                 QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return palette


def apply_theme(theme: Theme, app: QApplication | None = None) -> None:
    """Change the running app's palette to ``theme`` now."""
    global _system_palette
    instance = app or QApplication.instance()
    if not isinstance(instance, QApplication):
        return
    if _system_palette is None:
        _system_palette = QPalette(instance.palette())
    palette = palette_for(theme)
    hints = instance.styleHints()
    if palette is None:
        hints.unsetColorScheme()
        instance.setPalette(_system_palette)
        return
    hints.setColorScheme(Qt.ColorScheme.Dark if theme == "dark" else Qt.ColorScheme.Light)
    instance.setPalette(palette)
