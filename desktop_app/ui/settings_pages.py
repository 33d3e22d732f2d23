"""The per-provider pages of the settings dialog: each loads a settings section
and returns the changes the user made, as plain values for ``Settings.updated``."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
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

from desktop_app.config import (
    BreakerSettings,
    LocalSettings,
    OpenAISettings,
    ProviderSettings,
    RemoteSettings,
)
from desktop_app.providers.registry import ProviderDescriptor

BUILTIN = "builtin:tiny"
SOURCES = [("Built-in test model (random weights)", "builtin"), ("Hugging Face id", "hf"),
           ("Diffusers folder", "folder"), ("Single .safetensors file", "file")]


def _spin(low: float, high: float, value: float, decimals: int = 0,
          suffix: str = "") -> QSpinBox | QDoubleSpinBox:
    box: QSpinBox | QDoubleSpinBox
    if decimals:
        box = QDoubleSpinBox()
        box.setDecimals(decimals)
        box.setRange(low, high)
    else:
        box = QSpinBox()
        box.setRange(int(low), int(high))
    box.setValue(value)  # type: ignore[arg-type]
    if suffix:
        box.setSuffix(suffix)
    return box


def format_rate_limits(limits: list[Any]) -> str:
    return ", ".join(f"{r.limit}/{r.period_s:g}s" for r in limits)


def parse_rate_limits(text: str) -> list[dict[str, float]]:
    """``"5/60s, 200/86400s"`` -> [{"limit": 5, "period_s": 60}, ...]; ValueError if unreadable."""
    limits = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?", part)
        if match is None:
            raise ValueError(f"Rate limits look like 5/60s, 200/86400s (calls/seconds); "
                             f"{part!r} is not one.")
        limits.append({"limit": int(match.group(1)), "period_s": float(match.group(2))})
    return limits


class BreakerBox(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Circuit breaker", parent)
        self.window_kind = QComboBox(self)
        self.window_kind.addItem("Last N calls", "count")
        self.window_kind.addItem("Last N seconds", "time")
        self.window_size = _spin(1, 100_000, 6)
        self.min_calls = _spin(1, 1000, 3)
        self.failure_rate = _spin(1, 100, 50, suffix=" %")
        self.open_base_s = _spin(1, 86_400, 30, suffix=" s")
        self.open_max_s = _spin(1, 86_400, 300, suffix=" s")
        form = QFormLayout(self)
        form.addRow("Window", self.window_kind)
        form.addRow("Window size", self.window_size)
        form.addRow("Minimum calls", self.min_calls)
        form.addRow("Open at failure rate", self.failure_rate)
        form.addRow("Open for (first time)", self.open_base_s)
        form.addRow("Open for at most", self.open_max_s)

    def load(self, b: BreakerSettings) -> None:
        self.window_kind.setCurrentIndex(0 if b.window == "count" else 1)
        self.window_size.setValue(int(b.window_size))
        self.min_calls.setValue(b.min_calls)
        self.failure_rate.setValue(round(b.failure_rate * 100))
        self.open_base_s.setValue(int(b.open_base_s))
        self.open_max_s.setValue(int(b.open_max_s))

    def changes(self) -> dict[str, Any]:
        return {"window": self.window_kind.currentData(), "window_size": self.window_size.value(),
                "min_calls": self.min_calls.value(),
                "failure_rate": self.failure_rate.value() / 100,
                "open_base_s": self.open_base_s.value(), "open_max_s": self.open_max_s.value()}


class KeyField:
    """The provider's secret (an API key, a password): typed here, stored in the
    keyring on Save and never in the settings file; its status; a button to
    remove the stored one."""

    def __init__(self, noun: str, parent: QWidget) -> None:
        self.noun = noun
        self.secret = QLineEdit(parent)
        self.secret.setObjectName("secret")
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        show = QCheckBox("Show", parent)
        show.toggled.connect(lambda on: self.secret.setEchoMode(
            QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password))
        self.row = QHBoxLayout()
        self.row.addWidget(self.secret, 1)
        self.row.addWidget(show)
        self.status = QLabel(parent)
        self.status.setObjectName("keyStatus")
        self.status.setWordWrap(True)
        self.remove = QPushButton(f"Remove stored {noun}", parent)


class ProviderPage(QWidget):
    """The fields every provider has; subclasses add their own above them.
    ``section`` is the provider's name (set by ``page_for``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.section = ""
        self.key_field: KeyField | None = None
        self.enabled = QCheckBox("Enabled", self)
        self.concurrency = _spin(1, 16, 1)
        self.rate_limits = QLineEdit(self)
        self.rate_limits.setPlaceholderText("none   (e.g. 5/60s, 200/86400s)")
        self.breaker = BreakerBox(self)
        self.error = QLabel(self)
        self.error.setStyleSheet("color: #d1242f;")
        self.error.setWordWrap(True)
        self.test_button = QPushButton("Test connection", self)
        self.test_result = QLabel(self)
        self.test_result.setWordWrap(True)
        self.form = QFormLayout()
        self.form.addRow("", self.enabled)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        tail = self.tail_form = QFormLayout()
        tail.addRow("Parallel calls", self.concurrency)
        tail.addRow("Rate limits", self.rate_limits)
        layout.addLayout(tail)
        layout.addWidget(self.breaker)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_result, 1)
        layout.addLayout(test_row)
        layout.addWidget(self.error)
        layout.addStretch(1)

    def add_key_field(self, noun: str) -> KeyField:
        """A field for the provider's secret, right under "Enabled"."""
        self.key_field = KeyField(noun, self)
        self.form.insertRow(1, noun[:1].upper() + noun[1:], self.key_field.row)
        self.form.insertRow(2, "", self.key_field.status)
        self.form.insertRow(3, "", self.key_field.remove)
        return self.key_field

    def typed_secret(self) -> str | None:
        """The secret typed but not stored yet, if this provider has one."""
        if self.key_field is None:
            return None
        return self.key_field.secret.text().strip() or None

    def load(self, s: Any) -> None:
        self.load_common(s)

    def load_common(self, s: ProviderSettings) -> None:
        self.enabled.setChecked(s.enabled)
        self.concurrency.setValue(s.concurrency)
        self.rate_limits.setText(format_rate_limits(s.rate_limits))
        self.breaker.load(s.breaker)

    def changes(self) -> dict[str, Any]:
        return {"enabled": self.enabled.isChecked(), "concurrency": self.concurrency.value(),
                "rate_limits": parse_rate_limits(self.rate_limits.text()),
                "breaker": self.breaker.changes()}


