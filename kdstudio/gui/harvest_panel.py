"""The harvest panel: ask the teacher about every example, with pause, cancel, the cost so far
against the budget, the failures with their reasons as they arrive, and "Retry failed". For a
Claude teacher it also sets the answer's size and keeps the estimated cost of the harvest in view
(:mod:`kdstudio.gui.harvest_estimate`); the dialogs are :mod:`kdstudio.gui.harvest_dialogs`, the
failures list :mod:`kdstudio.gui.harvest_failures`."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFrame,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.events import Finished, Log, Progress
from kdstudio.core.harvest import HarvestConfig, HarvestEstimate
from kdstudio.core.teachers.pricing import usd
from kdstudio.gui.claude_options import AnswerOptions
from kdstudio.gui.failure_banner import FailureBanner, is_budget_stop
from kdstudio.gui.harvest_augment import AugmentFlow
from kdstudio.gui.harvest_dialogs import AugmentDialog, TeacherDialog
from kdstudio.gui.harvest_estimate import (
    BudgetField,
    EstimateView,
    LiveEstimate,
    WrappedLabel,
    estimate_text,
    summary_text,
)
from kdstudio.gui.harvest_failures import FailuresView
from kdstudio.gui.harvest_recent import RECENT, RecentCompletions
from kdstudio.gui.job_host import JobHost
from kdstudio.gui.widgets import Card, StatTile, button, format_count, format_duration, label, restyle
from kdstudio.gui.worker import Worker

SPLITS = ("train", "valid", "test", "unlabeled")


class HarvestPanel(AugmentFlow, QWidget):
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
        self._running_teacher: int | None = None  # the teacher the running harvest asks
        self._failures_seen = 0
        self.task = project.task
        plan = project.settings().get("plan", {})
        self._stats: dict[str, Any] = {}

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()  # on a small screen the panel scrolls rather than squeezing its text
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        page = QWidget()
        scroll.setWidget(page)
        outer.addWidget(scroll)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(20, 16, 20, 16)
        layout.setSpacing(10)

        # teacher and options
        card = Card()
        head = QHBoxLayout()
        head.addWidget(label("Teacher", "subheading"))
        self.spec = QLineEdit(plan.get("teacher") or self._default_spec())
        self.spec.setToolTip("embed:minilm, hf:PATH_OR_ID, claude:MODEL_ID or lm:PATH_OR_ID")
        self.spec.textChanged.connect(self._spec_changed)
        self.change_button = button("Change…")
        self.change_button.clicked.connect(self.choose_teacher)
        head.addWidget(self.spec, 1)
        head.addWidget(self.change_button)
        card.layout_.addLayout(head)
        body = QHBoxLayout()
        body.setSpacing(24)
        settings = QVBoxLayout()
        settings.setSpacing(8)
        body.addLayout(settings, 1)
        opts = QHBoxLayout()
        opts.setSpacing(8)
        opts.addWidget(label("Splits", "muted"))
        self.split_boxes: dict[str, QCheckBox] = {}
        for split in SPLITS:
            box = QCheckBox(split)
            box.setChecked(True)
            box.setToolTip(f"Ask the teacher about the {split} examples")
            box.toggled.connect(self._settings_changed)
            self.split_boxes[split] = box
            opts.addWidget(box)
        opts.addSpacing(12)
        opts.addWidget(label("Limit", "muted"))
        self.limit = QSpinBox()
        self.limit.setRange(0, 10**8)
        self.limit.setSpecialValueText("all")
        self.limit.setToolTip("Ask about at most this many examples (all = every pending one)")
        self.limit.valueChanged.connect(self._settings_changed)
        self.limit.setMinimumWidth(100)
        opts.addWidget(self.limit)
        opts.addStretch(1)
        settings.addLayout(opts)

        # Claude: requests, budget, batch lane, answer size, estimate
        self.claude_box = QWidget()
        claude = QVBoxLayout(self.claude_box)
        claude.setContentsMargins(0, 0, 0, 0)
        claude.setSpacing(8)
        paid = QHBoxLayout()
        paid.setSpacing(8)
        self.concurrency_label = label("Parallel requests", "muted")
        paid.addWidget(self.concurrency_label)
        self.concurrency = QSpinBox()
        self.concurrency.setRange(1, 64)
        self.concurrency.setValue(8)
        self.concurrency.setToolTip("Requests in flight at once (Claude)")
        self.concurrency.valueChanged.connect(self._settings_changed)
        self.concurrency.setMinimumWidth(64)
        paid.addWidget(self.concurrency)
        paid.addSpacing(12)
        self.budget_label = label("Budget", "muted")
        paid.addWidget(self.budget_label)
        self.budget = BudgetField()
        self.budget.changed.connect(self._budget_changed)
        paid.addWidget(self.budget)
        paid.addSpacing(12)
        self.batch_api = QCheckBox("Batch API (50% off, slower)")
        self.batch_api.setToolTip("Send the requests through the Message Batches API; survives a restart")
        self.batch_api.toggled.connect(self._settings_changed)
        paid.addWidget(self.batch_api)
        paid.addStretch(1)
        claude.addLayout(paid)
        self.answer = AnswerOptions()
        if plan.get("max_tokens"):  # a generation teacher's completion limit, chosen in the wizard
            self.answer.set_values(None, int(plan["max_tokens"]))
        self.answer.changed.connect(self._settings_changed)
        claude.addWidget(self.answer)
        settings.addWidget(self.claude_box)
        settings.addStretch(1)
        self.estimate_view = EstimateView(title="Estimated cost")
        self.estimate_view.setFixedWidth(380)
        body.addWidget(self.estimate_view)
        card.layout_.addLayout(body)
        layout.addWidget(card)
        self.live = LiveEstimate(self.project_path, self._live_config, self)
        self.live.started.connect(self._live_estimating)  # bound slots: a lambda over self is a cycle
        self.live.estimated.connect(self._live_estimated)
        self.live.failed.connect(self._live_not_estimated)

        # controls and progress
        controls = QHBoxLayout()
        self.start_button = button("Start harvest", "primary")
        self.pause_button = button("Pause")
        self.cancel_button = button("Cancel", "danger")
        self.retry_button = button("Retry failed", tooltip="Ask again about the examples that failed (answers cut "
                                                           "off at max_tokens get twice the limit)")
        self.estimate_button = button("Estimate cost", tooltip="Count the requests and price them; sends nothing")
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self._toggle_pause)
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
        self.failure = FailureBanner()
        layout.addWidget(self.failure)

        tiles = QHBoxLayout()
        self.done_tile = StatTile("answered")
        self.failed_tile = StatTile("failed")
        self.cost_tile = StatTile("spent so far")
        self.tokens_tile = StatTile("tokens in / out")
        for t in (self.done_tile, self.failed_tile, self.cost_tile, self.tokens_tile):
            tiles.addWidget(t)
        layout.addLayout(tiles)
        # what the person must know about this run (a budget stop, a failure, a raised limit)
        self.notice = WrappedLabel("", "warning")
        self.notice.hide()
        layout.addWidget(self.notice)
        self.log_line = WrappedLabel("", "muted", hide_when_empty=True)
        layout.addWidget(self.log_line)

        self.failures_view = FailuresView()
        self.failures_title = self.failures_view.title
        self.failures_stack = self.failures_view.stack
        self.failures = self.failures_view.table
        self.no_failures = self.failures_view.empty
        self.first_step = self.failures_view.first_step
        self.failures_view.setMinimumHeight(180)
        self.recent: RecentCompletions | None = None  # a generation teacher's latest completions
        if self.task == "generation":
            lower = QHBoxLayout()
            lower.setSpacing(16)
            self.recent = RecentCompletions()
            lower.addWidget(self.recent, 3)
            lower.addWidget(self.failures_view, 2)
            layout.addLayout(lower, 1)
        else:
            layout.addWidget(self.failures_view, 1)

        self._spec_changed()
        self._set_running(False)

    # -- helpers ------------------------------------------------------------------------------
    def _default_spec(self) -> str:
        teachers = self.project.teachers()
        return teachers[-1]["spec"] if teachers else ("embed:minilm" if self.task == "classification" else "")

    def is_claude(self) -> bool:
        return self.spec.text().strip().startswith("claude:")

    def _spec_changed(self) -> None:
        claude = self.is_claude()
        for w in (self.claude_box, self.estimate_view, self.estimate_button):
            w.setVisible(claude)
        if claude:
            labels = self.project.labels() if self.task == "classification" else []
            self.answer.set_context(self.task, labels, self.spec.text().strip().partition(":")[2])
        self._settings_changed()

    def _settings_changed(self) -> None:
        """A setting that changes what the harvest asks (or which stored answers count) changed."""
        self.refresh()
        if self.is_claude():
            self.estimate_view.show_message("Estimating the cost of the harvest…")
            self.live.schedule()
        else:
            self.live.stop()

    def _budget_changed(self) -> None:
        if self.estimate_view.result is not None:
            self.estimate_view.show_estimate(self.estimate_view.result, self.budget.value())
        self.refresh()

    def _live_config(self) -> HarvestConfig | None:
        return self.config(dry_run=True) if self.is_claude() and self.worker is None else None

    def _live_estimating(self) -> None:
        self.estimate_view.show_message("Estimating the cost of the harvest…")

    def _live_not_estimated(self, message: str) -> None:
        self.estimate_view.show_message(f"No estimate: {message}", "error")

    def _toggle_pause(self) -> None:
        if self.worker is not None:
            self.worker.toggle_pause()

    def _live_estimated(self, result: HarvestEstimate) -> None:
        self.estimate_view.show_estimate(result, self.budget.value())

    def choose_teacher(self) -> None:
        labels = self.project.labels() if self.task == "classification" else []
        dialog = TeacherDialog(self.task, self.spec.text(), self, project_path=self.project_path, labels=labels,
                               base_config=self.config)
        dialog.picker.set_answer_options(self.answer.top_k(), self.answer.max_tokens())
        if dialog.exec() == QDialog.DialogCode.Accepted:
            top_k, max_tokens = dialog.picker.answer_options()
            self.answer.set_values(top_k, max_tokens)
            self.spec.setText(dialog.picker.spec())
        dialog.deleteLater()

    def _answer_setting(self, spec: str) -> str | None:
        """The ``answer`` setting a Claude classification teacher with these options stores
        (``full`` or ``top-K``): it is part of the teacher's fingerprint."""
        if not spec.startswith("claude:") or self.task != "classification":
            return None
        from kdstudio.core.teachers.claude import answer_shape

        try:
            shape = answer_shape(self.task, self.project.labels(), spec.partition(":")[2], top_k=self.answer.top_k())
        except Exception:
            return None
        return "full" if shape.full else f"top-{shape.top_k}"

    def teacher_id(self) -> int | None:
        """The project's teacher the current settings ask (the newest one with this spec and, for
        Claude, this answer size), if it was used before; the running harvest's while it runs."""
        if self.worker is not None and self._running_teacher is not None:
            return self._running_teacher
        spec = self.spec.text().strip()
        teachers = [t for t in self.project.teachers() if t["spec"] == spec]
        answer = self._answer_setting(spec)
        if answer is not None:
            teachers = [t for t in teachers if t["settings"].get("answer") == answer]
        return max((t["id"] for t in teachers), default=None)

    def config(self, *, retry_failed: bool = False, dry_run: bool = False) -> HarvestConfig:
        """The harvest the widgets describe (the Claude settings only for a Claude teacher)."""
        spec = self.spec.text().strip()
        splits = tuple(s for s, box in self.split_boxes.items() if box.isChecked())
        config = HarvestConfig(teacher=spec, splits=splits or None, limit=self.limit.value() or None,
                               retry_failed=retry_failed, dry_run=dry_run)
        if spec.startswith("claude:"):
            config.concurrency = self.concurrency.value()
            config.batch_api = self.batch_api.isChecked()
            config.budget_usd = self.budget.value()
            config.top_k = self.answer.top_k()
            config.max_tokens = self.answer.max_tokens()
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
        self.failures_view.show_failures(failures, counts["n_failed"])
        self._failures_seen = counts["n_failed"]
        self._show_recent(tid)
        self.retry_button.setEnabled(bool(failures) and not self.jobs.busy)
        if not total:
            self.failures_view.show_no_data(self.import_requested.emit)
        elif not counts["n_ok"] and not failures and self.worker is None:
            self.failures_view.show_no_answers(self.spec.text().strip(), self.project.default_teacher() is not None,
                                               choose=self.choose_teacher, start=self.start)

    def _show_counts(self, ok: int, failed: int, cost: float, tin: int, tout: int, total: int | None = None) -> None:
        self.done_tile.set(f"{ok:,}", f"answered of {total:,} examples" if total else "answered")
        self.failed_tile.set(f"{failed:,}")
        budget = self.budget.value() if self.is_claude() else None
        self.cost_tile.set(usd(cost), f"spent of {usd(budget)} budget" if budget is not None else "spent so far")
        self.tokens_tile.set(f"{format_count(tin)} / {format_count(tout)}")

    def _show_notice(self, text: str, kind: str = "warning") -> None:
        self.notice.setText(text)
        if self.notice.objectName() != kind:
            self.notice.setObjectName(kind)
            restyle(self.notice)
        self.notice.setVisible(bool(text))

    def _set_running(self, running: bool) -> None:
        if running:
            self.progress.show()
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.cancel_button.setEnabled(running)
        self.estimate_button.setEnabled(not running)
        self.augment_button.setEnabled(not running)
        self.first_step.action.setEnabled(not running)
        for w in (self.spec, self.change_button, self.concurrency, self.budget, self.batch_api, self.answer,
                  *self.split_boxes.values(), self.limit):
            w.setEnabled(not running)
        if not running:
            self.pause_button.setText("Pause")

    # -- jobs ---------------------------------------------------------------------------------
    def _budget_problem(self) -> bool:
        """True (after saying so) when a Claude harvest has no amount and no "No limit" ticked."""
        if self.is_claude() and not self.budget.is_valid():
            QMessageBox.information(self, "Budget", "Type a budget in US dollars (for example 0.05), or tick "
                                                    "No limit.")
            return True
        return False

    def start(self, *, retry_failed: bool = False, confirm_cost: bool = True) -> bool:
        """Start the harvest (for Claude, after showing the estimated cost)."""
        spec = self.spec.text().strip()
        if not spec:
            QMessageBox.information(self, "Choose a teacher", "Choose a teacher first.")
            return False
        if self._budget_problem():
            return False
        if spec.startswith("claude:") and confirm_cost:
            shown = self.estimate_view.result
            if shown is not None and self.live.is_current(self.config(retry_failed=retry_failed)):
                self._confirm(shown, True, retry_failed)  # the estimate on screen is for these settings
                return True
            return self.estimate(then_start=True, retry_failed=retry_failed)  # False: another job runs
        return self._start(self.config(retry_failed=retry_failed), "Harvest")

    def _start(self, config: HarvestConfig, name: str) -> bool:
        from kdstudio.core.harvest import harvest

        if self._budget_problem():
            return False
        worker = Worker(harvest, str(self.project_path), config, name=name, parent=self, limit_threads=True)
        worker.yielded.connect(self.on_event)
        worker.paused_changed.connect(self._paused)
        worker.finished.connect(self._finished)
        if not self.jobs.start(worker, self):
            return False
        self.live.stop()
        self.worker = worker
        self._running_teacher = None
        self.progress.setRange(0, 0)
        self.progress_text.setText("Loading the teacher…")
        self.log_line.setText("")
        self._show_notice("")
        self.failure.dismiss()
        self._set_running(True)
        self.retry_button.setEnabled(False)
        if self.failures_view.showing_first_step:
            self.failures_view.show_failures([])  # the answers come in now; failures, if any, are listed here
        return True

    def _paused(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")

    def retry_failed(self) -> bool:
        return self.start(retry_failed=True)

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.progress_text.setText("Stopping…")

    def estimate(self, *, then_start: bool = False, retry_failed: bool = False) -> bool:
        """A dry run: how many requests and what they would cost; False when another job runs
        (the job host said so)."""
        from kdstudio.core.harvest import harvest

        worker = Worker(harvest, str(self.project_path), self.config(retry_failed=retry_failed, dry_run=True),
                        name="Cost estimate", parent=self)
        worker.finished.connect(functools.partial(self._estimated, then_start, retry_failed))
        if not self.jobs.start(worker, self):
            return False
        self._estimate_worker = worker
        self.progress_text.setText("Estimating the cost…")
        self._set_running(True)
        return True

    def _estimated(self, then_start: bool, retry_failed: bool, status: str) -> None:
        worker, self._estimate_worker = self._estimate_worker, None
        self._set_running(False)
        self.progress_text.setText("")
        if status != "finished":
            if status == "failed":
                self.failure.show_failure(worker.message, "The cost estimate")
            return
        if not retry_failed:
            self._live_estimated(worker.result)
        self._confirm(worker.result, then_start, retry_failed)

    def _confirm(self, result: HarvestEstimate, then_start: bool, retry_failed: bool) -> None:
        """Show the estimate; with ``then_start``, ask whether to start and start on Yes."""
        text = estimate_text(result, self.budget.value())
        if not then_start:
            QMessageBox.information(self, "Cost estimate", text)
            return
        answer = QMessageBox.question(self, "Start the harvest?", text + "\n\nStart the harvest?",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            self._start(self.config(retry_failed=retry_failed), "Harvest")

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
                if info.get("teacher") is not None:
                    self._running_teacher = int(info["teacher"])
                failed = int(info.get("failed", 0))
                self._show_counts(max(0, event.done - failed), failed, float(info.get("cost_usd", 0.0)),
                                  int(info.get("input_tokens", 0)), int(info.get("output_tokens", 0)), event.total)
                if failed and self._running_teacher is not None:
                    self._show_new_failures()
                self._show_recent(self._running_teacher)
            else:
                self.progress_text.setText(f"{event.stage.replace('_', ' ').capitalize()}…")
        elif isinstance(event, Log):
            self.log_line.setText(event.message)
            if "cut off at max_tokens" in event.message or event.level in ("warning", "error"):
                lines = [t for t in (self.notice.text(), event.message) if t]
                self._show_notice("\n".join(lines[-3:]))
        elif isinstance(event, Finished):
            self.log_line.setText(summary_text(event.result))

    def _show_recent(self, teacher_id: int | None) -> None:
        if self.recent is not None:
            self.recent.show_completions(self.project.recent_completions(teacher_id, RECENT) if teacher_id else [])

    def _show_new_failures(self) -> None:
        """List the failed rows as they are saved (the stored ones, earlier runs' included)."""
        n = self.project.count_outputs(self._running_teacher)["n_failed"]
        if n != self._failures_seen:
            self._failures_seen = n
            self.failures_view.show_failures(self.project.failures(self._running_teacher, limit=500), n)

    def _finished(self, status: str) -> None:
        worker, self.worker = self.worker, None
        message = worker.message if worker is not None else ""
        self._set_running(False)
        self.progress.setRange(0, 1000)
        if status == "finished":
            self.progress.setValue(1000)
            self.progress_text.setText("Done")
        elif status == "cancelled":
            self.progress_text.setText("Cancelled · answers so far are kept")
        elif is_budget_stop(message):
            self.progress_text.setText("Budget reached")
            self.log_line.setText("")
            self._show_notice(f"{message[0].upper()}{message[1:]}. Raise the budget (or tick No limit) and start "
                              "the harvest again to go on: the answers saved are not asked again.")
        else:
            self.progress_text.setText("Failed")
            self.log_line.setText("")
            self.failure.show_failure(message, "The harvest")
        self._running_teacher = None
        self._settings_changed()
        self.harvest_finished.emit(status)


__all__ = ["AugmentDialog", "HarvestPanel", "TeacherDialog", "estimate_text", "summary_text"]
