"""The prompt editor: builds a ``GenerationRequest`` and shows any validation error at its field.

The request's own validation (and the engine's, on submit) is the only rule
here: the editor passes the values on as typed and puts the message from
``InvalidRequest.field`` under that field, so nothing invalid is ever queued.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.domain.errors import ImageDeskError, InvalidRequest
from desktop_app.domain.job import JobState
from desktop_app.domain.prompt_networks import parse_loras
from desktop_app.domain.request import (
    MAX_SEED,
    GenerationRequest,
    OutputFormat,
    Quality,
    RouteMode,
    RouteStrategy,
    RoutingPolicy,
)
from desktop_app.domain.samplers import SAMPLERS, sampler_named
from desktop_app.engine.events import JobFinished, JobProgress, JobStarted
from desktop_app.engine.router import mode_allows
from desktop_app.engine.status import ProviderKind
from desktop_app.store.styles import StyleLibrary
from desktop_app.ui.model_defaults import DefaultsFollower, JobDefaults
from desktop_app.ui.prompt_history import HistoryPicker, PromptHistory
from desktop_app.ui.route_line import RouteLine
from desktop_app.ui.source_tools import Action, SourceTools
from desktop_app.ui.styles_dialog import StylesDialog
from desktop_app.ui.tasks import spawn

SIZE_PRESETS: list[tuple[str, int, int]] = [
    ("1:1 · 512×512", 512, 512), ("1:1 · 768×768", 768, 768), ("1:1 · 1024×1024", 1024, 1024),
    ("3:2 · 768×512", 768, 512), ("2:3 · 512×768", 512, 768),
    ("4:3 · 640×480", 640, 480), ("3:4 · 480×640", 480, 640),
    ("16:9 · 912×512", 912, 512), ("9:16 · 512×912", 512, 912),
    ("3:2 · 1536×1024", 1536, 1024), ("2:3 · 1024×1536", 1024, 1536),
]
CUSTOM = "Custom"
MODES = [("Auto — local first, cloud fallback", RouteMode.AUTO),
         ("Local only — this machine, no remote workers", RouteMode.LOCAL_ONLY),
         ("Cloud only", RouteMode.CLOUD_ONLY)]
FORMATS = [("PNG", OutputFormat.PNG), ("JPEG", OutputFormat.JPEG), ("WebP", OutputFormat.WEBP)]
STRATEGIES = [("Order: prefer local", RouteStrategy.PREFER_LOCAL),
              ("Order: cheapest", RouteStrategy.CHEAPEST),
              ("Order: fastest", RouteStrategy.FASTEST),
              ("Order: balanced (time and money)", RouteStrategy.BALANCED)]
QUALITIES = [("Auto", Quality.AUTO), ("Low", Quality.LOW), ("Medium", Quality.MEDIUM),
             ("High", Quality.HIGH)]
Submit = Callable[[GenerationRequest], Awaitable[object]]


class _PromptBox(QPlainTextEdit):
    submit_requested = Signal()

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setTabChangesFocus(True)
        self.setAcceptDrops(False)  # the editor takes PNG drops for the whole form

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # a text box would take Ctrl+Enter as a new line before any shortcut saw it
        if (event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and event.modifiers() & Qt.KeyboardModifier.ControlModifier):
            self.submit_requested.emit()
            return
        super().keyPressEvent(event)


class PromptEditor(QWidget):
    submitted = Signal(object)  # the GenerationRequest that was queued

    def __init__(self, submit: Submit, settings: QSettings,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._submit = submit
        self.history = PromptHistory(settings)
        self._limits: dict[RouteMode, tuple[int, str]] = {}
        self.setAcceptDrops(True)
        self._errors: dict[str, tuple[QWidget, QLabel]] = {}
        self._followed_job: int | None = None  # the job the status line reports on
        self._build()

    # -- layout ------------------------------------------------------------------

    def _field(self, name: str, widget: QWidget, extra: QWidget | None = None) -> QWidget:
        box = QWidget(self)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(widget, 1)
        if extra is not None:
            row.addWidget(extra)
        layout.addLayout(row)
        error = QLabel(box)
        error.setObjectName(f"{name}Error")
        error.setWordWrap(True)
        error.setStyleSheet("color: #d1242f;")
        error.hide()
        layout.addWidget(error)
        widget.setObjectName(name)
        self._errors[name] = (widget, error)
        return box

    def _build(self) -> None:
        self.prompt = _PromptBox("Describe the image…  (drop a PNG here to recall its settings)")
        self.negative = _PromptBox("What to keep out (negative prompt)")
        self.prompt.setMinimumHeight(70)
        self.negative.setMaximumHeight(60)
        self.prompt_count = QLabel(self)
        self.negative_count = QLabel(self)
        for label in (self.prompt_count, self.negative_count):
            label.setAlignment(Qt.AlignmentFlag.AlignRight)
            label.setForegroundRole(label.foregroundRole())
        self.history_button = QToolButton(self)
        self.history_button.setText("History…")
        self.history_button.setToolTip("Recent prompts (Ctrl+H)")
        self.history_button.clicked.connect(self.show_history)

        self.preset = QComboBox(self)
        self.preset.addItems([p[0] for p in SIZE_PRESETS] + [CUSTOM])
        self.width_box, self.height_box = QSpinBox(self), QSpinBox(self)
        for box in (self.width_box, self.height_box):
            box.setRange(1, 9999)
            box.setSingleStep(64)
            box.setSuffix(" px")
        self.width_box.setValue(512)
        self.height_box.setValue(512)
        size_row = QWidget(self)
        sl = QHBoxLayout(size_row)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(self.preset, 2)
        sl.addWidget(self._field("width", self.width_box), 1)
        sl.addWidget(QLabel("×"))
        sl.addWidget(self._field("height", self.height_box), 1)

        self.steps = QSpinBox(self)
        self.steps.setRange(0, 999)
        self.steps.setValue(20)
        self.guidance = QDoubleSpinBox(self)
        self.guidance.setRange(0.0, 99.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setValue(7.0)
        self.n = QSpinBox(self)
        self.n.setRange(0, 99)
        self.n.setValue(1)
        self.seed = QLineEdit(self)
        self.seed.setPlaceholderText("random")
        self.seed_lock = QToolButton(self)
        self.seed_lock.setText("Lock")
        self.seed_lock.setCheckable(True)
        self.seed_lock.setToolTip("Keep this seed for the next jobs (unlocked: a new random seed)")
        self.seed_random = QToolButton(self)
        self.seed_random.setText("Random")
        self.seed_random.setToolTip("Pick a random seed and lock it")
        self.seed_random.clicked.connect(self.randomise_seed)
        seed_extra = QWidget(self)
        se = QHBoxLayout(seed_extra)
        se.setContentsMargins(0, 0, 0, 0)
        se.addWidget(self.seed_lock)
        se.addWidget(self.seed_random)

        self.mode = QComboBox(self)
        for text, mode in MODES:
            self.mode.addItem(text, mode)
        self.allow_fallback = QCheckBox("Fall back to the cloud", self)
        self.allow_fallback.setChecked(True)
        self.allow_adaptation = QCheckBox("Adapt size/count to the provider", self)
        self.allow_adaptation.setChecked(True)
        self.allow_refusal_failover = QCheckBox("Try another provider after a refusal", self)
        self.model = QComboBox(self)
        self.model.addItem("Model: the one in Settings", None)
        self.model.setToolTip("A checkpoint from your model library for this job (Settings "
                              "→ Local sets the default); the cloud ignores it")
        self._model_hashes: dict[str, str] = {}  # path -> short hash, where known
        self._loras: frozenset[str] | None = None  # installed LoRAs (lower case); None: unknown
        # path (None: the one in Settings) -> its family's defaults, where known
        self._model_defaults: dict[str | None, JobDefaults] = {}
        self._recalling = False  # recall restores the fields: no family defaults over them
        self.sampler = QComboBox(self)
        self.sampler.addItem("Sampler: the model's default", None)
        for name in SAMPLERS:
            self.sampler.addItem(f"Sampler: {name}", name)
        self.sampler.setToolTip("By its Automatic1111 name; the cloud ignores it, saying so")
        self.clip_skip = QSpinBox(self)
        self.clip_skip.setRange(1, 12)
        self.clip_skip.setToolTip("Automatic1111's clip skip: 1 is none; many SD 1.x anime "
                                  "models want 2. The cloud ignores it, saying so.")
        self.strategy = QComboBox(self)
        for text, strategy in STRATEGIES:
            self.strategy.addItem(text, strategy)
        self.strategy.setToolTip("How the providers that can serve the job are ordered, from "
                                 "their measured time and price (README: Routing strategies)")
        self.private = QCheckBox("Private: never leaves this machine", self)
        self.private.setToolTip("Only this machine's GPU may serve the job: no cloud, no remote "
                                "workers, not even by failover")
        self.styles = QLineEdit(self)
        self.styles.setPlaceholderText("Style names, comma separated")
        self.styles_button = QToolButton(self)
        self.styles_button.setText("Styles…")
        self.styles_button.setToolTip("Add, edit, import and pick styles")
        self.styles_button.clicked.connect(self.open_styles)
        self.style_library: StyleLibrary | None = None  # the profile's, set by the app
        self._policy_defaults = RoutingPolicy()
        self.output_format = QComboBox(self)
        self.output_format.setObjectName("outputFormat")
        for text, fmt in FORMATS:
            self.output_format.addItem(text, fmt)
        self.quality = QComboBox(self)
        self.quality.setObjectName("quality")
        for text, quality in QUALITIES:
            self.quality.addItem(text, quality)
        self.quality.setToolTip("How much work the cloud puts into each image (OpenAI's "
                                "low / medium / high; the price follows). Auto lets it choose.")
        self.generate_button = QPushButton("Generate", self)
        self.generate_button.setObjectName("generate")
        self.generate_button.setDefault(True)
        self.generate_button.setToolTip("Queue this request (Ctrl+Enter)")
        self.generate_button.clicked.connect(self.generate)
        self.status = QLabel(self)
        self.status.setObjectName("editorStatus")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        prompt_head = QWidget(self)
        ph = QHBoxLayout(prompt_head)
        ph.setContentsMargins(0, 0, 0, 0)
        ph.addWidget(self.prompt_count, 1)
        ph.addWidget(self.history_button)
        form.addRow("Prompt", self._field("prompt", self.prompt))
        form.addRow("", prompt_head)
        form.addRow("Negative", self._field("negative_prompt", self.negative))
        form.addRow("", self.negative_count)
        form.addRow("Size", size_row)
        form.addRow("Steps", self._field("steps", self.steps))
        form.addRow("Guidance", self._field("guidance", self.guidance))
        form.addRow("Model", self._field("model", self.model))
        form.addRow("Sampler", self._field("sampler", self.sampler))
        form.addRow("Clip skip", self._field("clip_skip", self.clip_skip))
        form.addRow("Seed", self._field("seed", self.seed, seed_extra))
        form.addRow("Images", self._field("n", self.n))
        form.addRow("Format", self.output_format)
        form.addRow("Quality", self.quality)
        form.addRow("Provider", self.mode)
        form.addRow("", self.allow_fallback)
        form.addRow("", self.allow_adaptation)
        form.addRow("", self.allow_refusal_failover)
        form.addRow("", self.strategy)
        form.addRow("", self.private)
        form.addRow("Styles", self._field("styles", self.styles, self.styles_button))
        self.source_tools = SourceTools(self)
        self.source_tools.vary_requested.connect(self.vary)
        self.source_tools.upscale_requested.connect(lambda: self._start("upscale"))
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.source_tools)
        layout.addWidget(self.generate_button)
        self.route = RouteLine(self._request_or_none, self)
        layout.addWidget(self.route)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self._name_controls()
        self.set_tab_order()

        self._follower = DefaultsFollower(self.width_box, self.height_box, self.guidance,
                                          self.negative)
        self.model.currentIndexChanged.connect(self._model_chosen)
        self.preset.currentIndexChanged.connect(self._apply_preset)
        self.width_box.valueChanged.connect(self._size_edited)
        self.height_box.valueChanged.connect(self._size_edited)
        self.prompt.submit_requested.connect(self.generate)
        self.negative.submit_requested.connect(self.generate)
        self.prompt.textChanged.connect(self._update_counts)
        self.negative.textChanged.connect(self._update_counts)
        self.mode.currentIndexChanged.connect(self._update_counts)
        self.mode.currentIndexChanged.connect(self._mode_changed)
        for changed in (self.prompt.textChanged, self.negative.textChanged,
                        self.mode.currentIndexChanged, self.strategy.currentIndexChanged,
                        self.private.toggled, self.allow_fallback.toggled,
                        self.allow_adaptation.toggled, self.n.valueChanged,
                        self.width_box.valueChanged, self.height_box.valueChanged,
                        self.quality.currentIndexChanged, self.styles.textChanged):
            changed.connect(self.route.schedule)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self, self.generate,
                      context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        QShortcut(QKeySequence("Ctrl+H"), self, self.show_history,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self._update_counts()

    def _name_controls(self) -> None:
        """Screen readers announce these (the form's labels are not linked to them)."""
        for widget, name in (
            (self.prompt, "Prompt"), (self.negative, "Negative prompt"),
            (self.history_button, "Prompt history"), (self.preset, "Size preset"),
            (self.width_box, "Width"), (self.height_box, "Height"), (self.steps, "Steps"),
            (self.guidance, "Guidance"), (self.model, "Model"), (self.sampler, "Sampler"),
            (self.clip_skip, "Clip skip"), (self.seed, "Seed"),
            (self.seed_lock, "Lock seed"),
            (self.seed_random, "Random seed"), (self.n, "Number of images"),
            (self.output_format, "Image format"), (self.quality, "Quality"),
            (self.mode, "Provider"), (self.allow_fallback, "Fall back to the cloud"),
            (self.allow_adaptation, "Adapt size and count to the provider"),
            (self.allow_refusal_failover, "Try another provider after a refusal"),
            (self.strategy, "Routing strategy"), (self.private, "Private job"),
            (self.styles, "Styles"), (self.styles_button, "Edit styles"),
            (self.generate_button, "Generate"), (self.status, "Job status"),
        ):
            widget.setAccessibleName(name)

    def tab_order(self) -> list[QWidget]:
        """The order Tab walks the form: top to bottom, Generate last."""
        return [self.prompt, self.negative, self.preset, self.width_box, self.height_box,
                self.steps, self.guidance, self.model, self.sampler, self.clip_skip,
                self.seed, self.seed_lock, self.seed_random, self.n,
                self.output_format, self.quality, self.mode, self.allow_fallback,
                self.allow_adaptation, self.allow_refusal_failover, self.strategy, self.private,
                self.styles, self.styles_button, *self.extra_tab_stops(),
                self.generate_button, self.history_button]

    def extra_tab_stops(self) -> list[QWidget]:
        return self.source_tools.focus_order()

    def set_tab_order(self) -> None:
        """Widgets made before they had a parent (the prompt boxes) joined the focus
        chain last, so Tab jumped from Negative out of the editor; this puts the chain
        in reading order. Called again when the editor is placed in the window."""
        order = self.tab_order()
        for first, second in itertools.pairwise(order):
            QWidget.setTabOrder(first, second)

    # -- size, seed, counts ------------------------------------------------------

    def _apply_preset(self, index: int) -> None:
        if 0 <= index < len(SIZE_PRESETS):
            _, w, h = SIZE_PRESETS[index]
            for box, value in ((self.width_box, w), (self.height_box, h)):
                box.blockSignals(True)
                box.setValue(value)
                box.blockSignals(False)
            self.clear_errors("width", "height")

    def _size_edited(self) -> None:
        size = (self.width_box.value(), self.height_box.value())
        match = [i for i, p in enumerate(SIZE_PRESETS) if (p[1], p[2]) == size]
        self.preset.blockSignals(True)
        self.preset.setCurrentIndex(match[0] if match else len(SIZE_PRESETS))
        self.preset.blockSignals(False)

    def randomise_seed(self) -> None:
        self.seed.setText(str(random.randint(0, MAX_SEED)))
        self.seed_lock.setChecked(True)

    def _mode_changed(self) -> None:
        # "fall back to the cloud" means something only where the mode lets a job
        # run both here and in the cloud; the router's own rule says where that is
        mode = self.mode.currentData()
        self.allow_fallback.setEnabled(mode_allows(mode, ProviderKind.LOCAL)
                                       and mode_allows(mode, ProviderKind.CLOUD))

    def apply_defaults(self, policy: RoutingPolicy, output_format: OutputFormat) -> None:
        """Start new jobs from the profile's defaults (Settings): routing mode and
        choices, image format. Called at start and whenever Settings are saved."""
        self.mode.setCurrentIndex(self.mode.findData(policy.mode))
        self.allow_fallback.setChecked(policy.allow_cloud_fallback)
        self.allow_adaptation.setChecked(policy.allow_adaptation)
        self.allow_refusal_failover.setChecked(policy.allow_failover_after_refusal)
        self.strategy.setCurrentIndex(self.strategy.findData(policy.strategy))
        self._policy_defaults = policy
        self.output_format.setCurrentIndex(self.output_format.findData(output_format))
        self._mode_changed()

    def set_prompt_limits(self, limits: dict[RouteMode, tuple[int, str]]) -> None:
        """Per routing mode, the prompt length limit that applies and which provider sets it."""
        self._limits = dict(limits)
        self._update_counts()

    def _update_counts(self) -> None:
        limit = self._limits.get(self.mode.currentData())
        for box, label in ((self.prompt, self.prompt_count),
                           (self.negative, self.negative_count)):
            count = len(box.toPlainText())
            if limit is None:
                label.setText(f"{count:,} characters")
                label.setStyleSheet("")
                continue
            label.setText(f"{count:,} / {limit[0]:,} characters ({limit[1]})")
            label.setStyleSheet("color: #d1242f;" if count > limit[0] else "")

    # -- building and submitting -------------------------------------------------

    def values(self) -> dict[str, Any]:
        """The form as request fields, as typed (validation is the request's job)."""
        seed_text = self.seed.text().strip()
        seed: object = None
        if seed_text and self.seed_lock.isChecked():
            seed = int(seed_text) if seed_text.lstrip("-").isdigit() else seed_text
        return {
            "prompt": self.prompt.toPlainText(), "negative_prompt": self.negative.toPlainText(),
            "width": self.width_box.value(), "height": self.height_box.value(),
            "steps": self.steps.value(), "guidance": self.guidance.value(), "seed": seed,
            "n": self.n.value(), "output_format": self.output_format.currentData(),
            "quality": self.quality.currentData(),
            "styles": tuple(s.strip() for s in self.styles.text().split(",") if s.strip()),
            "sampler": self.sampler.currentData(),
            "model": self.model.currentData(),
            "clip_skip": self.clip_skip.value() if self.clip_skip.value() > 1 else None,
            "policy": dataclasses.replace(
                self._policy_defaults,  # the profile's target time and cost cap
                mode=self.mode.currentData(),
                allow_cloud_fallback=self.allow_fallback.isChecked(),
                allow_adaptation=self.allow_adaptation.isChecked(),
                allow_failover_after_refusal=self.allow_refusal_failover.isChecked(),
                strategy=self.strategy.currentData(),
                private=self.private.isChecked()),
        }

    def open_styles(self) -> StylesDialog | None:
        """The styles table; "Save and use selected" puts the picked names in the field."""
        if self.style_library is None:
            return None
        dialog = StylesDialog(self.style_library, self)

        def done(result: int) -> None:
            if result and dialog.chosen:
                self.styles.setText(", ".join(dialog.chosen))

        dialog.finished.connect(done)
        dialog.open()
        return dialog

    def _request_or_none(self) -> GenerationRequest | None:
        """The form as a request for the route line, without marking any field."""
        try:
            return GenerationRequest(**self.values())
        except InvalidRequest:
            return None

    def build_request(self) -> GenerationRequest | None:
        """The request, or None after showing the validation message at its field."""
        self.clear_errors()
        try:
            return GenerationRequest(**self.values())
        except InvalidRequest as error:
            self.show_error(error.field, error.message)
            return None

    def generate(self) -> None:
        self._start("generate")

    def vary(self, strength: float) -> None:
        """Queue a variation of the source at ``strength`` (the slider shows it)."""
        self.source_tools.set_strength(strength)
        self._start("vary")

    def _start(self, action: Action) -> None:
        request = self.build_request()
        if request is None:
            return
        self.generate_button.setEnabled(False)
        if self.source_tools.source is None:
            spawn(self._queue(request))
        else:
            spawn(self._queue_work(request, action))

    async def _queue_work(self, request: GenerationRequest, action: Action) -> None:
        """The same request, working on the source image as ``action`` says."""
        try:
            work = await self.source_tools.work(action)
            request = dataclasses.replace(request, work=work)
        except InvalidRequest as error:
            self.generate_button.setEnabled(True)
            self.show_error(error.field, error.message)
            return
        except ImageDeskError as error:
            self.generate_button.setEnabled(True)
            self.show_error(None, error.message)
            return
        await self._queue(request)

    async def _queue(self, request: GenerationRequest) -> None:
        try:
            job = await self._submit(request)
        except InvalidRequest as error:  # e.g. a blocked term, found by the engine
            self.show_error(error.field, error.message)
            return
        except ImageDeskError as error:
            self.show_error(None, error.message)
            return
        finally:
            self.generate_button.setEnabled(True)
        self.history.add(request.prompt)
        self._followed_job = getattr(job, "id", None)
        self.status.setText("Queued.")
        self.submitted.emit(request)

    # -- the line under Generate follows the last job queued ----------------------

    def on_job_started(self, event: JobStarted) -> None:
        if event.job_id == self._followed_job:
            self.status.setStyleSheet("")
            self.status.setText("Running…")

    def on_job_progress(self, event: JobProgress) -> None:
        if event.job_id != self._followed_job:
            return
        if event.total:
            self.status.setText(f"Running on {event.provider}: step {event.step} of "
                                f"{event.total}.")
        elif event.message:  # before the first step: starting, loading a model…
            self.status.setText(f"Running on {event.provider}: {event.message}")

    def on_job_finished(self, event: JobFinished) -> None:
        if event.job_id != self._followed_job:
            return
        self._followed_job = None
        if event.state is JobState.SUCCEEDED:
            n = len(event.image_ids)
            self.status.setStyleSheet("")
            self.status.setText(f"Done: {n} image{'s' if n != 1 else ''} from "
                                f"{event.provider or 'the provider'}.")
        elif event.state is JobState.FAILED:
            self.status.setStyleSheet("color: #d1242f;")
            self.status.setText(f"Failed: {event.message or event.error or 'see the queue'}")
        else:
            self.status.setStyleSheet("")
            self.status.setText(f"{event.state.value.capitalize()}.")

    def show_error(self, field: str | None, message: str) -> None:
        target = self._errors.get(field or "")
        if target is None:
            self.status.setText(message)
            self.status.setStyleSheet("color: #d1242f;")
            return
        widget, label = target
        label.setText(message)
        label.show()
        widget.setProperty("invalid", True)
        widget.setStyleSheet("border: 1px solid #d1242f;")
        widget.setFocus()

    def error_text(self, field: str) -> str:
        _, label = self._errors[field]
        return label.text() if label.isVisibleTo(self) else ""

    def clear_errors(self, *fields: str) -> None:
        for name in fields or tuple(self._errors):
            widget, label = self._errors[name]
            label.clear()
            label.hide()
            widget.setProperty("invalid", False)
            widget.setStyleSheet("")
        if not fields:
            self.status.clear()
            self.status.setStyleSheet("")

    # -- recall: history, reuse, PNG drop ----------------------------------------

    def show_history(self) -> None:
        picker = HistoryPicker(self.history, self)
        picker.picked.connect(self.prompt.setPlainText)
        picker.open()

    def apply_parameters(self, params: dict[str, Any]) -> list[str]:
        """Fill the form from recalled parameters (a gallery image or a dropped PNG); what
        could not be recalled, in a few words each."""
        if "prompt" in params:
            self.prompt.setPlainText(str(params["prompt"]))
        if "negative_prompt" in params:
            self.negative.setPlainText(str(params["negative_prompt"] or ""))
        if params.get("width") and params.get("height"):
            self.width_box.setValue(int(params["width"]))
            self.height_box.setValue(int(params["height"]))
        if params.get("steps"):
            self.steps.setValue(int(params["steps"]))
        if params.get("guidance") is not None:
            self.guidance.setValue(float(params["guidance"]))
        if params.get("seed") is not None:
            self.seed.setText(str(params["seed"]))
            self.seed_lock.setChecked(True)
        self.clip_skip.setValue(int(params.get("clip_skip") or 1))
        self.clear_errors()
        missing: list[str] = []
        if params.get("model") or params.get("model_hash"):
            self._recalling = True
            try:
                missing += self._recall_model(params.get("model"), params.get("model_hash"))
            finally:
                self._recalling = False
        if params.get("sampler"):
            missing += self._recall_sampler(str(params["sampler"]))
        if "prompt" in params:
            missing += self._missing_loras(str(params["prompt"]))
        return missing

    def set_loras(self, names: Iterable[str]) -> None:
        """The LoRAs the model library holds (by file name), so that a recalled
        prompt's ``<lora:...>`` tags can be checked."""
        self._loras = frozenset(name.lower() for name in names)

    def _missing_loras(self, prompt: str) -> list[str]:
        """The recalled prompt's LoRAs (kept in it, as A1111 keeps them) that are not
        installed here; nothing when the library is not known yet."""
        if self._loras is None:
            return []
        try:
            tags = parse_loras(prompt).loras
        except InvalidRequest as error:
            return [error.message.rstrip(".")]
        return [f"the LoRA {tag.name} is not installed (add its folder in the model "
                "library; until then the job is refused)"
                for tag in tags if tag.name.lower() not in self._loras]

    def set_models(self, models: list[tuple[str, str, str | None]],
                   remembered: str | None = None,
                   defaults: dict[str | None, JobDefaults] | None = None) -> None:
        """The library's checkpoints as (name, path, short hash or None); ``remembered``
        (the profile's last choice) is chosen again when it is still there. ``defaults``:
        each model's family defaults by path (None: the model in Settings), put into the
        fields the user has not changed when that model is chosen (a remembered one
        too)."""
        current = self.model.currentData() or remembered
        self._model_defaults = dict(defaults or {})
        self.model.blockSignals(True)
        while self.model.count() > 1:
            self.model.removeItem(1)
        self._model_hashes = {}
        for name, path, short_hash in models:
            self.model.addItem(f"Model: {name}", path)
            self.model.setItemData(self.model.count() - 1, path, Qt.ItemDataRole.ToolTipRole)
            if short_hash:
                self._model_hashes[path] = short_hash
        index = self.model.findData(current) if current else 0
        self.model.setCurrentIndex(max(0, index))
        self.model.blockSignals(False)
        if self.model.currentData() is not None:
            self._model_chosen()

    def _model_chosen(self, _index: int = 0) -> None:
        chosen = self._model_defaults.get(self.model.currentData())
        if chosen is not None and not self._recalling:
            self._follower.apply(chosen)

    def _recall_model(self, name: str | None, short_hash: str | None) -> list[str]:
        """Choose the recalled model by its hash (else its name), or say it is missing."""
        for index in range(1, self.model.count()):
            path = str(self.model.itemData(index))
            if (short_hash and self._model_hashes.get(path) == short_hash.lower()) or (
                    name and Path(path).stem == name):
                self.model.setCurrentIndex(index)
                return []
        self.model.setCurrentIndex(0)
        shown = " ".join(p for p in (name or "", f"[{short_hash}]" if short_hash else "") if p)
        return [f"the model {shown} is not installed (the one in Settings is used)"]

    def _recall_sampler(self, name: str) -> list[str]:
        """Choose the recalled sampler, or say plainly that it is not one of ours."""
        try:
            index = self.sampler.findData(sampler_named(name))
        except InvalidRequest:
            self.sampler.setCurrentIndex(0)
            return [f"the sampler {name!r} is not available here (the model's default is used)"]
        self.sampler.setCurrentIndex(index)
        return []

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile() and urls[0].toLocalFile().lower().endswith(".png"):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            self.recall_from_file(Path(urls[0].toLocalFile()))
            event.acceptProposedAction()

    def recall_from_file(self, path: Path) -> bool:
        from desktop_app.ui.recall import parameters_from_png

        params = parameters_from_png(path)
        if params is None:
            self.show_error(None, f"{path.name} carries no generation parameters to recall.")
            return False
        missing = self.apply_parameters(params)
        self.status.setText(f"Recalled the settings of {path.name}."
                            + "".join(f" Not recalled: {note}." for note in missing))
        return True