class LocalPage(ProviderPage):

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = QComboBox(self)
        for text, key in SOURCES:
            self.source.addItem(text, key)
        self.model = QLineEdit(self)
        self.model.setObjectName("localModel")
        self.browse = QPushButton("Browse…", self)
        self.browse.clicked.connect(self._browse)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(self.browse)
        self.device = QComboBox(self)
        for device in ("auto", "cuda", "mps", "cpu"):
            self.device.addItem(device, device)
        self.allow_cpu = QCheckBox("Allow CPU (slow; ranks after the cloud)", self)
        self.attention_slicing = QCheckBox("Attention slicing (less memory)", self)
        self.vae_tiling = QCheckBox("VAE tiling (large images)", self)
        self.cpu_offload = QCheckBox("Offload to CPU between steps", self)
        self.form.addRow("Model source", self.source)
        self.form.addRow("Model", model_row)
        self.form.addRow("Device", self.device)
        for box in (self.allow_cpu, self.attention_slicing, self.vae_tiling, self.cpu_offload):
            self.form.addRow("", box)
        self.source.currentIndexChanged.connect(self._source_changed)
        # one GPU runs one job at a time: no "Parallel calls" for the local provider
        self.tail_form.setRowVisible(self.concurrency, False)

    def load(self, s: LocalSettings) -> None:
        self.load_common(s)
        model = s.model
        kind = ("builtin" if model.startswith("builtin:") else
                "file" if model.endswith(".safetensors") else
                "folder" if model.startswith(("/", "~", ".")) else "hf")
        self.source.setCurrentIndex([k for _, k in SOURCES].index(kind))
        self.model.setText("" if kind == "builtin" else model)
        self.device.setCurrentIndex(self.device.findData(s.device))
        self.allow_cpu.setChecked(s.allow_cpu)
        self.attention_slicing.setChecked(s.attention_slicing)
        self.vae_tiling.setChecked(s.vae_tiling)
        self.cpu_offload.setChecked(s.cpu_offload)
        self._source_changed()

    def _source_changed(self) -> None:
        kind = self.source.currentData()
        self.model.setEnabled(kind != "builtin")
        self.browse.setEnabled(kind in ("folder", "file"))
        self.model.setPlaceholderText({"hf": "org/name, e.g. stabilityai/sd-turbo",
                                       "folder": "a folder with model_index.json",
                                       "file": "a .safetensors checkpoint"}.get(kind, ""))

    def _browse(self) -> None:
        if self.source.currentData() == "file":
            path, _ = QFileDialog.getOpenFileName(self, "Choose a checkpoint", "",
                                                  "Checkpoints (*.safetensors)")
        else:
            path = QFileDialog.getExistingDirectory(self, "Choose a diffusers folder")
        if path:
            self.model.setText(path)

    def changes(self) -> dict[str, Any]:
        model = BUILTIN if self.source.currentData() == "builtin" else self.model.text().strip()
        return {**super().changes(), "model": model, "device": self.device.currentData(),
                "allow_cpu": self.allow_cpu.isChecked(),
                "attention_slicing": self.attention_slicing.isChecked(),
                "vae_tiling": self.vae_tiling.isChecked(),
                "cpu_offload": self.cpu_offload.isChecked()}


