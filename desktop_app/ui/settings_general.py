"""The settings dialog's pages that are not about one provider: new jobs' defaults
and the window's look ("General"), and the spending caps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_app.config import Settings
from desktop_app.secrets import KeyringUnavailable, KeyStore, api_token, new_api_token
from desktop_app.ui.prompt_editor import FORMATS, MODES

THEMES = [("Follow the system", "system"), ("Light", "light"), ("Dark", "dark")]


class GeneralPage(QWidget):
    """What a new job starts with (the prompt editor's initial choices; the CLI reads
    the same settings) and how the window looks."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode = QComboBox(self)
        self.mode.setObjectName("defaultMode")
        for text, mode in MODES:
            self.mode.addItem(text, mode)
        self.allow_fallback = QCheckBox("Fall back to the cloud", self)
        self.allow_adaptation = QCheckBox("Adapt size/count to the provider", self)
        self.allow_refusal_failover = QCheckBox("Try another provider after a refusal", self)
        self.output_format = QComboBox(self)
        for text, fmt in FORMATS:
            self.output_format.addItem(text, fmt)
        self.encoding_quality = QSpinBox(self)
        self.encoding_quality.setRange(1, 100)
        self.encoding_quality.setToolTip("JPEG and WebP encoding quality (PNG is lossless)")
        jobs = QGroupBox("New jobs start with", self)
        jobs_form = QFormLayout(jobs)
        jobs_form.addRow("Provider", self.mode)
        jobs_form.addRow("", self.allow_fallback)
        jobs_form.addRow("", self.allow_adaptation)
        jobs_form.addRow("", self.allow_refusal_failover)
        jobs_form.addRow("Image format", self.output_format)
        jobs_form.addRow("JPEG/WebP quality", self.encoding_quality)

        self.theme = QComboBox(self)
        self.theme.setObjectName("theme")
        for text, value in THEMES:
            self.theme.addItem(text, value)
        self.recent_prompts = QSpinBox(self)
        self.recent_prompts.setObjectName("recentPrompts")
        self.recent_prompts.setRange(0, 1000)
        self.recent_prompts.setToolTip("How many recent prompts the history keeps (0: none)")
        window = QGroupBox("Window", self)
        window_form = QFormLayout(window)
        window_form.addRow("Theme", self.theme)
        window_form.addRow("Recent prompts kept", self.recent_prompts)

        self.serve_api = QCheckBox("Serve the API while ImageDesk is open", self)
        self.serve_api.setObjectName("serveApi")
        self.serve_api.setToolTip("Answer the OpenAI Images and Automatic1111 APIs on "
                                  "127.0.0.1 for other tools (README: Use ImageDesk from "
                                  "other tools); each request needs the API token")
        self.api_port = QSpinBox(self)
        self.api_port.setObjectName("apiPort")
        self.api_port.setRange(0, 65535)
        self.api_port.setToolTip("TCP port on 127.0.0.1 (7860, as Automatic1111; 0: any)")
        self.token = QLineEdit(self)
        self.token.setObjectName("apiToken")
        self.token.setReadOnly(True)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("made on first use")
        self.show_token = QCheckBox("Show", self)
        self.new_token = QPushButton("New token", self)
        self.new_token.setToolTip("Replace the token: clients using the old one are refused")
        token_row = QHBoxLayout()
        token_row.addWidget(self.token, 1)
        token_row.addWidget(self.show_token)
        token_row.addWidget(self.new_token)
        api = QGroupBox("Local API", self)
        api_form = QFormLayout(api)
        api_form.addRow("", self.serve_api)
        api_form.addRow("Port", self.api_port)
        api_form.addRow("Token", token_row)
        self._keys: KeyStore | None = None
        self._on_new_token: Callable[[str], None] = lambda _token: None
        self.show_token.toggled.connect(self._show_token)
        self.new_token.clicked.connect(self._replace_token)

        layout = QVBoxLayout(self)
        layout.addWidget(jobs)
        layout.addWidget(window)
        layout.addWidget(api)
        layout.addStretch(1)

    def attach_token(self, keys: KeyStore, on_new_token: Callable[[str], None]) -> None:
        """Show and replace the API token (kept in the keyring, ``secrets.api_token``)."""
        self._keys = keys
        self._on_new_token = on_new_token

    def _show_token(self, shown: bool) -> None:
        self.token.setEchoMode(QLineEdit.EchoMode.Normal if shown
                               else QLineEdit.EchoMode.Password)
        if shown and not self.token.text() and self._keys is not None:
            try:
                self.token.setText(api_token(self._keys))
            except KeyringUnavailable as error:
                self.token.setPlaceholderText(error.message)

    def _replace_token(self) -> None:
        if self._keys is None:
            return
        try:
            token = new_api_token(self._keys)
        except KeyringUnavailable as error:
            self.token.setPlaceholderText(error.message)
            return
        self.token.setText(token)
        self._on_new_token(token)

    def load(self, settings: Settings) -> None:
        routing, output, ui = settings.routing, settings.output, settings.ui
        self.mode.setCurrentIndex(self.mode.findData(routing.mode))
        self.allow_fallback.setChecked(routing.allow_cloud_fallback)
        self.allow_adaptation.setChecked(routing.allow_adaptation)
        self.allow_refusal_failover.setChecked(routing.allow_failover_after_refusal)
        self.output_format.setCurrentIndex(self.output_format.findData(output.format))
        self.encoding_quality.setValue(output.quality)
        self.theme.setCurrentIndex(self.theme.findData(ui.theme))
        self.recent_prompts.setValue(ui.recent_prompts_max)
        self.serve_api.setChecked(ui.serve_api)
        self.api_port.setValue(ui.api_port)

    def changes(self) -> dict[str, dict[str, Any]]:
        return {
            "routing": {"mode": self.mode.currentData(),
                        "allow_cloud_fallback": self.allow_fallback.isChecked(),
                        "allow_adaptation": self.allow_adaptation.isChecked(),
                        "allow_failover_after_refusal": self.allow_refusal_failover.isChecked()},
            "output": {"format": self.output_format.currentData(),
                       "quality": self.encoding_quality.value()},
            "ui": {"theme": self.theme.currentData(),
                   "recent_prompts_max": self.recent_prompts.value(),
                   "serve_api": self.serve_api.isChecked(), "api_port": self.api_port.value()},
        }


