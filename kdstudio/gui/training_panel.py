"""The training panel: start, pause and cancel a run; live plots of its metrics; earlier runs
overlaid from the project."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.errors import ConfigError
from kdstudio.core.events import Finished, Log, Metric, Progress
from kdstudio.core.store import is_interrupted
from kdstudio.gui.config_form import ConfigForm
from kdstudio.gui.failure_banner import FailureBanner
from kdstudio.gui.job_host import JobHost
from kdstudio.gui.metric_series import run_score_text
from kdstudio.gui.plots import MetricsView
from kdstudio.gui.student_picker import StudentPicker
from kdstudio.gui.widgets import Card, ElidedLabel, EmptyState, button, format_duration, label
from kdstudio.gui.worker import Worker

BASIC = ("temperature", "alpha", "epochs", "batch_size", "lr")
STATUS_WORDS = {"finished": "finished", "running": "running", "cancelled": "cancelled", "failed": "failed",
                "queued": "queued"}


#: The project setting that keeps the panel's training settings ("Change…") between sessions.
SETTINGS_KEY = "training"


def default_config() -> dict[str, Any]:
    from kdstudio.core.train.config import TrainConfig

    return TrainConfig().to_dict()


def done_score(result: Any, task: str, valid: dict[str, float] | None = None) -> str:
    """What the Done line says of a finished run: the best checkpoint's validation accuracy
    (classification), or, for a generation run, its lowest validation loss and the perplexity
    logged with it (``valid``: the ``valid/loss`` and ``valid/perplexity`` of the best evaluation
    the live run logged) and the test completions' ROUGE-L. Empty when there is none."""
    from kdstudio.core.train import TrainResult

    if task == "generation":
        text = ""
        if valid and valid.get("valid/loss") is not None:
            ppl = valid.get("valid/perplexity")
            text = f" · best valid loss {valid['valid/loss']:.3f}" + (f" (perplexity {ppl:.2f})" if ppl is not None
                                                                      else "")
        if isinstance(result, TrainResult):  # the held-out completions' scores, written when the run finished
            scores = [(name, value) for name, value in (("vs references", result.test_rouge_l_references),
                                                        ("vs teacher", result.test_rouge_l_teacher))
                      if value is not None]
            if scores:
                text += " · test ROUGE-L " + ", ".join(f"{v:.3f} {name}" for name, v in scores)
        return text
    acc = result.valid_accuracy if isinstance(result, TrainResult) else None  # best checkpoint's
    return f" · valid accuracy {acc:.3f}" if acc is not None else ""


def run_title(run: dict[str, Any]) -> str:
    """How a run is named on screen: ``#1 cnn KD``, ``#2 cnn hard labels``, or ``#3`` and the
    name it was given."""
    if run.get("name"):
        return f"#{run['id']} {run['name']}"
    kind = "hard labels" if (run.get("config") or {}).get("hard_labels") else "KD"
    return f"#{run['id']} {run['student']} {kind}"


def run_status_text(run: dict[str, Any]) -> str:
    """A run's status as shown: ``interrupted`` for a run its process left running (killed, crashed)."""
    return "interrupted" if is_interrupted(run) else STATUS_WORDS.get(run["status"], run["status"])


