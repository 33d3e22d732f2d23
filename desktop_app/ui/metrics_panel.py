"""Per-provider figures: success and error rates, errors by class, rate-limit hits,
latency percentiles, images and spend today and this month."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from desktop_app.engine.status import ProviderStatus

COLUMNS = ["Provider", "Calls today", "Success", "Errors by class", "429s", "p50", "p95",
           "Images today", "Spend today", "Images month", "Spend month"]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def metrics_row(status: ProviderStatus) -> list[str]:
    """Today's and this month's figures (kept across restarts); latency falls back
    to this session's samples when the day has none yet."""
    today, month, session = status.today, status.month, status.metrics
    calls = today.successes + today.failure_count
    success = today.successes / calls if calls else None
    errors = ", ".join(f"{k} {v}" for k, v in sorted(today.failures.items())) or "—"
    p50 = today.latency_p50_s if today.latency_p50_s is not None else session.p50_s
    p95 = today.latency_p95_s if today.latency_p95_s is not None else session.p95_s
    return [status.name, str(calls), _pct(success), errors, str(today.rate_limited),
            _secs(p50), _secs(p95), str(today.images), f"${today.cost_usd:.2f}",
            str(month.images), f"${month.cost_usd:.2f}"]


class MetricsPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("metricsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(
            3, QHeaderView.ResizeMode.Stretch)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)

    def show_statuses(self, statuses: list[ProviderStatus]) -> None:
        self.table.setRowCount(len(statuses))
        for row, status in enumerate(statuses):
            for column, text in enumerate(metrics_row(status)):
                item = self.table.item(row, column)
                if item is None:
                    self.table.setItem(row, column, QTableWidgetItem(text))
                elif item.text() != text:
                    item.setText(text)

    def cell(self, row: int, column: str) -> str:
        item = self.table.item(row, COLUMNS.index(column))
        return item.text() if item else ""
