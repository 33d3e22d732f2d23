"""The per-provider pages of the settings dialog: each loads a settings section
and returns the changes the user made, as plain values for ``Settings.updated``."""

from __future__ import annotations

import re
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

from desktop_app.config import BreakerSettings, LocalSettings, OpenAISettings, ProviderSettings

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


class ProviderPage(QWidget):
    """The fields every provider has; subclasses add their own above them."""

    section = ""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
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
    section = "local"

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
    section = "openai"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.api_key = QLineEdit(self)
        self.api_key.setObjectName("apiKey")
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.show_key = QCheckBox("Show", self)
        self.show_key.toggled.connect(lambda on: self.api_key.setEchoMode(
            QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password))
        key_row = QHBoxLayout()
        key_row.addWidget(self.api_key, 1)
        key_row.addWidget(self.show_key)
        self.key_status = QLabel(self)
        self.key_status.setObjectName("keyStatus")
        self.key_status.setWordWrap(True)
        self.model = QComboBox(self)
        self.model.setEditable(True)
        self.model.addItems(["gpt-image-2", "gpt-image-1", "dall-e-3", "dall-e-2"])
        self.base_url = QLineEdit(self)
        self.base_url.setPlaceholderText("empty for OpenAI itself; or an OpenAI-compatible URL")
        self.organization = QLineEdit(self)
        self.project = QLineEdit(self)
        self.timeout_s = _spin(1, 3600, 120, suffix=" s")
        self.form.addRow("API key", key_row)
        self.form.addRow("", self.key_status)
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
