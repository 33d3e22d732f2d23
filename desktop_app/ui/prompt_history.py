"""Recent prompts, newest first, kept in QSettings; and a searchable picker for them."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import QDialog, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

MAX_PROMPTS = 50  # the ``ui.recent_prompts_max`` default, until Settings say otherwise
KEY = "history/prompts"


class PromptHistory:
    """At most ``limit`` prompts (the ``ui.recent_prompts_max`` setting; 0 keeps none)."""

    def __init__(self, settings: QSettings, limit: int = MAX_PROMPTS) -> None:
        self._settings = settings
        self.limit = max(0, limit)
        stored = settings.value(KEY, [])
        # not trimmed here: the window is built before the settings are read
        self._prompts: list[str] = [str(p) for p in stored] if isinstance(stored, list) else []

    def set_limit(self, limit: int) -> None:
        """Keep at most ``limit`` prompts from now on; the oldest beyond it go at once."""
        self.limit = max(0, limit)
        if len(self._prompts) > self.limit:
            del self._prompts[self.limit:]
            self._settings.setValue(KEY, self._prompts)

    def add(self, prompt: str) -> None:
        prompt = prompt.strip()
        if not prompt:
            return
        if prompt in self._prompts:
            self._prompts.remove(prompt)
        self._prompts.insert(0, prompt)
        del self._prompts[self.limit:]
        self._settings.setValue(KEY, self._prompts)

    def search(self, text: str = "") -> list[str]:
        """Prompts containing every word of ``text`` (any case), newest first."""
        words = text.casefold().split()
        return [p for p in self._prompts if all(w in p.casefold() for w in words)]

    def __len__(self) -> int:
        return len(self._prompts)


class HistoryPicker(QDialog):
    """A filter box over recent prompts; Enter or a double-click picks one."""

    picked = Signal(str)

    def __init__(self, history: PromptHistory, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Recent prompts")
        self.resize(520, 360)
        self.history = history
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Search recent prompts…")
        self.filter.setClearButtonEnabled(True)
        self.list = QListWidget(self)
        self.list.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.list)
        self.filter.textChanged.connect(self._refresh)
        self.filter.returnPressed.connect(self._pick_current)
        self.list.itemActivated.connect(self._pick)
        self._refresh("")

    def _refresh(self, text: str) -> None:
        self.list.clear()
        for prompt in self.history.search(text):
            item = QListWidgetItem(prompt)
            item.setToolTip(prompt)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def _pick_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self._pick(item)

    def _pick(self, item: QListWidgetItem) -> None:
        self.picked.emit(item.data(Qt.ItemDataRole.DisplayRole))
        self.accept()