class CapField(QWidget):
    """A spending cap: off (no cap), or an amount, $0 included (the cloud is never
    billed). A plain spin box read as ``value() or None`` turned $0 into "no cap"."""

    def __init__(self, value: float | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.limited = QCheckBox("Cap at", self)
        self.amount = QDoubleSpinBox(self)
        self.amount.setRange(0, 1_000_000)
        self.amount.setPrefix("$")
        self.amount.setDecimals(2)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.limited)
        row.addWidget(self.amount, 1)
        self.limited.toggled.connect(self.amount.setEnabled)
        self.set_value(value)

    def set_value(self, value: float | None) -> None:
        self.limited.setChecked(value is not None)
        self.amount.setEnabled(value is not None)
        self.amount.setValue(value or 0.0)

    def value(self) -> float | None:
        return self.amount.value() if self.limited.isChecked() else None


class SpendingPage(QWidget):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.daily = CapField(settings.budget.daily_usd, self)
        self.daily.setObjectName("dailyCap")
        self.monthly = CapField(settings.budget.monthly_usd, self)
        self.monthly.setObjectName("monthlyCap")
        form = QFormLayout(self)
        form.addRow("Daily cap", self.daily)
        form.addRow("Monthly cap", self.monthly)
        note = QLabel("Unticked: no cap. When a cap is reached the cloud is skipped "
                      "(\"over budget\"); a $0 cap keeps it from ever being billed.", self)
        note.setWordWrap(True)
        form.addRow(note)

    def changes(self) -> dict[str, Any]:
        return {"daily_usd": self.daily.value(), "monthly_usd": self.monthly.value()}
