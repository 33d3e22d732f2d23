"""The line under Generate that says where the job will go and what it will cost
before it runs ("local (~6 s, free) → openai if it fails (~20 s, $0.04)"), with the
skipped providers and why one click away. It follows the form as the user edits it
(debounced), asking the engine's route quote; nothing is reserved or called.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from desktop_app.domain.errors import ImageDeskError
from desktop_app.domain.request import GenerationRequest
from desktop_app.engine.quote import RouteQuote
from desktop_app.ui.tasks import spawn

Quote = Callable[[GenerationRequest], Awaitable[RouteQuote]]
DEBOUNCE_MS = 250


class RouteLine(QWidget):
    def __init__(self, build: Callable[[], GenerationRequest | None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._build = build  # the form as a request, or None while it is not valid
        self._quote: Quote | None = None
        self._asked = 0  # answers to older questions are dropped
        self.summary = QLabel(self)
        self.summary.setObjectName("routeSummary")
        self.summary.setWordWrap(True)
        self.summary.setAccessibleName("Where the job will go and what it will cost")
        self.summary.linkActivated.connect(self._toggle_details)
        self.details = QLabel(self)
        self.details.setObjectName("routeSkipped")
        self.details.setWordWrap(True)
        self.details.setAccessibleName("Providers skipped and why")
        self.details.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.details)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh)

    def set_quote_source(self, quote: Quote) -> None:
        self._quote = quote
        self.refresh()

    def schedule(self) -> None:
        """The form changed: ask again once the user pauses."""
        self._timer.start()

    def refresh(self) -> None:
        if self._quote is None:
            return
        request = self._build()
        self._asked += 1
        if request is None:
            self.summary.setText("Route: —  (fix the form first)")
            return
        spawn(self._ask(self._quote, request, self._asked))

    async def _ask(self, quote: Quote, request: GenerationRequest, asked: int) -> None:
        try:
            answer = await quote(request)
        except ImageDeskError as error:
            if asked == self._asked:
                self.summary.setText(f"Route: unknown ({error.message})")
            return
        if asked == self._asked:
            self.show_quote(answer)

    def show_quote(self, quote: RouteQuote) -> None:
        text = html.escape(quote.line())
        if quote.skipped:
            text += f' &nbsp;<a href="skipped">{len(quote.skipped)} skipped — why?</a>'
        self.summary.setText(f"Route: {text}")
        self.details.setText("<br>".join(
            f"{html.escape(name)}: {html.escape(reason)}" for name, reason in quote.skipped))
        if not quote.skipped:
            self.details.hide()

    def _toggle_details(self, _link: str) -> None:
        self.details.setVisible(not self.details.isVisible())
