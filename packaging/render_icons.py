"""Render imagedesk.svg to the PNG sizes desktops and installers ask for.

Run: QT_QPA_PLATFORM=offscreen python packaging/render_icons.py
The PNGs are committed, so the app and packaging never need this script.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

SIZES = (16, 32, 48, 64, 128, 256, 512)
HERE = Path(__file__).resolve().parents[1] / "desktop_app" / "data" / "icons"


def render(svg: Path, size: int, out: Path) -> None:
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    if not image.save(str(out)):
        raise SystemExit(f"could not write {out}")


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv)  # noqa: F841
    svg = HERE / "imagedesk.svg"
    for size in SIZES:
        out = HERE / f"imagedesk-{size}.png"
        render(svg, size, out)
        print(out.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
