"""The harvest panel: ask the teacher about every example, with pause, cancel, the cost so far
against the budget, the failures with their reasons and "Retry failed"."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QSpinBox,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.events import Finished, Log, Progress
from kdstudio.core.harvest import HarvestConfig, HarvestEstimate, HarvestResult
from kdstudio.gui.job_host import JobHost
from kdstudio.gui.teacher_picker import TeacherPicker
from kdstudio.gui.widgets import (
    Card,
    EmptyState,
    StatTile,
    button,
    format_count,
    format_duration,
    label,
)
from kdstudio.gui.worker import Worker

SPLITS = ("train", "valid", "test", "unlabeled")


class AugmentDialog(QDialog):
    """The settings of ``kdstudio augment``, and a way to take the variants out again."""

    def __init__(self, n_variants: int, n_texts: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add variants of the texts")
        self.remove_requested = False
        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addWidget(label(
            "A distilled student learns from whatever the teacher labels. Variants of your train and unlabeled "
            "texts — a few words masked or swapped for other words of the project, sometimes only a short run of "
            "words kept — give it more of the teacher's answers to learn from (after Tang et al. 2019). Valid and "
            "test are never changed. Harvest the teacher afterwards: the variants are in the unlabeled split.",
            "muted", wrap=True))
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        self.per_example = QSpinBox()
        self.per_example.setRange(1, 100)
        self.per_example.setValue(4)
        self.per_example.setToolTip("How many variants each text gets (duplicates are dropped)")
        form.addRow("Variants per text", self.per_example)
        self.p_mask = self._chance(0.10, "Chance each word becomes [MASK]")
        form.addRow("Mask a word", self.p_mask)
        self.p_replace = self._chance(0.10, "Chance each word is replaced by another word seen in the project")
        form.addRow("Replace a word", self.p_replace)
        self.p_ngram = self._chance(0.25, "Chance a variant keeps only 1 to 5 consecutive words")
        form.addRow("Keep only a few words", self.p_ngram)
        layout.addLayout(form)
        self.n_texts, self.n_variants = n_texts, n_variants
        self.status = label("", "muted", wrap=True)
        self.per_example.valueChanged.connect(self._update_status)
        self._update_status()
        layout.addWidget(self.status)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.add_button = buttons.addButton("Add variants", QDialogButtonBox.ButtonRole.AcceptRole)
        self.add_button.setProperty("role", "primary")
        self.remove_button = buttons.addButton("Remove all variants", QDialogButtonBox.ButtonRole.DestructiveRole)
        self.remove_button.setEnabled(n_variants > 0)
        self.remove_button.clicked.connect(self._remove)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _update_status(self) -> None:
        most = self.n_texts * self.per_example.value()
        already = (f"The project has {self.n_variants:,} variants already; texts that have some are skipped."
                   if self.n_variants else "The project has no variants yet.")
        self.status.setText(f"{self.n_texts:,} texts can be varied (up to {most:,} variants). {already}")

    @staticmethod
    def _chance(value: float, tip: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(0.0, 1.0)
        box.setSingleStep(0.05)
        box.setDecimals(2)
        box.setValue(value)
        box.setToolTip(tip)
        return box

    def _remove(self) -> None:
        self.remove_requested = True
        self.accept()

    def config(self) -> dict[str, Any]:
        """``AugmentConfig`` fields."""
        return {"per_example": self.per_example.value(), "p_mask": self.p_mask.value(),
                "p_replace": self.p_replace.value(), "p_ngram": self.p_ngram.value()}


class TeacherDialog(QDialog):
    """The wizard's teacher step, on its own."""

    def __init__(self, task: str, spec: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose a teacher")
        self.resize(760, 560)
        layout = QVBoxLayout(self)
        self.picker = TeacherPicker()
        self.picker.set_task(task)
        if spec:
            self.picker.set_spec(spec)
        layout.addWidget(self.picker, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _accept(self) -> None:
        if self.picker.validate() is None:
            self.accept()


class HarvestPanel(QWidget):
    """Start, pause, cancel and retry a harvest; see its progress, cost and failures."""

    harvest_finished = Signal(str)
    augment_finished = Signal(str)
    import_requested = Signal()

    def __init__(self, project_path: Path, jobs: JobHost, project: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project_path = Path(project_path)
        self.jobs = jobs
        self.project = project  # the Qt thread's own Project (reads only)
        self.worker: Worker | None = None
        self._estimate_worker: Worker | None = None
        self._progress_shown_at = 0.0
        self.task = project.task
        plan = project.settings().get("plan", {})
        self._stats: dict[str, Any] = {}

        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 16, 20, 16)
        layout.setSpacing(12)

        # teacher and options
        card = Card()
        head = QHBoxLayout()
        head.addWidget(label("Teacher", "subheading"))
        self.spec = QLineEdit(plan.get("teacher") or self._default_spec())
        self.spec.setToolTip("embed:minilm, hf:PATH_OR_ID, claude:MODEL_ID or lm:PATH_OR_ID")
        self.spec.textChanged.connect(self._spec_changed)
        change = button("Change…")
        change.clicked.connect(self.choose_teacher)
        head.addWidget(self.spec, 1)
        head.addWidget(change)
        card.layout_.addLayout(head)
        opts = QHBoxLayout()
        opts.setSpacing(8)
        opts.addWidget(label("Splits", "muted"))
        self.split_boxes: dict[str, QCheckBox] = {}
        for split in SPLITS:
            box = QCheckBox(split)
            box.setChecked(True)
            box.setToolTip(f"Ask the teacher about the {split} examples")
            self.split_boxes[split] = box
            opts.addWidget(box)
        opts.addSpacing(12)
        opts.addWidget(label("Limit", "muted"))
        self.limit = QSpinBox()
        self.limit.setRange(0, 10**8)
        self.limit.setSpecialValueText("all")
        self.limit.setToolTip("Ask about at most this many examples (all = every pending one)")
        opts.addWidget(self.limit)
        opts.addSpacing(12)
        self.concurrency_label = label("Parallel requests", "muted")
        opts.addWidget(self.concurrency_label)
        self.concurrency = QSpinBox()
        self.concurrency.setRange(1, 64)
        self.concurrency.setValue(8)
        self.concurrency.setToolTip("Requests in flight at once (Claude)")
        opts.addWidget(self.concurrency)
        self.budget_label = label("Budget $", "muted")
        opts.addWidget(self.budget_label)
        self.budget = QDoubleSpinBox()
        self.budget.setRange(0, 1e6)
        self.budget.setDecimals(2)
        self.budget.setSpecialValueText("none")
        self.budget.setToolTip("Stop before spending more than this many US dollars (none = no limit)")
        opts.addWidget(self.budget)
        self.batch_api = QCheckBox("Batch API (50% off, slower)")
        self.batch_api.setToolTip("Send the requests through the Message Batches API; survives a restart")
        opts.addWidget(self.batch_api)
        opts.addStretch(1)
        card.layout_.addLayout(opts)
        layout.addWidget(card)

        # controls and progress
        controls = QHBoxLayout()
        self.start_button = button("Start harvest", "primary")
        self.pause_button = button("Pause")
        self.cancel_button = button("Cancel", "danger")
        self.retry_button = button("Retry failed", tooltip="Ask again about the examples that failed")
        self.estimate_button = button("Estimate cost", tooltip="Count the requests and price them; sends nothing")
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(lambda: self.worker and self.worker.toggle_pause())
        self.cancel_button.clicked.connect(self.cancel)
        self.retry_button.clicked.connect(self.retry_failed)
        self.estimate_button.clicked.connect(self.estimate)
        self.augment_button = button("Add variants…", tooltip="Add variants of the train and unlabeled texts for "
                                                               "the teacher to label: more to distil from")
        self.augment_button.clicked.connect(self.augment)
        self.augment_button.setVisible(self.task == "classification")
        for b in (self.start_button, self.pause_button, self.cancel_button, self.retry_button, self.estimate_button,
                  self.augment_button):
            controls.addWidget(b)
        controls.addSpacing(12)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.hide()
        controls.addWidget(self.progress, 1)
        self.progress_text = label("", "muted")
        self.progress_text.setMinimumWidth(220)
        controls.addWidget(self.progress_text)
        layout.addLayout(controls)

        tiles = QHBoxLayout()
        self.done_tile = StatTile("answered")
        self.failed_tile = StatTile("failed")
        self.cost_tile = StatTile("spent so far")
        self.tokens_tile = StatTile("tokens in / out")
        for t in (self.done_tile, self.failed_tile, self.cost_tile, self.tokens_tile):
            tiles.addWidget(t)
        layout.addLayout(tiles)
        self.log_line = label("", "muted", wrap=True)
        layout.addWidget(self.log_line)

        self.failures_title = label("Failures", "subheading")
        layout.addWidget(self.failures_title)
        self.failures_stack = QStackedWidget()
        self.failures = QTableWidget(0, 3)
        self.failures.setHorizontalHeaderLabels(["Example", "Text", "Reason"])
        self.failures.verticalHeader().hide()
        self.failures.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.failures.setAlternatingRowColors(True)
        self.failures.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.failures.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.no_failures = EmptyState("No failures", "Examples the teacher could not answer (refusals, timeouts, "
                                      "unparseable replies) are listed here with the reason, ready for Retry failed.")
        # what to do first, while the project has no data or this teacher has not answered yet
        self.first_step = EmptyState("No teacher answers yet", "")
        self.failures_stack.addWidget(self.no_failures)
        self.failures_stack.addWidget(self.failures)
        self.failures_stack.addWidget(self.first_step)
        layout.addWidget(self.failures_stack, 1)

        self._spec_changed()
        self.refresh()
        self._set_running(False)

    # -- helpers ------------------------------------------------------------------------------
    def _default_spec(self) -> str:
        teachers = self.project.teachers()
        return teachers[-1]["spec"] if teachers else ("embed:minilm" if self.task == "classification" else "")

    def _spec_changed(self) -> None:
        claude = self.spec.text().startswith("claude:")
        for w in (self.concurrency_label, self.concurrency, self.budget_label, self.budget, self.batch_api,
                  self.estimate_button):
            w.setVisible(claude)
        self.refresh()

    def choose_teacher(self) -> None:
        dialog = TeacherDialog(self.task, self.spec.text(), self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.spec.setText(dialog.picker.spec())

    def teacher_id(self) -> int | None:
        """The project's teacher with the current spec (the newest one), if it was used before."""
        spec = self.spec.text().strip()
        ids = [t["id"] for t in self.project.teachers() if t["spec"] == spec]
        return max(ids) if ids else None

    def config(self, *, retry_failed: bool = False, dry_run: bool = False) -> HarvestConfig:
        """The harvest the widgets describe (the Claude settings only for a Claude teacher)."""
        spec = self.spec.text().strip()
        splits = tuple(s for s, box in self.split_boxes.items() if box.isChecked())
        config = HarvestConfig(teacher=spec, splits=splits or None, limit=self.limit.value() or None,
                               retry_failed=retry_failed, dry_run=dry_run)
        if spec.startswith("claude:"):
            config.concurrency = self.concurrency.value()
            config.batch_api = self.batch_api.isChecked()
            config.budget_usd = self.budget.value() or None
        return config

    def refresh(self) -> None:
        """Counts, cost and failures from the project (cheap reads on the Qt thread)."""
        tid = self.teacher_id()
        if tid is None:
            counts = {"n_ok": 0, "n_failed": 0, "cost_usd": 0.0, "input_tokens": 0, "output_tokens": 0}
            failures: list[tuple] = []
        else:
            counts = self.project.count_outputs(tid)
            failures = self.project.failures(tid, limit=500)
        total = sum(self.project.split_counts().values())
        self._show_counts(counts["n_ok"], counts["n_failed"], counts["cost_usd"], counts["input_tokens"],
                          counts["output_tokens"], total)
        self._show_failures(failures)
        self.retry_button.setEnabled(bool(failures) and not self.jobs.busy)
        if not total:
            self._show_first_step(
                "No data in this project yet",
                "Import a data file first (CSV, TSV, JSON Lines or Parquet): a text column, and a label column "
                "where you have gold labels. Then the teacher answers every example here.",
                "Import data…", self.import_requested.emit)
        elif not counts["n_ok"] and not failures and self.worker is None:
            self._show_no_answers()

    def _show_no_answers(self) -> None:
        """The teacher has not answered yet: say what a harvest does and offer to start it."""
        spec = self.spec.text().strip()
        if not spec:
            self._show_first_step(
                "No teacher answers yet",
                "Choose a teacher: the offline MiniLM, a local model, or Claude. It answers every example; the "
                "student then learns from those answers.",
                "Choose a teacher…", self.choose_teacher)
            return
        others = self.project.default_teacher() is not None
        self._show_first_step(
            "No answers from this teacher yet" if others else "No teacher answers yet",
            f"Start the harvest: {spec} answers every example of the ticked splits, and the student learns from "
            "those answers. Answers are kept in the project, so a stopped harvest continues where it stopped.",
            "Start harvest", self.start)

    def _show_first_step(self, title: str, text: str, action: str, on_action: Any) -> None:
        self.first_step.set_state(title, text, action, on_action)
        self.failures_title.hide()
        self.failures_stack.setCurrentWidget(self.first_step)

    def _show_counts(self, ok: int, failed: int, cost: float, tin: int, tout: int, total: int | None = None) -> None:
        self.done_tile.set(f"{ok:,}", f"answered of {total:,} examples" if total else "answered")
        self.failed_tile.set(f"{failed:,}")
        budget = self.budget.value()
        self.cost_tile.set(f"${cost:,.2f}", f"spent of ${budget:,.2f} budget" if budget else "spent so far")
        self.tokens_tile.set(f"{format_count(tin)} / {format_count(tout)}")

    def _show_failures(self, failures: list[tuple]) -> None:
        self.failures.setRowCount(len(failures))
        for r, (ex, text, reason) in enumerate(failures):
            for c, value in enumerate((str(ex), (text or "")[:300], reason or "")):
                item = QTableWidgetItem(value)
                item.setToolTip(value)
                if c == 0:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.failures.setItem(r, c, item)
        self.failures_title.show()
        self.failures_stack.setCurrentWidget(self.failures if failures else self.no_failures)

    def _set_running(self, running: bool) -> None:
        if running:
            self.progress.show()
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.cancel_button.setEnabled(running)
        self.estimate_button.setEnabled(not running)
        self.augment_button.setEnabled(not running)
        self.first_step.action.setEnabled(not running)
        self.spec.setEnabled(not running)
        if not running:
            self.pause_button.setText("Pause")

    # -- jobs ---------------------------------------------------------------------------------
    def start(self, *, retry_failed: bool = False, confirm_cost: bool = True) -> bool:
        """Start the harvest (for Claude, after showing the estimated cost)."""
        spec = self.spec.text().strip()
        if not spec:
            QMessageBox.information(self, "Choose a teacher", "Choose a teacher first.")
            return False
        if spec.startswith("claude:") and confirm_cost:
            self.estimate(then_start=True, retry_failed=retry_failed)
            return True
        return self._start(self.config(retry_failed=retry_failed), "Harvest")

    def _start(self, config: HarvestConfig, name: str) -> bool:
        from kdstudio.core.harvest import harvest

        worker = Worker(harvest, str(self.project_path), config, name=name, parent=self, limit_threads=True)
        worker.yielded.connect(self.on_event)
        worker.paused_changed.connect(self._paused)
        worker.finished.connect(self._finished)
        if not self.jobs.start(worker, self):
            return False
        self.worker = worker
        self.progress.setRange(0, 0)
        self.progress_text.setText("Loading the teacher…")
        self.log_line.setText("")
        self._set_running(True)
        self.retry_button.setEnabled(False)
        if self.failures_stack.currentWidget() is self.first_step:
            self._show_failures([])  # the answers come in now; failures, if any, are listed here
        return True

    def _paused(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")

    def retry_failed(self) -> bool:
        return self.start(retry_failed=True)

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.progress_text.setText("Stopping…")

    def estimate(self, *, then_start: bool = False, retry_failed: bool = False) -> None:
        """A dry run: how many requests and what they would cost."""
        from kdstudio.core.harvest import harvest

        worker = Worker(harvest, str(self.project_path), self.config(retry_failed=retry_failed, dry_run=True),
                        name="Cost estimate", parent=self)
        worker.finished.connect(functools.partial(self._estimated, then_start, retry_failed))
        if self.jobs.start(worker, self):
            self._estimate_worker = worker
            self.progress_text.setText("Estimating the cost…")
            self._set_running(True)

    def _estimated(self, then_start: bool, retry_failed: bool, status: str) -> None:
        worker, self._estimate_worker = self._estimate_worker, None
        self._set_running(False)
        self.progress_text.setText("")
        if status != "finished":
            if status == "failed":
                QMessageBox.warning(self, "Cost estimate", worker.message)
            return
        text = estimate_text(worker.result, self.budget.value() or None)
        if not then_start:
            QMessageBox.information(self, "Cost estimate", text)
            return
        answer = QMessageBox.question(self, "Start the harvest?", text + "\n\nStart the harvest?",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            self._start(self.config(retry_failed=retry_failed), "Harvest")

    def augment(self) -> None:
        """Ask for the settings, then add variants (or remove them all) in the background."""
        counts = self.project.split_counts()
        n_variants = len(self.project.augmented_ids())
        dialog = AugmentDialog(n_variants, counts["train"] + counts["unlabeled"] - n_variants, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        if dialog.remove_requested:
            answer = QMessageBox.question(
                self, "Remove all variants?",
                f"Delete the {n_variants:,} variants and every teacher answer on them? Your own texts stay.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
            if answer == QMessageBox.StandardButton.Yes:
                self.start_augment(None)
            return
        self.start_augment(dialog.config())

    def start_augment(self, config: dict[str, Any] | None) -> bool:
        """Add variants with ``config`` (``AugmentConfig`` fields), or remove them all with None."""
        from kdstudio.core.data.augment import AugmentConfig, augment, remove_variants

        if config is None:
            worker = Worker(remove_variants, str(self.project_path), name="Removing variants", parent=self)
        else:
            worker = Worker(augment, str(self.project_path), AugmentConfig(**config), name="Adding variants",
                            parent=self)
        worker.yielded.connect(self._on_augment_event)
        worker.finished.connect(self._augment_finished)
        if not self.jobs.start(worker, self):
            return False
        self.worker = worker
        self.progress.setRange(0, 0)
        self.progress_text.setText("Adding variants…" if config is not None else "Removing variants…")
        self._set_running(True)
        return True

    def _augment_finished(self, status: str) -> None:
        worker, self.worker = self.worker, None
        self._set_running(False)
        self.progress.setRange(0, 1000)
        from kdstudio.core.data.augment import AugmentResult, RemoveVariantsResult

        result = worker.result if worker is not None else None
        if status == "finished":
            self.progress.setValue(1000)
            if isinstance(result, RemoveVariantsResult):
                self.progress_text.setText(f"Removed {result.removed:,} variants")
            elif isinstance(result, AugmentResult):
                self.progress_text.setText(f"Added {result.added:,} variants")
                self.log_line.setText(
                    f"{result.augmented_total:,} variants in the unlabeled split. Start the harvest to "
                    "have the teacher label them; the next KD run trains on them.")
        elif status == "cancelled":
            self.progress_text.setText("Cancelled · the variants added so far are kept")
        else:
            self.progress_text.setText("Failed")
        self.refresh()
        self.augment_finished.emit(status)

    def _on_augment_event(self, event: object) -> None:
        if isinstance(event, Progress) and event.total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * event.fraction))
            eta = f" · {format_duration(event.eta_s)} left" if event.eta_s is not None else ""
            self.progress_text.setText(f"{event.done:,} / {event.total:,} texts · "
                                       f"{int(event.info.get('added', 0)):,} variants{eta}")

    def on_event(self, event: object) -> None:
        if isinstance(event, Progress):
            now = time.monotonic()
            if event.done < event.total and now - self._progress_shown_at < 0.2:
                return  # a few updates a second are enough for a person
            self._progress_shown_at = now
            if event.stage == "harvest" and event.total:
                self.progress.setRange(0, 1000)
                self.progress.setValue(int(1000 * event.fraction))
                eta = f" · {format_duration(event.eta_s)} left" if event.eta_s is not None else ""
                self.progress_text.setText(f"{event.done:,} / {event.total:,}{eta}")
                info = event.info
                self._stats = info
                failed = int(info.get("failed", 0))
                self._show_counts(max(0, event.done - failed), failed, float(info.get("cost_usd", 0.0)),
                                  int(info.get("input_tokens", 0)), int(info.get("output_tokens", 0)), event.total)
            else:
                self.progress_text.setText(f"{event.stage.replace('_', ' ').capitalize()}…")
        elif isinstance(event, Log):
            self.log_line.setText(event.message)
        elif isinstance(event, Finished):
            self.log_line.setText(summary_text(event.result))

    def _finished(self, status: str) -> None:
        self.worker = None
        self._set_running(False)
        self.progress.setRange(0, 1000)
        if status == "finished":
            self.progress.setValue(1000)
            self.progress_text.setText("Done")
        elif status == "cancelled":
            self.progress_text.setText("Cancelled · answers so far are kept")
        else:
            self.progress_text.setText("Failed")
        self.refresh()
        self.harvest_finished.emit(status)


def estimate_text(result: HarvestEstimate, budget: float | None) -> str:
    """A dry run's result in words."""
    if not result.n:
        return "Nothing to ask: every example of the chosen splits has an answer from this teacher."
    parts = [f"{result.n:,} examples to ask the teacher about"
             + (f" in {result.requests:,} requests." if result.requests and result.requests != result.n else ".")]
    if result.cost_usd or result.input_tokens:
        parts.append(f"Estimated cost: {format_usd(result.cost_usd)} (about {format_count(result.input_tokens)} "
                     f"input and {format_count(result.output_tokens)} output tokens"
                     + (", Batch API price)." if result.batch else ")."))
    else:
        parts.append("The teacher runs on this computer: it costs nothing.")
    if result.estimated_seconds is not None:
        parts.append(f"About {format_duration(result.estimated_seconds)}, judged from its earlier answers.")
    if budget:
        parts.append(f"Budget: ${budget:,.2f}; the harvest stops before going over it.")
    return " ".join(parts)


def summary_text(result: HarvestResult) -> str:
    """The end of a harvest in one line."""
    parts = [f"{result.n_ok:,} answered", f"{result.n_failed:,} failed"]
    if result.answered_before:
        parts.append(f"{result.answered_before:,} answered before")
    if result.cost_usd:
        parts.append(f"{format_usd(result.cost_usd)} spent")
    return "Harvest finished: " + ", ".join(parts)


def format_usd(amount: float) -> str:
    """Dollars with cents, or with four decimals below a cent (one Claude answer costs about that)."""
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.4f}"
