"""Per-provider figures: success and error rates, errors by class, rate-limit hits,
latency percentiles, images and spend today and this month."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from desktop_app.engine.service import ProviderStatus

COLUMNS = ["Provider", "Calls", "Success", "Errors by class", "429s", "p50", "p95",
           "Images", "Today", "Month"]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def metrics_row(status: ProviderStatus) -> list[str]:
    m = status.metrics
    success = None if not m.calls else m.successes / m.calls
    errors = ", ".join(f"{k} {v}" for k, v in sorted(m.failures_by_class.items())) or "—"
    return [status.name, str(m.calls), _pct(success), errors, str(m.rate_limited),
            _secs(m.p50_s), _secs(m.p95_s), str(m.images),
            f"${status.spend_today_usd:.2f}", f"${status.spend_month_usd:.2f}"]


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
