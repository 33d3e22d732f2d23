"""The queue panel: a table of jobs with progress bars, provider badges and actions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.job import JobState
from desktop_app.engine.events import JobFinished, JobProgress, QueueChanged
from desktop_app.ui.qt_events import EngineSignals
from desktop_app.ui.queue_model import FRACTION_ROLE, Column, JobRow, QueueModel
from desktop_app.ui.tasks import spawn

if TYPE_CHECKING:
    from desktop_app.engine.engine import Engine


class ProgressDelegate(QStyledItemDelegate):
    """Draws the progress column as a native progress bar with the step count."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        fraction = index.data(FRACTION_ROLE)
        if fraction is None or fraction < 0 or index.data() in ("", "queued"):
            super().paint(painter, option, index)
            return
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 3, -2, -3)
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = int(max(0.0, min(1.0, fraction)) * 1000)
        bar.text = str(index.data() or "")
        bar.textVisible = True
        bar.state = option.state
        style = option.widget.style() if option.widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)


class QueueView(QWidget):
    """Queue table plus its actions; every action is one engine call."""

    job_selected = Signal(object)  # a job id
    images_ready = Signal(tuple)  # image ids of a job that just succeeded

    def __init__(self, engine: Engine | None, signals: EngineSignals,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine: Engine = engine  # type: ignore[assignment]  # set by MainWindow.attach
        self.model = QueueModel(self)
        self.table = QTableView(self)
        self.table.setObjectName("queueTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setItemDelegateForColumn(Column.PROGRESS, ProgressDelegate(self.table))
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(Column.PROMPT, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(Column.PROVIDER, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(Column.STATE, 80)
        header.resizeSection(Column.PROGRESS, 110)
        header.resizeSection(Column.PROVIDER, 260)
        header.resizeSection(Column.ELAPSED, 64)
        header.resizeSection(Column.COST, 64)
        self.table.doubleClicked.connect(lambda _i: self.show_details())

        self.preview = QLabel(self)
        self.preview.setFixedSize(QSize(96, 96))
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setToolTip("Live preview of the running job")
        self.preview.hide()

        self.toolbar = QToolBar("Queue", self)
        self.toolbar.setIconSize(QSize(16, 16))
        self._build_actions()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        row = QHBoxLayout()
        row.addWidget(self.table, 1)
        row.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(row)

        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self.model.tick)
        self._ticker.start()
        self.table.selectionModel().currentRowChanged.connect(self._on_current)
        self._wire(signals)

    # -- setup -------------------------------------------------------------------

    def _action(self, text: str, icon: QStyle.StandardPixmap, slot: object,
                shortcut: str | QKeySequence.StandardKey | None = None) -> QAction:
        action = QAction(self.style().standardIcon(icon), text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(slot)
        self.toolbar.addAction(action)
        return action

    def _build_actions(self) -> None:
        sp = QStyle.StandardPixmap
        self.cancel_action = self._action("Cancel", sp.SP_DialogCancelButton, self.cancel_selected,
                                          QKeySequence.StandardKey.Delete)
        self.retry_action = self._action("Retry", sp.SP_BrowserReload, self.retry_selected, "R")
        self.up_action = self._action("Move up", sp.SP_ArrowUp, lambda: self.move_selected(-1),
                                      "Ctrl+Up")
        self.down_action = self._action("Move down", sp.SP_ArrowDown,
                                        lambda: self.move_selected(1), "Ctrl+Down")
        self.toolbar.addSeparator()
        self.pause_action = self._action("Pause queue", sp.SP_MediaPause, self.toggle_pause)
        self.pause_action.setCheckable(True)
        self.clear_action = self._action("Clear finished", sp.SP_DialogResetButton,
                                         self.clear_finished)
        self.details_action = self._action("Details…", sp.SP_MessageBoxInformation,
                                           self.show_details, "Return")
        self._update_actions()

    def _wire(self, signals: EngineSignals) -> None:
        m = self.model
        signals.job_added.connect(m.on_job_added)
        signals.job_started.connect(m.on_job_started)
        signals.job_progress.connect(m.on_job_progress)
        signals.job_attempted.connect(m.on_job_attempted)
        signals.job_routed.connect(m.on_job_routed)
        signals.job_waiting.connect(m.on_job_waiting)
        signals.job_finished.connect(m.on_job_finished)
        signals.job_progress.connect(self._on_progress)
        signals.job_finished.connect(self._on_finished)
        signals.queue_changed.connect(self._on_queue_changed)
        for signal in (signals.job_started, signals.job_finished, signals.job_added):
            signal.connect(lambda _e: self._update_actions())

    def stop(self) -> None:
        """The window is closing: the elapsed column stops ticking."""
        self._ticker.stop()

    # -- reading the selection ---------------------------------------------------

    def selected_row(self) -> JobRow | None:
        index = self.table.currentIndex()
        return self.model.row(index.row()) if index.isValid() else None

    def select_job(self, job_id: int) -> None:
        position = self.model.row_of(job_id)
        if position is not None:
            self.table.selectRow(position)

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._update_actions()
        row = self.selected_row()
        if row is not None:
            self.job_selected.emit(row.id)
            self._show_preview(row.preview_png)

    def _update_actions(self) -> None:
        row = self.selected_row()
        state = row.state if row else None
        self.cancel_action.setEnabled(state in (JobState.QUEUED, JobState.RUNNING))
        self.retry_action.setEnabled(state in (JobState.FAILED, JobState.CANCELLED))
        self.up_action.setEnabled(state is JobState.QUEUED)
        self.down_action.setEnabled(state is JobState.QUEUED)
        self.details_action.setEnabled(row is not None)

    # -- actions -----------------------------------------------------------------

    def reload(self) -> None:
        def loaded(jobs: list) -> None:
            selected = self.selected_row()
            self.model.load(jobs)
            if selected is not None:
                self.select_job(selected.id)
            self._update_actions()
        spawn(self.engine.jobs(), loaded)
        spawn(self.engine.paused(), self.pause_action.setChecked)

    def cancel_selected(self) -> None:
        row = self.selected_row()
        if row is not None and row.state in (JobState.QUEUED, JobState.RUNNING):
            spawn(self.engine.cancel(row.id))

    def retry_selected(self) -> None:
        row = self.selected_row()
        if row is not None and row.state in (JobState.FAILED, JobState.CANCELLED):
            spawn(self.engine.retry(row.id))

    def move_selected(self, delta: int) -> None:
        row = self.selected_row()
        if row is not None and row.state is JobState.QUEUED:
            spawn(self.engine.move(row.id, delta))

    def toggle_pause(self) -> None:
        if self.pause_action.isChecked():
            spawn(self.engine.pause())
        else:
            spawn(self.engine.resume())

    def clear_finished(self) -> None:
        spawn(self.engine.clear_finished())

    def show_details(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        box = QMessageBox(self)
        box.setWindowTitle(f"Job {row.id}")
        box.setIcon(QMessageBox.Icon.Warning if row.state is JobState.FAILED
                    else QMessageBox.Icon.Information)
        box.setText(row.message or f"{row.state.value.capitalize()}: {row.prompt[:80]}")
        box.setDetailedText(row.details())
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.open()

    # -- events ------------------------------------------------------------------

    def _on_queue_changed(self, event: QueueChanged) -> None:
        self.pause_action.setChecked(event.paused)
        self.reload()

    def _on_progress(self, event: JobProgress) -> None:
        row = self.selected_row()
        if event.preview_png is not None and (row is None or row.id == event.job_id):
            self._show_preview(event.preview_png)

    def _on_finished(self, event: JobFinished) -> None:
        if event.state is JobState.SUCCEEDED and event.image_ids:
            self.images_ready.emit(event.image_ids)

    def _show_preview(self, png: bytes | None) -> None:
        if not png:
            self.preview.hide()
            return
        pixmap = QPixmap()
        pixmap.loadFromData(png)
        self.preview.setPixmap(pixmap.scaled(self.preview.size(),
                                             Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.SmoothTransformation))
        self.preview.show()
