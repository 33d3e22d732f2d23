"""The banner over the main window that lists what is wrong with the settings.

It shows on every start for as long as a problem lasts (not once, in a box that
is gone with a click), and goes when saved settings fix it. A problem with a
setting that guards money or privacy keeps the cloud off; its line says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from desktop_app.config import SettingsProblem, problem_lines

SHOWN_PROBLEMS = 5


class SettingsProblemsBanner(QFrame):
    settings_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsProblems")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#settingsProblems { background: #fff4ce; color: #3b2f00; "
                           "border: 1px solid #d4a72c; }")
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_settings = QPushButton("Open Settings…", self)
        self.open_settings.clicked.connect(self.settings_requested.emit)
        row = QHBoxLayout(self)
        row.addWidget(self.label, 1)
        row.addWidget(self.open_settings, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_problems(self, problems: Sequence[SettingsProblem]) -> None:
        if not problems:
            self.label.clear()
            self.hide()
            return
        head = ("The settings have a problem; ImageDesk runs without that value until it is "
                "fixed:" if len(problems) == 1 else
                "The settings have problems; ImageDesk runs without those values until they "
                "are fixed:")
        if any(p.cloud_off for p in problems):
            head += " cloud is off until this is fixed."
        self.label.setText("\n".join([head, *(f"• {line}" for line in
                                               problem_lines(problems, SHOWN_PROBLEMS))]))
        self.show()

    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()
