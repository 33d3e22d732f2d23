"""The main window: prompt editor, queue and gallery side by side, layout remembered.

Window geometry, dock and splitter positions live in a QSettings INI file under
the config folder (``window.ini``), not in the user's settings.toml: they are
the window's memory, not choices the user edits.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSettings, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QStyle,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from desktop_app.config.policy import default_policy
from desktop_app.domain.job import JobState
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.events import JobFinished
from desktop_app.store.recall import recalled_request, recalled_work
from desktop_app.ui import tasks
from desktop_app.ui.detail_pane import DetailPane
from desktop_app.ui.gallery_view import GalleryView
from desktop_app.ui.image_canvas import dropped_image
from desktop_app.ui.image_viewer import ImageViewer
from desktop_app.ui.metrics_panel import MetricsPanel
from desktop_app.ui.prompt_editor import PromptEditor
from desktop_app.ui.provider_status import ProviderStatusBar
from desktop_app.ui.qt_events import EngineSignals
from desktop_app.ui.queue_view import QueueView
from desktop_app.ui.settings_banner import SettingsProblemsBanner
from desktop_app.ui.theme import apply_theme

if TYPE_CHECKING:
    from desktop_app.config import Settings
    from desktop_app.domain.image_work import ImageRef
    from desktop_app.engine.engine import Engine
    from desktop_app.store.gallery import ImageRecord

NOTIFY_AFTER_S = 10.0  # a job that ran at least this long is worth a notification


class CloseMode(enum.Enum):
    FINISH = "finish"  # let running jobs finish, then quit
    PAUSE = "pause"  # pause the queue; running jobs go back to the queue
    QUIT = "quit"  # quit now; running jobs go back to the queue


class MainWindow(QMainWindow):
    shutdown_finished = Signal()

    def __init__(self, engine: Engine | None, window_settings: QSettings, *,
                 open_settings: Callable[[QWidget], None] | None = None,
                 icon: QIcon | None = None, parent: QWidget | None = None) -> None:
        """With ``engine=None`` the window can paint before the engine exists (a fast
        first paint at startup); ``attach`` then connects it."""
        super().__init__(parent)
        self.engine: Engine = engine  # type: ignore[assignment]  # None until attach
        self.window_settings = window_settings
        self._open_settings = open_settings
        self._shut_down = False
        self.notifications: list[tuple[str, str]] = []
        self.setObjectName("mainWindow")
        self.setWindowTitle("ImageDesk")
        if icon is not None:
            self.setWindowIcon(icon)
        self.signals = EngineSignals(None, self)
        self.editor = PromptEditor(self._submit, window_settings, self)
        self.queue = QueueView(engine, self.signals, self)
        self.gallery = GalleryView(engine, self)
        self.detail = DetailPane(self, preview=False)  # the viewer shows the image
        self.viewer = ImageViewer(self)
        self.setAcceptDrops(True)
        self.metrics = MetricsPanel(self)
        self.providers = ProviderStatusBar(engine, self.signals, self)
        self.banner = SettingsProblemsBanner(self)
        self._layout_widgets()
        self._build_menus()
        self._connect()
        self._tray = self._make_tray(icon)
        tasks.set_error_reporter(self.show_error)
        self.restore_layout()
        if engine is not None:
            self.attach(engine)
        else:
            self.editor.generate_button.setEnabled(False)
            self.statusBar().showMessage("Starting…")

    def attach(self, engine: Engine,
               open_settings: Callable[[QWidget], None] | None = None) -> None:
        """Connect the window to the engine: events in, actions out."""
        self.engine = engine
        self.queue.engine = self.gallery.engine = self.providers.engine = engine
        self.signals.attach(engine.hub)
        if open_settings is not None:
            self._open_settings = open_settings
        self.editor.generate_button.setEnabled(True)
        self.editor.route.set_quote_source(engine.route_quote)
        self.statusBar().clearMessage()

    # -- construction ------------------------------------------------------------

    def _layout_widgets(self) -> None:
        editor_scroll = QScrollArea(self)
        editor_scroll.setWidgetResizable(True)
        editor_scroll.setWidget(self.editor)
        editor_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        editor_scroll.setMinimumWidth(self.editor.minimumSizeHint().width() + 24)
        self.gallery_split = QSplitter(Qt.Orientation.Vertical, self)
        self.gallery_split.setObjectName("gallerySplit")
        self.gallery_split.addWidget(self.gallery)
        self.gallery_split.addWidget(self.detail)
        self.gallery_split.setStretchFactor(0, 3)
        self.gallery_split.setStretchFactor(1, 1)
        self.right_split = QSplitter(Qt.Orientation.Vertical, self)
        self.right_split.setObjectName("rightSplit")
        self.right_split.addWidget(self.queue)
        self.right_split.addWidget(self.gallery_split)
        self.right_split.setStretchFactor(0, 1)
        self.right_split.setStretchFactor(1, 2)
        self.main_split = QSplitter(Qt.Orientation.Horizontal, self)
        self.main_split.setObjectName("mainSplit")
        self.main_split.addWidget(editor_scroll)
        self.main_split.addWidget(self.viewer)  # the picture is the centre of the window
        self.main_split.addWidget(self.right_split)
        self.main_split.setStretchFactor(1, 1)
        central = QWidget(self)
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(self.main_split, 1)
        self.setCentralWidget(central)
        self.editor.set_tab_order()
        self.metrics_dock = QDockWidget("Provider metrics", self)
        self.metrics_dock.setObjectName("metricsDock")
        self.metrics_dock.setWidget(self.metrics)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.metrics_dock)
        self.statusBar().addPermanentWidget(self.providers)
        self.resize(1360, 860)
        self.resizeDocks([self.metrics_dock], [120], Qt.Orientation.Vertical)
        self.main_split.setSizes([400, 560, 400])
        self.right_split.setSizes([260, 600])
        self.gallery_split.setSizes([420, 180])

    def _act(self, text: str, slot: Callable[[], object],
             shortcut: str | QKeySequence.StandardKey | None = None,
             icon: QStyle.StandardPixmap | None = None) -> QAction:
        action = QAction(text, self)
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        return action

    def _build_menus(self) -> None:
        sp = QStyle.StandardPixmap
        self.generate_action = self._act("&Generate", self.editor.generate, None,
                                         sp.SP_MediaPlay)
        self.generate_action.setToolTip("Queue the prompt (Ctrl+Enter)")
        self.settings_action = self._act("&Settings…", self.open_settings,
                                         QKeySequence.StandardKey.Preferences,
                                         sp.SP_FileDialogDetailedView)
        self.settings_action.setShortcuts([QKeySequence("Ctrl+,")])
        self.quit_action = self._act("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.import_action = self._act("&Import folder…", self.import_folder, "Ctrl+I",
                                       sp.SP_DirOpenIcon)
        self.pause_action = self.queue.pause_action
        self.pause_action.setShortcut(QKeySequence("Ctrl+P"))
        self.pause_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        search = self._act("&Search gallery", self._focus_search, QKeySequence.StandardKey.Find)
        prompt = self._act("Focus &prompt", self.editor.prompt.setFocus, "Ctrl+L")
        history = self._act("Prompt &history…", self.editor.show_history, "Ctrl+H")
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addActions([self.import_action, self.settings_action])
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        queue_menu = menu.addMenu("&Queue")
        queue_menu.addActions([self.generate_action, self.pause_action, self.queue.cancel_action,
                               self.queue.retry_action, self.queue.clear_action])
        view_menu = menu.addMenu("&View")
        view_menu.addActions([prompt, history, search, self.metrics_dock.toggleViewAction()])
        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self._act("&About ImageDesk", self.about))
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.addActions([self.generate_action, self.pause_action, self.import_action,
                            self.settings_action])

    def _connect(self) -> None:
        self.queue.images_ready.connect(self.gallery.add_images)
        self.gallery.image_selected.connect(self.detail.show_record)
        self.gallery.image_selected.connect(self.show_in_viewer)
        self.gallery.use_as_source_requested.connect(self.use_as_source)
        self.detail.use_as_source_requested.connect(self.use_as_source)
        self.viewer.file_dropped.connect(self.use_file_as_source)
        self.viewer.mask_changed.connect(self.editor.source_tools.mask_edited)
        self.viewer.padding_dragged.connect(
            lambda side, pixels: self.editor.source_tools.extend[side].setValue(pixels))
        self.editor.source_tools.padding_changed.connect(self.viewer.canvas.show_padding)
        tools = self.editor.source_tools
        tools.mask_png = self.viewer.mask_png
        tools.mask_painted = self.viewer.mask_painted
        tools.store_image = lambda data, role: self.engine.add_input_image(data, role)
        tools.clear_requested.connect(self.clear_source)
        self.gallery.reuse_requested.connect(self.reuse)
        self.detail.open_requested.connect(self.gallery.open_image)
        self.detail.reveal_requested.connect(self.gallery.reveal_image)
        self.detail.copy_requested.connect(self.gallery.copy_prompt)
        self.detail.reuse_requested.connect(self.reuse)
        self.detail.favourite_requested.connect(self.gallery.set_favourite)
        self.detail.delete_requested.connect(lambda r: self.gallery.delete_images([r]))
        self.providers.statuses_changed.connect(self.metrics.show_statuses)
        self.providers.settings_requested.connect(self.open_settings)
        self.banner.settings_requested.connect(self.open_settings)
        self.signals.job_finished.connect(self._on_job_finished)
        self.signals.job_started.connect(self.editor.on_job_started)
        self.signals.job_progress.connect(self.editor.on_job_progress)
        self.signals.job_finished.connect(self.editor.on_job_finished)

    def _make_tray(self, icon: QIcon | None) -> QSystemTrayIcon | None:
        if icon is None or not QSystemTrayIcon.isSystemTrayAvailable():
            return None
        tray = QSystemTrayIcon(icon, self)
        tray.setToolTip("ImageDesk")
        tray.show()
        return tray

    # -- start -------------------------------------------------------------------

    def load(self) -> None:
        """Fill the queue, gallery and provider lights from the engine."""
        self.queue.reload()
        self.gallery.refresh()
        self.providers.refresh()
        self.update_prompt_limits()

    def update_prompt_limits(self) -> None:
        self.editor.set_prompt_limits(self.engine.prompt_limits())

    # -- actions -----------------------------------------------------------------

    async def _submit(self, request: GenerationRequest) -> object:
        job = await self.engine.submit(request)
        self.queue.select_job(job.id)
        return job

    def reuse(self, record: ImageRecord) -> None:
        """The image's settings into the editor; for work on an image, its source (if it
        is still in the gallery) and strength too."""
        ran = recalled_request(record)
        missing = self.editor.apply_parameters({
            "prompt": record.prompt, "negative_prompt": record.negative_prompt,
            "width": record.width, "height": record.height, "steps": record.steps,
            "guidance": record.guidance, "seed": record.seed,
            "sampler": ran.sampler if ran else None,
            "clip_skip": ran.clip_skip if ran else None})
        self.statusBar().showMessage("Parameters copied into the prompt editor." + "".join(
            f" Not recalled: {note}." for note in missing), 5000)
        work = recalled_work(record)
        if work is None or record.source_image_id is None:
            return

        def source_found(source: ImageRecord | None) -> None:
            if source is None:
                self.statusBar().showMessage("Parameters copied; the image it was made from "
                                             "is no longer in the gallery.", 8000)
                return

            def ready(ref: ImageRef) -> None:
                self._source_ready(ref, Path(source.path))
                if work.strength is not None:
                    self.editor.source_tools.set_strength(work.strength)

            tasks.spawn(self.engine.use_as_source(source.id), ready)

        tasks.spawn(self.engine.image(record.source_image_id), source_found)

    # -- the viewer and the source image ----------------------------------------

    def show_in_viewer(self, record: ImageRecord | None) -> None:
        """Show the selected image large, with the image it was made from to compare."""
        if record is None:
            self.viewer.show_image(None)
            return
        if record.source_image_id is None:
            self.viewer.show_image(Path(record.path))
            return

        def shown(source: ImageRecord | None) -> None:
            current = self.gallery.current_record()
            if current is not None and current.id == record.id:
                self.viewer.show_image(Path(record.path),
                                       Path(source.path) if source is not None else None)
        self.viewer.show_image(Path(record.path))
        tasks.spawn(self.engine.image(record.source_image_id), shown)

    def use_as_source(self, record: ImageRecord) -> None:
        """A gallery image becomes the next job's source (its lineage is kept)."""
        tasks.spawn(self.engine.use_as_source(record.id),
                    lambda ref: self._source_ready(ref, Path(record.path)))

    def use_file_as_source(self, path: Path) -> None:
        """A dropped image file becomes the next job's source."""
        tasks.spawn(self.engine.add_input_image(path, "source"),
                    lambda ref: self._source_ready(ref, path))

    def _source_ready(self, ref: ImageRef, path: Path) -> None:
        self.editor.source_tools.set_source(ref, path)
        self.viewer.set_source(path, ref.size)
        self.editor.source_tools.mask_edited()
        self.statusBar().showMessage(f"{path.name} is the source of the next job.", 5000)

    def clear_source(self) -> None:
        self.editor.source_tools.set_source(None)
        self.viewer.set_source(None)
        self.show_in_viewer(self.gallery.current_record())

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_image(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = dropped_image(event)
        if path is not None:
            event.acceptProposedAction()
            self.use_file_as_source(path)

    def use_settings(self, settings: Settings) -> None:
        """Follow the profile's settings: new jobs' defaults in the editor, the theme,
        how many recent prompts are kept, and the banner of settings problems."""
        self.editor.apply_defaults(default_policy(settings), settings.output.format)
        self.editor.history.set_limit(settings.ui.recent_prompts_max)
        apply_theme(settings.ui.theme)
        self.banner.show_problems(settings.problems())

    def settings_applied(self, settings: Settings | None = None) -> None:
        """Providers were rebuilt from new settings: refresh what depends on them."""
        if settings is not None:
            self.use_settings(settings)
        self.update_prompt_limits()
        self.providers.refresh()
        self.statusBar().showMessage("Settings saved.", 5000)

    def open_settings(self) -> None:
        if self._open_settings is not None:
            self._open_settings(self)

    def import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import images from a folder")
        if folder:
            def imported(report: object) -> None:
                self.statusBar().showMessage(f"Imported: {report}", 8000)
                self.gallery.refresh()
            tasks.spawn(self.engine.import_folder(Path(folder)), imported)

    def _focus_search(self) -> None:
        self.gallery.search.setFocus()
        self.gallery.search.selectAll()

    def about(self) -> None:
        QMessageBox.about(self, "About ImageDesk",
                          "ImageDesk turns prompts into images on your own GPU, "
                          "with cloud fallback.")

    def show_error(self, message: str) -> None:
        self.statusBar().showMessage(message, 12000)

    # -- notifications -----------------------------------------------------------

    def _on_job_finished(self, event: JobFinished) -> None:
        row = self.queue.model.job_row(event.job_id)
        elapsed = self.queue.model.elapsed_s(row) if row else None
        if self.isActiveWindow() or elapsed is None or elapsed < NOTIFY_AFTER_S:
            return
        if event.state is JobState.SUCCEEDED:
            self.notify("Image ready", row.prompt[:80] if row else "")
        elif event.state is JobState.FAILED:
            self.notify("Job failed", event.message or "")

    def notify(self, title: str, text: str) -> None:
        self.notifications.append((title, text))
        if self._tray is not None:
            self._tray.showMessage(title, text, QSystemTrayIcon.MessageIcon.Information, 8000)
        QApplication.alert(self)
        self.statusBar().showMessage(f"{title}: {text}", 8000)

    # -- layout memory -----------------------------------------------------------

    def save_layout(self) -> None:
        s = self.window_settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        for split in (self.main_split, self.right_split, self.gallery_split):
            s.setValue(f"window/{split.objectName()}", split.saveState())
        s.sync()

    def restore_layout(self) -> None:
        s = self.window_settings
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = s.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        self._splitters_restored = False

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        # splitter sizes only stick once the window has its real size
        if not self._splitters_restored:
            self._splitters_restored = True
            for split in (self.main_split, self.right_split, self.gallery_split):
                value = self.window_settings.value(f"window/{split.objectName()}")
                if isinstance(value, QByteArray):
                    split.restoreState(value)

    # -- closing -----------------------------------------------------------------

    def ask_close_mode(self) -> CloseMode | None:
        """Ask what to do with running jobs; None means stay open."""
        box = QMessageBox(QMessageBox.Icon.Question, "Jobs are running",
                          "Images are still being generated. Queued jobs are kept either way.",
                          QMessageBox.StandardButton.NoButton, self)
        finish = box.addButton("Finish, then quit", QMessageBox.ButtonRole.AcceptRole)
        pause = box.addButton("Pause queue and quit", QMessageBox.ButtonRole.DestructiveRole)
        quit_now = box.addButton("Quit now", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(finish)
        box.exec()
        clicked = box.clickedButton()
        return {finish: CloseMode.FINISH, pause: CloseMode.PAUSE,
                quit_now: CloseMode.QUIT}.get(clicked)  # type: ignore[call-overload]

    def stop_timers(self) -> None:
        """Once the user has chosen to quit, nothing on screen needs refreshing: the
        panels' timers stop here rather than when the widgets are deleted, which
        may be much later (or, for a window a test left behind, after its event
        loop is gone, where a status refresh could no longer start)."""
        self.providers.stop()
        self.queue.stop()
        self.gallery.stop()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._shut_down:
            self.stop_timers()
            event.accept()
            return
        event.ignore()
        mode = CloseMode.QUIT
        if self.engine is None:  # closed before the engine was attached
            self.stop_timers()
            self._shut_down = True
            self.shutdown_finished.emit()
            event.accept()
            return
        if self.engine.running_job_ids:
            chosen = self.ask_close_mode()
            if chosen is None:
                return
            mode = chosen
        self.stop_timers()
        self.save_layout()
        self.hide()  # at once (issue 12.11); the engine stops in the background
        tasks.spawn(self.shutdown(mode))

    async def shutdown(self, mode: CloseMode) -> None:
        """Stop the engine as the user chose, then close the window for good. The
        window goes away at once (issue 12.11): stopping the GPU worker may take its
        grace period, and running jobs go back to the queue meanwhile."""
        if mode is CloseMode.FINISH:
            self.statusBar().showMessage("Finishing the running jobs before quitting…")
        self.hide()  # also when called directly, not from closeEvent
        if mode is CloseMode.PAUSE:
            await self.engine.pause()
        try:
            await self.engine.close(finish_running=mode is CloseMode.FINISH)
        finally:
            self.signals.detach()
            tasks.set_error_reporter(None)
            self._shut_down = True
            if self._tray is not None:
                self._tray.hide()
            self.close()
            self.shutdown_finished.emit()
