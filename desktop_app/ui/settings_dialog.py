"""Provider settings: per provider on/off, order, key, model, limits and breaker,
and a "Test connection" that runs the provider's real health check without
freezing the dialog.

API keys go only to the OS keyring through ``KeyStore``; the settings file
never sees them. Saving hands the new settings to ``save`` (the app writes the
file and rebuilds the changed providers, resetting their forced-open breakers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.config import Settings, SettingsError
from desktop_app.domain.errors import ImageDeskError
from desktop_app.providers import registry
from desktop_app.providers.registry import ConnectionReport
from desktop_app.secrets import KeySource, KeyStore
from desktop_app.ui.settings_general import GeneralPage, SpendingPage
from desktop_app.ui.settings_pages import KeyField, ProviderPage, page_for
from desktop_app.ui.tasks import spawn

# (provider name, the settings as edited, the key typed but not yet saved) -> report
TestConnection = Callable[[str, Settings, str | None], Awaitable[ConnectionReport]]
SaveSettings = Callable[[Settings], None]


class SettingsDialog(QDialog):
    saved = Signal(object)  # the new Settings

    def __init__(self, settings: Settings, keys: KeyStore, *, save: SaveSettings,
                 test_connection: TestConnection | None = None,
                 on_key_changed: Callable[[], None] | None = None,
                 on_api_token_changed: Callable[[str], None] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.resize(780, 680)
        self.settings = settings
        self.keys = keys
        self._save = save
        self._test = test_connection
        self._key_changed = on_key_changed or (lambda: None)
        self._api_token_changed = on_api_token_changed or (lambda _token: None)
        self.pages: dict[str, ProviderPage] = {}
        sections = type(settings).model_fields
        for descriptor in registry.descriptors():
            if descriptor.name not in sections:
                continue  # nothing to save it in: it runs on its settings model's defaults
            page = page_for(descriptor, self)
            page.load(descriptor.section(settings))
            self.pages[descriptor.name] = page
        self._build()
        for name in self.pages:
            self.refresh_key_status(name)

    # -- layout ------------------------------------------------------------------

    def _build(self) -> None:
        self.order = QListWidget(self)
        self.order.setObjectName("providerOrder")
        self.order.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.order.setMaximumWidth(180)
        self.stack = QStackedWidget(self)
        ranked = sorted(self.pages, key=lambda n: registry.get(n).section(self.settings).priority)
        for name in ranked:
            item = QListWidgetItem(registry.label_of(name))
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.order.addItem(item)
        for page in self.pages.values():
            scroll = QScrollArea(self)
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            scroll.setWidget(page)
            self.stack.addWidget(scroll)
            page.test_button.clicked.connect(lambda _=False, p=page: self.test_connection(p))
        self.order.currentItemChanged.connect(self._show_page)
        self.order.setCurrentRow(0)
        up, down = QPushButton("Up", self), QPushButton("Down", self)
        up.clicked.connect(lambda: self.move_provider(-1))
        down.clicked.connect(lambda: self.move_provider(1))
        left = QVBoxLayout()
        left.addWidget(QLabel("Order (first is tried first)"))
        left.addWidget(self.order, 1)
        arrows = QHBoxLayout()
        arrows.addWidget(up)
        arrows.addWidget(down)
        left.addLayout(arrows)
        providers = QWidget(self)
        row = QHBoxLayout(providers)
        row.addLayout(left)
        row.addWidget(self.stack, 1)

        self.general = GeneralPage(self)
        self.general.load(self.settings)
        self.general.attach_token(self.keys, self._api_token_changed)
        self.spending = SpendingPage(self.settings, self)

        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.general, "General")
        self.tabs.addTab(providers, "Providers")
        self.tabs.addTab(self.spending, "Spending")
        self.tabs.setCurrentWidget(providers)
        self.error = QLabel(self)
        self.error.setObjectName("settingsError")
        self.error.setStyleSheet("color: #d1242f;")
        self.error.setWordWrap(True)
        for name, page in self.pages.items():
            if page.key_field is not None:
                page.key_field.remove.clicked.connect(lambda _=False, n=name: self.delete_key(n))
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    def _show_page(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.show_page(self.pages[item.data(Qt.ItemDataRole.UserRole)])

    def show_page(self, page: ProviderPage) -> None:
        for i in range(self.stack.count()):
            scroll = self.stack.widget(i)
            if isinstance(scroll, QScrollArea) and scroll.widget() is page:
                self.stack.setCurrentIndex(i)

    def move_provider(self, delta: int) -> None:
        row = self.order.currentRow()
        target = row + delta
        if row < 0 or not 0 <= target < self.order.count():
            return
        item = self.order.takeItem(row)
        self.order.insertItem(target, item)
        self.order.setCurrentRow(target)

    def provider_order(self) -> list[str]:
        return [self.order.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.order.count())]

    # -- keys --------------------------------------------------------------------

    def refresh_key_status(self, name: str) -> None:
        field = self.pages[name].key_field
        if field is None:
            return
        status = self.keys.status(name)
        if status.source is KeySource.ENV:
            text = (f"Using the {field.noun} from the environment ({status.masked}); "
                    "it wins over the keyring.")
        elif status.source is KeySource.KEYRING:
            text = (f"A {field.noun} is stored in {status.backend} ({status.masked}). "
                    "Type a new one to replace it.")
        elif status.error:
            text = status.error
        else:
            text = (f"No {field.noun} yet. It will be stored in {status.backend}, never in "
                    "the settings file.")
        self._say(field, text, error=bool(status.error))
        field.remove.setEnabled(status.source is KeySource.KEYRING)

    def _say(self, field: KeyField, text: str, *, error: bool) -> None:
        field.status.setText(text)
        field.status.setStyleSheet("color: #d1242f;" if error else "")

    def delete_key(self, name: str) -> None:
        field = self.pages[name].key_field
        assert field is not None
        try:
            self.keys.delete(name)
        except ImageDeskError as error:
            self._say(field, error.message, error=True)
            return
        self._key_changed()  # providers must stop using the deleted key now
        self.refresh_key_status(name)

    # -- building, testing, saving -----------------------------------------------

    def edited_settings(self) -> Settings:
        """The settings as edited; raises ``SettingsError`` saying what is wrong."""
        changes: dict[str, dict[str, Any]] = {}
        for name, page in self.pages.items():
            try:
                changes[name] = page.changes()
            except ValueError as error:
                self.show_page(page)
                raise SettingsError(f"{name}: {error}") from None
        for rank, name in enumerate(self.provider_order()):
            changes[name]["priority"] = rank * 10
        changes.update(self.general.changes())
        changes["budget"] = self.spending.changes()
        return self.settings.updated(changes)

    def test_connection(self, page: ProviderPage) -> None:
        if self._test is None:
            page.test_result.setText("Testing is not available here.")
            return
        try:
            candidate = self.edited_settings()
        except SettingsError as error:
            page.test_result.setText(error.message)
            return
        key = page.typed_secret()
        page.test_button.setEnabled(False)
        page.test_result.setStyleSheet("")
        page.test_result.setText("Testing…")

        async def run() -> tuple[bool, str]:
            assert self._test is not None
            try:
                report = await self._test(page.section, candidate, key)
            except ImageDeskError as error:
                return False, error.message
            return report.passed, report.message

        def done(result: tuple[bool, str]) -> None:
            ok, message = result
            page.test_button.setEnabled(True)
            page.test_result.setText(("✔ " if ok else "✘ ") + message)
            page.test_result.setStyleSheet("color: #2ea043;" if ok else "color: #d1242f;")
        task = spawn(run(), done)
        task.add_done_callback(lambda _t: page.test_button.setEnabled(True))

    def save(self) -> None:
        """Store typed keys, then save the settings. Replacing a stored key goes
        through rotation: the new key is tried first (the provider's connection
        test, with the settings as edited) and the old one stays if it fails."""
        self.error.clear()
        try:
            new = self.edited_settings()
        except SettingsError as error:
            self.error.setText(error.message)
            return
        typed = {name: key for name, page in self.pages.items()
                 if page.key_field is not None and (key := page.typed_secret())}
        replacing = [name for name in typed if self._test is not None
                     and self._stored_in_keyring(name)]
        for name in (n for n in typed if n not in replacing):
            if not self._store_key(name, typed[name]):
                return
        if not replacing:
            self._finish(new)
            return
        self.buttons.setEnabled(False)
        self.error.setStyleSheet("")
        self.error.setText("Testing the new key before it replaces the stored one…")
        task = spawn(self._rotate_keys(new, {n: typed[n] for n in replacing}),
                     lambda ok: self._finish(new) if ok else None)
        task.add_done_callback(lambda _t: self.buttons.setEnabled(True))

    def _stored_in_keyring(self, name: str) -> bool:
        return self.keys.status(name).source is KeySource.KEYRING

    def _store_key(self, name: str, key: str) -> bool:
        page = self.pages[name]
        assert page.key_field is not None
        try:
            self.keys.set(name, key)
            self._key_changed()
        except ImageDeskError as error:  # InvalidKey or KeyringUnavailable
            self._key_refused(page, page.key_field, error.message)
            return False
        page.key_field.secret.clear()
        return True

    def _key_refused(self, page: ProviderPage, field: KeyField, why: str) -> None:
        self._say(field, why, error=True)
        self.show_page(page)
        self.error.setStyleSheet("color: #d1242f;")
        self.error.setText("The key was not stored: " + why)

    async def _rotate_keys(self, new: Settings, keys: dict[str, str]) -> bool:
        for name, key in keys.items():
            page = self.pages[name]
            field = page.key_field
            assert field is not None
            why = await self._rotate(new, name, key, field.noun)
            if why is not None:
                self._key_refused(page, field, why)
                return False
            self._key_changed()
            field.secret.clear()
            self.refresh_key_status(name)
        return True

    async def _rotate(self, new: Settings, name: str, key: str, noun: str) -> str | None:
        """Replace ``name``'s stored key with ``key`` if it passes the connection test;
        else why not (the stored key is then untouched)."""
        test, reports = self._test, []
        assert test is not None

        async def check(candidate: str) -> bool:
            report = await test(name, new, candidate)
            reports.append(report)
            return report.passed
        try:
            await self.keys.rotate(name, key, check)
        except ImageDeskError as error:
            if reports and not reports[-1].passed:
                return (f"the new {noun} failed the connection test, so the stored one is "
                        f"kept: {reports[-1].message}")
            return error.message
        return None

    def _finish(self, new: Settings) -> None:
        try:
            self._save(new)
        except (ImageDeskError, OSError) as error:
            self.error.setText(f"Could not save the settings: {error}")
            return
        self.settings = new
        self.saved.emit(new)
        self.accept()
