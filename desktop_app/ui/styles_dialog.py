"""Settings of a kind users edit often: the profile's named prompt styles (its
Automatic1111 ``styles.csv``), as a table to add, change, remove, import and export,
and to pick the styles for the next job."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.errors import ImageDeskError, InvalidRequest
from desktop_app.domain.styles import Style
from desktop_app.store.styles import StyleLibrary, read_styles_csv, write_styles_csv

COLUMNS = ("Name", "Prompt ({prompt} marks where yours goes)", "Negative prompt")


class StylesDialog(QDialog):
    def __init__(self, library: StyleLibrary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.chosen: list[str] = []  # the names "Use selected" picked
        self.setWindowTitle("Styles")
        self.setObjectName("stylesDialog")
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("stylesTable")
        self.table.setAccessibleName("Styles")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.error = QLabel(self)
        self.error.setObjectName("stylesError")
        self.error.setStyleSheet("color: #d1242f;")
        self.error.setWordWrap(True)
        self.error.hide()
        row = QHBoxLayout()
        self.add_button = self._button("Add", self.add_style, row)
        self.remove_button = self._button("Remove", self.remove_selected, row)
        self.import_button = self._button("Import A1111 styles.csv…", self.import_file, row)
        self.export_button = self._button("Export…", self.export_file, row)
        row.addStretch(1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Cancel, self)
        self.use_button = buttons.addButton("Save and use selected",
                                            QDialogButtonBox.ButtonRole.ActionRole)
        self.use_button.setAccessibleName("Save and use the selected styles")
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        self.use_button.clicked.connect(self.save_and_use)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(row)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(760, 380)
        try:
            self._show(library.all())
        except ImageDeskError as error:
            self._fail(f"{library.path} cannot be read: {error.message}")

    def _button(self, text: str, slot: object, row: QHBoxLayout) -> QPushButton:
        button = QPushButton(text, self)
        button.setAccessibleName(text.rstrip("…"))
        button.clicked.connect(slot)
        row.addWidget(button)
        return button

    def _show(self, styles: list[Style]) -> None:
        self.table.setRowCount(0)
        for style in styles:
            self._append(style.name, style.prompt, style.negative_prompt)

    def _append(self, *cells: str) -> int:
        row = self.table.rowCount()
        self.table.insertRow(row)
        for column, text in enumerate(cells):
            self.table.setItem(row, column, QTableWidgetItem(text))
        return row

    def add_style(self) -> None:
        row = self._append("", "{prompt}", "")
        self.table.setCurrentCell(row, 0)
        item = self.table.item(row, 0)
        if item is not None:
            self.table.editItem(item)

    def remove_selected(self) -> None:
        for row in sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True):
            self.table.removeRow(row)

    def styles(self) -> list[Style]:
        """The table as styles; ``InvalidRequest`` names the row that cannot be one."""
        found: dict[str, Style] = {}
        for row in range(self.table.rowCount()):
            cells = [self.cell(row, c) for c in range(len(COLUMNS))]
            try:
                style = Style(*cells)
            except InvalidRequest as error:
                raise InvalidRequest(f"Row {row + 1}: {error.message}", field="styles") from None
            if style.name in found:
                raise InvalidRequest(f"Row {row + 1}: there is already a style named "
                                     f"{style.name!r}.", field="styles")
            found[style.name] = style
        return list(found.values())

    def save(self) -> bool:
        try:
            write_styles_csv(self.library.path, self.styles())
        except InvalidRequest as error:
            self._fail(error.message)
            return False
        except OSError as error:
            self._fail(f"Cannot write {self.library.path}: {error.strerror or error}")
            return False
        self.accept()
        return True

    def save_and_use(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        names = [self.cell(r, 0).strip() for r in rows]
        self.chosen = [n for n in names if n]  # read by whoever hears "finished"
        if not self.save():
            self.chosen = []

    def import_file(self, path: Path | None = None) -> None:
        if not isinstance(path, Path):
            chosen, _ = QFileDialog.getOpenFileName(self, "Import styles", "",
                                                    "Styles (*.csv)")
            if not chosen:
                return
            path = Path(chosen)
        try:
            incoming, skipped = read_styles_csv(path)
        except ImageDeskError as error:
            self._fail(error.message)
            return
        for style in incoming:  # an imported style replaces one of the same name
            for r in range(self.table.rowCount()):
                if self.cell(r, 0).strip() == style.name:
                    self.table.removeRow(r)
                    break
            self._append(style.name, style.prompt, style.negative_prompt)
        if skipped:
            self._fail("Left out: " + "; ".join(skipped[:5]))

    def export_file(self, path: Path | None = None) -> None:
        if not isinstance(path, Path):
            chosen, _ = QFileDialog.getSaveFileName(self, "Export styles", "styles.csv",
                                                    "Styles (*.csv)")
            if not chosen:
                return
            path = Path(chosen)
        try:
            write_styles_csv(path, self.styles())
        except (InvalidRequest, OSError) as error:
            self._fail(str(error))

    def cell(self, row: int, column: int) -> str:
        item = self.table.item(row, column)
        return item.text() if item is not None else ""

    def set_cell(self, row: int, column: int, text: str) -> None:
        self.table.setItem(row, column, QTableWidgetItem(text))

    def _fail(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()