class StudentDialog(QDialog):
    """The wizard's student and settings steps, on their own."""

    def __init__(self, task: str, config: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from kdstudio.core.train.config import TrainConfig

        self.setWindowTitle("Student and settings")
        self.resize(820, 720)
        layout = QVBoxLayout(self)
        body = QWidget()
        inner = QVBoxLayout(body)
        inner.addWidget(label("Student", "heading"))
        self.picker = StudentPicker()
        self.picker.set_task(task)
        self.picker.set_spec(config.get("student", "bilstm"))
        inner.addWidget(self.picker)
        inner.addWidget(label("Settings", "heading"))
        self.form = ConfigForm(TrainConfig, basic=BASIC, exclude=("student", "teacher"))
        self.form.set_values(config)
        inner.addWidget(self.form)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        layout.addWidget(scroll, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.config: dict[str, Any] = dict(config)

    def _accept(self) -> None:
        from kdstudio.core.errors import ConfigError
        from kdstudio.core.train.config import TrainConfig

        if self.picker.validate():
            return
        try:
            config = {**self.config, **self.form.values(), "student": self.picker.spec()}
            TrainConfig.from_dict(config).validate()
        except (ValueError, ConfigError) as exc:
            self.form.show_error(str(exc))
            return
        self.config = config
        self.accept()


class TrainingPanel(QWidget):
    """Train a student on the teacher's answers and watch it learn."""

    run_finished = Signal(str)
    tab_requested = Signal(str)  # "harvest": the first step is missing

    def __init__(self, project_path: Path, jobs: JobHost, project: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project_path = Path(project_path)
        self.jobs = jobs
        self.project = project
        self.task = project.task
        self._valid_seen: dict[int, dict[str, float]] = {}  # step → a generation run's valid loss, perplexity
        self.worker: Worker | None = None
        self._progress_shown_at = 0.0
        self.live_run: int | None = None
        self._loaders: list[Worker] = []
        self._loaded: set[int] = set()
        self.config = self._initial_config()

        outer = QHBoxLayout(self)
        outer.setContentsMargins(20, 16, 20, 16)
        outer.setSpacing(14)

        side = QVBoxLayout()
        side.setSpacing(10)
        student = Card()
        head = QHBoxLayout()
        head.addWidget(label("Student", "subheading"))
        head.addStretch(1)
        change = button("Change…", "link")
        change.clicked.connect(self.choose_student)
        head.addWidget(change)
        student.layout_.addLayout(head)
        self.student_label = label("", "heading")
        self.settings_label = label("", "muted", wrap=True)
        student.layout_.addWidget(self.student_label)
        student.layout_.addWidget(self.settings_label)
        side.addWidget(student)
        side.addWidget(label("Runs", "subheading"))
        side.addWidget(label("Tick runs to overlay their curves.", "muted", wrap=True))
        self.runs = QListWidget()
        self.runs.itemChanged.connect(self._run_toggled)
        side.addWidget(self.runs, 1)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setFixedWidth(280)
        outer.addWidget(side_widget)

        main = QVBoxLayout()
        main.setSpacing(10)
        controls = QHBoxLayout()
        self.start_button = button("Start training", "primary")
        self.pause_button = button("Pause")
        self.cancel_button = button("Cancel", "danger")
        self.resume_button = button("Resume")
        self.resume_button.setToolTip("Continue the run that stopped before its end, from its last checkpoint")
        self.resume_button.clicked.connect(self.resume)
        self.resumable: int | None = None  # the run Resume continues
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(lambda: self.worker and self.worker.toggle_pause())
        self.cancel_button.clicked.connect(self.cancel)
        for b in (self.start_button, self.resume_button, self.pause_button, self.cancel_button):
            controls.addWidget(b)
        controls.addSpacing(12)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.hide()
        controls.addWidget(self.progress, 1)
        self.progress_text = label("", "muted")
        self.progress_text.setMinimumWidth(240)
        controls.addWidget(self.progress_text)
        main.addLayout(controls)
        self.failure = FailureBanner()
        main.addWidget(self.failure)
        # one line that is always there: a message arriving mid-run must not resize the plots
        # below it (a resize repaints every plot at once)
        self.log_line = ElidedLabel("", "muted")
        main.addWidget(self.log_line)
        self.stack = QStackedWidget()
        self.empty = EmptyState("No training runs yet", "")
        self.view = MetricsView()
        self.view.set_task(self.task)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.view)
        main.addWidget(self.stack, 1)
        outer.addLayout(main, 1)

        self._show_config()
        self._set_running(False)
        self.refresh_runs(check_latest=True)
        interrupted = [r["id"] for r in self.project.runs() if is_interrupted(r)]
        if interrupted and self.resumable is not None:
            self.log_line.setText(f"Run #{interrupted[-1]} was interrupted (the app stopped while it trained): "
                                  f"Resume continues run #{self.resumable} from its last checkpoint.")

    # -- configuration ------------------------------------------------------------------------
    def _initial_config(self) -> dict[str, Any]:
        """The settings last chosen with "Change…" in this project, else the wizard's plan, else
        the newest distillation run's."""
        config = default_config()
        settings = self.project.settings()
        saved = settings.get(SETTINGS_KEY)
        if isinstance(saved, dict) and saved:
            config.update({k: v for k, v in saved.items() if k in config})
            return config
        plan = settings.get("plan", {})
        runs = self.project.runs()
        # the newest distillation run (a gold-labels-only baseline is not what "again" means)
        previous = next((r for r in reversed(runs) if not r["config"].get("hard_labels")), runs[-1] if runs else None)
        if plan.get("train"):
            config.update(plan["train"])
        elif previous is not None:
            config.update({k: v for k, v in previous.get("config", {}).items() if k in config})
        if plan.get("student"):
            config["student"] = plan["student"]
        config["name"] = None
        return config

    def _show_config(self) -> None:
        c = self.config
        self.student_label.setText(c.get("student", "?"))
        lr = c.get("lr")
        kd = f"T = {c.get('temperature')} · α = {c.get('alpha')}"
        if self.task == "generation":  # sequence KD learns the completions; token KD also the distributions
            mode = ("references only" if c.get("hard_labels") else
                    f"token-level KD, {kd}" if c.get("kd") == "token" else "the teacher's completions")
        else:
            mode = "gold labels only" if c.get("hard_labels") else kd
        epochs = c.get("epochs")
        if epochs is None:
            from kdstudio.core.students import default_epochs

            try:
                epochs = default_epochs(c.get("student", ""))
            except ConfigError:
                epochs = "?"
        patience = f" · patience {c['patience']}" if c.get("patience") else ""
        name = f"\nrun name: {c['name']}" if c.get("name") else ""
        self.settings_label.setText(
            f"{mode}\n{epochs} epochs{patience} · batch {c.get('batch_size')} · "
            f"lr {lr if lr is not None else 'auto'}{name}")

    def choose_student(self) -> None:
        dialog = StudentDialog(self.task, self.config, self)
        dialog.picker.set_project(self.project.path, self.config)  # cards measured for this project's run
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.set_config(dialog.config)

    def set_config(self, config: dict[str, Any]) -> None:
        """Use ``config`` for the next runs and keep it in the project for the next session."""
        self.config = dict(config)
        self.project.update_settings(**{SETTINGS_KEY: self.config})
        self._show_config()
        self.update_empty_state()

    # -- what to do first ---------------------------------------------------------------------
    def has_teacher_answers(self) -> bool:
        """True when the teacher this panel trains on has answered (or the run needs no teacher)."""
        if self.config.get("hard_labels"):
            return True
        teacher = self.config.get("teacher")
        if teacher is None:
            return self.project.default_teacher() is not None
        return self.project.count_outputs(int(teacher))["n_ok"] > 0

    def update_empty_state(self) -> None:
        """What the empty plot area says: harvest a teacher first, or start the first run."""
        if self.has_teacher_answers():
            self.empty.set_state(
                "No training runs yet",
                f"Press Start training: the student ({self.config.get('student', '?')}) learns from the teacher's "
                "answers while its loss, validation accuracy, agreement with the teacher and learning rate plot "
                "here.",
                "Start training", self.start)
        else:
            self.empty.set_state(
                "No teacher answers yet",
                "A student learns from a teacher's answers, so harvest them first: a teacher (the offline MiniLM, "
                "a local model, or Claude) answers every example in the Harvest tab. Then train here.",
                "Harvest a teacher", lambda: self.tab_requested.emit("harvest"))

    # -- runs list ----------------------------------------------------------------------------
    def refresh_runs(self, *, check_latest: bool = False) -> None:
        """List the project's runs; keep ticks; tick the newest finished one on first show."""
        checked = {self.runs.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.runs.count())
                   if self.runs.item(i).checkState() == Qt.CheckState.Checked}
        runs = self.project.runs()
        self.runs.blockSignals(True)
        self.runs.clear()
        for run in reversed(runs):
            metrics = run.get("summary", {})
            extra = run_score_text(metrics)
            status = run_status_text(run)
            text = f"{run_title(run)}\n{status}" \
                   f"{extra} · {(run.get('started') or '')[5:16].replace('T', ' ')}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, run["id"])
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if run["id"] in checked else Qt.CheckState.Unchecked)
            self.runs.addItem(item)
        self.runs.blockSignals(False)
        if check_latest and runs and not checked:
            finished = [r for r in runs if r["status"] == "finished"] or runs
            distilled = [r for r in finished if not r.get("config", {}).get("hard_labels")] or finished
            self.set_run_checked(distilled[-1]["id"], True)
        if not runs:
            self.update_empty_state()
        self.stack.setCurrentWidget(self.view if runs else self.empty)
        self._update_resume()

    def _update_resume(self) -> None:
        """Offer Resume for the newest run that stopped early and kept a checkpoint."""
        from kdstudio.core.train import resumable_run

        self.resumable = resumable_run(self.project)
        self.resume_button.setText(f"Resume run #{self.resumable}" if self.resumable is not None else "Resume")
        self.resume_button.setVisible(self.resumable is not None)
        self.resume_button.setEnabled(self.worker is None)

    def set_run_checked(self, run_id: int, checked: bool) -> None:
        for i in range(self.runs.count()):
            item = self.runs.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == run_id:
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def _run_toggled(self, item: QListWidgetItem) -> None:
        run_id = item.data(Qt.ItemDataRole.UserRole)
        checked = item.checkState() == Qt.CheckState.Checked
        if checked and run_id not in self._loaded and run_id != self.live_run:
            self.load_run(run_id)
        self.view.set_run_visible(run_id, checked)

    def load_run(self, run_id: int) -> None:
        """Load a stored run's metrics in a worker and overlay them."""
        from kdstudio.core.train import load_metrics

        self._loaded.add(run_id)
        self.view.ensure_run(run_id, f"run {run_id}")
        worker = Worker(load_metrics, str(self.project_path), run_id, name="Loading metrics", parent=self)
        worker.yielded.connect(self._metrics_loaded)
        worker.finished.connect(self._loader_finished)
        self._loaders.append(worker.start())

    def _metrics_loaded(self, event: object) -> None:
        if isinstance(event, Finished):
            metrics = event.result
            if metrics.run in self.view.runs:
                self.view.add_rows(metrics.run, metrics.rows)

    def _loader_finished(self, _status: str) -> None:
        self._loaders = [w for w in self._loaders if w.is_running]

    # -- jobs ---------------------------------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        if running:
            self.progress.show()
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.cancel_button.setEnabled(running)
        if not running:
            self.pause_button.setText("Pause")

    def resume(self) -> bool:
        """Continue the run Resume offers from its last checkpoint (``kdstudio train --resume``)."""
        return self.resumable is not None and self.start(resume_run=self.resumable)

    def start(self, config: dict[str, Any] | None = None, *, resume_run: int | None = None) -> bool:
        """Start a run with the panel's config (or ``config``), or continue run ``resume_run``
        with its stored settings."""
        from kdstudio.core.train import TrainConfig, close_unfinished_runs, train

        try:
            train_config = TrainConfig.from_dict(config or self.config).validate()
        except ConfigError as exc:
            self.progress_text.setText("Failed")
            self.failure.show_failure(str(exc), "Training")
            return False
        before = max((r["id"] for r in self.project.runs()), default=0) if resume_run is None else resume_run - 1
        path = str(self.project_path)
        worker = Worker(train, path, train_config, name="Training", parent=self, limit_threads=True,
                        on_stop=functools.partial(close_unfinished_runs, path, before), resume_run=resume_run)
        worker.yielded.connect(self.on_event)
        worker.paused_changed.connect(self._paused)
        worker.finished.connect(self._finished)
        if not self.jobs.start(worker, self):
            return False
        self.worker = worker
        self.live_run = None
        self.view.live = True
        self.progress.setRange(0, 0)
        self.progress_text.setText("Preparing the data and the student…" if resume_run is None else
                                   f"Resuming run #{resume_run} from its last checkpoint…")
        self.log_line.setText("")
        self.failure.dismiss()
        self._set_running(True)
        self.stack.setCurrentWidget(self.view)
        return True

    def _paused(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        if paused:
            self.progress_text.setText("Paused")

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.progress_text.setText("Stopping…")

    def on_event(self, event: object) -> None:
        if isinstance(event, Metric):
            run = event.run if event.run is not None else -1
            if run != self.live_run:
                self._live_run_started(run)
            self.view.add_metric(run, event.name, event.step, event.epoch, event.wall_s, event.value)
            self._keep_best_valid(event.name, event.step, event.value)
        elif isinstance(event, Progress):
            if event.stage == "train" and event.total:
                self.progress.setRange(0, 1000)
                self.progress.setValue(int(1000 * event.fraction))
                epoch = event.info.get("epoch")
                epochs = event.info.get("epochs")
                where = f"epoch {float(epoch):.1f}/{epochs} · " if epoch is not None and epochs else ""
                eta = f" · {format_duration(event.eta_s)} left" if event.eta_s is not None else ""
                self.progress_text.setText(f"{where}step {event.done:,}/{event.total:,}{eta}")
            else:
                self.progress_text.setText(f"{event.stage.replace('_', ' ').capitalize()}…")
        elif isinstance(event, Log):
            self.log_line.setText(event.message)

    def _keep_best_valid(self, name: str, step: int, value: float) -> None:
        """A generation run's validation loss and perplexity, by step (the Done line names the best)."""
        if name in ("valid/loss", "valid/perplexity"):
            self._valid_seen.setdefault(step, {})[name] = value

    def best_valid(self) -> dict[str, float]:
        """The live run's evaluation with the lowest validation loss (its ``valid/...`` values), or {}."""
        scored = [v for v in self._valid_seen.values() if v.get("valid/loss") is not None]
        return min(scored, key=lambda v: v["valid/loss"]) if scored else {}

    def _live_run_started(self, run: int) -> None:
        self._valid_seen = {}
        self.live_run = run
        self._loaded.add(run)
        self.view.ensure_run(run, f"run {run}")
        self.refresh_runs()
        self.set_run_checked(run, True)

    def _finished(self, status: str) -> None:
        worker, self.worker = self.worker, None
        self._set_running(False)
        self.progress.setRange(0, 1000)
        if status == "finished":
            self.progress.setValue(1000)
            from kdstudio.core.train import TrainResult

            result = worker.result if worker else None
            reason = result.stop_reason if isinstance(result, TrainResult) else None
            self.progress_text.setText("Done" + done_score(result, self.task, self.best_valid())
                                       + (" · stopped early" if reason else ""))
            self.log_line.setText(f"{reason[0].upper()}{reason[1:]}" if reason else "")
        elif status == "cancelled":
            self.progress_text.setText("Cancelled · the best checkpoint so far is kept")
            self.log_line.setText("")
        else:
            self.progress_text.setText("Failed")
            self.log_line.setText("")
            self.failure.show_failure(worker.message if worker else "", "Training")
        self.view.live = False
        self.view._mark_all()
        self.view.redraw()
        self.refresh_runs()
        self.run_finished.emit(status)