class OpenAIPage(ProviderPage):

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = QComboBox(self)
        self.model.setEditable(True)
        self.model.addItems(["gpt-image-2", "gpt-image-1", "dall-e-3", "dall-e-2"])
        self.base_url = QLineEdit(self)
        self.base_url.setPlaceholderText("empty for OpenAI itself; or an OpenAI-compatible URL")
        self.organization = QLineEdit(self)
        self.project = QLineEdit(self)
        self.timeout_s = _spin(1, 3600, 120, suffix=" s")
        self.form.addRow("Model", self.model)
        self.form.addRow("Base URL", self.base_url)
        self.form.addRow("Organization", self.organization)
        self.form.addRow("Project", self.project)
        self.form.addRow("Timeout", self.timeout_s)

    def load(self, s: OpenAISettings) -> None:
        self.load_common(s)
        self.model.setCurrentText(s.model)
        self.base_url.setText(s.base_url or "")
        self.organization.setText(s.organization or "")
        self.project.setText(s.project or "")
        self.timeout_s.setValue(int(s.timeout_s))

    def changes(self) -> dict[str, Any]:
        return {**super().changes(), "model": self.model.currentText().strip(),
                "base_url": self.base_url.text().strip() or None,
                "organization": self.organization.text().strip() or None,
                "project": self.project.text().strip() or None,
                "timeout_s": self.timeout_s.value()}


class RemotePage(ProviderPage):
    """The user's own GPU machines serving a BullMQ queue on Redis."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.redis_url = QLineEdit(self)
        self.redis_url.setObjectName("redisUrl")
        self.redis_url.setPlaceholderText("redis://render-box:6379/0 (password below, not here)")
        self.queue = QLineEdit(self)
        self.queue.setObjectName("remoteQueue")
        self.placement = QComboBox(self)
        for text, value in (("After this machine's GPU", "after_local"),
                            ("Before this machine's GPU", "before_local"),
                            ("Only while this machine's GPU is busy", "when_local_busy")):
            self.placement.addItem(text, value)
        self.transport = QComboBox(self)
        self.transport.addItem("Through Redis", "redis")
        self.transport.addItem("Through a shared folder", "folder")
        self.shared_folder = QLineEdit(self)
        self.shared_folder.setPlaceholderText("this machine's mount of the workers' folder")
        self.browse = QPushButton("Browse…", self)
        self.browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.shared_folder, 1)
        folder_row.addWidget(self.browse)
        self.form.addRow("Redis URL", self.redis_url)
        self.form.addRow("Queue", self.queue)
        self.form.addRow("Placement", self.placement)
        self.form.addRow("Images come back", self.transport)
        self.form.addRow("Shared folder", folder_row)
        self.transport.currentIndexChanged.connect(self._transport_changed)

    def load(self, s: RemoteSettings) -> None:
        self.load_common(s)
        self.concurrency.setRange(1, 64)
        self.concurrency.setValue(s.concurrency)
        self.redis_url.setText(s.redis_url)
        self.queue.setText(s.queue)
        self.placement.setCurrentIndex(self.placement.findData(s.placement))
        self.transport.setCurrentIndex(self.transport.findData(s.transport))
        self.shared_folder.setText(str(s.shared_folder) if s.shared_folder else "")
        self._transport_changed()

    def _transport_changed(self) -> None:
        folder = self.transport.currentData() == "folder"
        self.shared_folder.setEnabled(folder)
        self.browse.setEnabled(folder)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose the shared results folder")
        if path:
            self.shared_folder.setText(path)

    def changes(self) -> dict[str, Any]:
        folder = self.shared_folder.text().strip()
        return {**super().changes(), "redis_url": self.redis_url.text().strip(),
                "queue": self.queue.text().strip(), "placement": self.placement.currentData(),
                "transport": self.transport.currentData(),
                "shared_folder": str(Path(folder).expanduser()) if folder else None}


def page_for(descriptor: ProviderDescriptor, parent: QWidget | None = None) -> ProviderPage:
    """The Settings page a descriptor names (``"package.module:Class"``), with a
    secret field when the provider needs one. Resolved here, so descriptors
    never import Qt."""
    module_name, _, class_name = descriptor.settings_page.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, ProviderPage)):
        raise TypeError(f"{descriptor.settings_page} is not a settings page "
                        f"(provider {descriptor.name})")
    page = cls(parent)
    page.section = descriptor.name
    if descriptor.key is not None:
        page.add_key_field(descriptor.key.noun)
    return page
