"""The Evaluate tab: the evaluation dashboard of one run — metric cards (student vs teacher
accuracy, agreement, retention, speed-up, size, $ per 1M predictions), the reliability diagram of
both, a cascade slider (share sent to the teacher, accuracy and cost at each confidence threshold,
the numbers of ``kdstudio eval --json``), accuracy on the golden set with a floor, and a Pareto plot
of accuracy against latency across the project's runs, fed by the "Size sweep" action. "Export…"
exports the run shown (``kdstudio export``).

Everything heavy (evaluation, the sweep, reading reports, the export) runs in a worker as a core
job (:mod:`kdstudio.core.evaluate.dashboard`); the Qt thread only draws the typed results.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.evaluate.dashboard import DashboardData, evaluate_runs, load_dashboard
from kdstudio.core.evaluate.result import EvalReport
from kdstudio.gui.evaluate.cards import CascadeCard, GoldenCard, MetricCard, ReliabilityCard
from kdstudio.gui.evaluate.export_dialog import ExportDialog
from kdstudio.gui.evaluate.generation_cards import GenerationCards
from kdstudio.gui.evaluate.latency_card import LatencyCard
from kdstudio.gui.evaluate.pareto import ParetoCard
from kdstudio.gui.evaluate.plots import money, ms, pct, theme_plot
from kdstudio.gui.evaluate.sweep_dialog import SweepDialog
from kdstudio.gui.failure_banner import FailureBanner
from kdstudio.gui.job_host import JobHost
from kdstudio.gui.theme import Theme, ThemeManager
from kdstudio.gui.widgets import EmptyState, button, label
from kdstudio.gui.worker import Worker


class EvaluationDashboard(QWidget):
    """The Evaluate tab. ``jobs`` runs evaluation and the size sweep (one long job at a time)."""

    evaluated = Signal(int)
    loaded = Signal()
    tab_requested = Signal(str)  # "training" (no run yet) or "compare" (no reviews yet)

    def __init__(
        self,
        project_path: str | Path,
        jobs: JobHost | None = None,
        project: Any = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.project_path = Path(project_path)
        self.jobs = jobs if jobs is not None else JobHost(self)
        self.project = project  # the Qt thread's Project, for the floor setting (optional)
        self.run_id: int | None = None
        self.data: DashboardData | None = None
        self.export_dialog: ExportDialog | None = None
        self._workers: list[Worker] = []

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.failure = FailureBanner()  # why an evaluation or a sweep failed
        self._failure_wrap = QWidget()
        wrap = QVBoxLayout(self._failure_wrap)
        wrap.setContentsMargins(20, 10, 20, 0)
        wrap.addWidget(self.failure)
        self.failure.dismissed.connect(self._failure_wrap.hide)
        self._failure_wrap.hide()
        outer.addWidget(self._failure_wrap)
        self.stack = QStackedWidget()
        outer.addWidget(self.stack)
        self.empty = EmptyState("No evaluation yet", "")
        self.stack.addWidget(self.empty)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget()
        scroll.setWidget(body)
        root = QVBoxLayout(body)
        root.setContentsMargins(20, 12, 20, 16)
        root.setSpacing(12)
        head = QHBoxLayout()
        head.addWidget(label("Run", "subheading"))
        self.run_combo = QComboBox()
        self.run_combo.setMinimumContentsLength(24)
        self.run_combo.currentIndexChanged.connect(self._run_picked)
        head.addWidget(self.run_combo)
        self.summary = label("", "muted")
        head.addWidget(self.summary, 1)
        self.flag = label("", "error")
        head.addWidget(self.flag)
        self.reevaluate_button = button(
            "Evaluate again", tooltip="Measure this run again (quality, speed, cascade)"
        )
        self.reevaluate_button.clicked.connect(self.evaluate_current)
        head.addWidget(self.reevaluate_button)
        self.export_button = button(
            "Export…", "primary", tooltip="Export this run's student as ONNX or a Hugging Face folder, "
            "with a model card (kdstudio export)"
        )
        self.export_button.clicked.connect(self.export_current)
        head.addWidget(self.export_button)
        root.addLayout(head)

        cards = QGridLayout()
        cards.setSpacing(10)
        self.cards = {
            key: MetricCard(caption)
            for key, caption in (
                ("accuracy", "Student accuracy"),
                ("agreement", "Agreement with the teacher"),
                ("retention", "Retention"),
                ("speedup", "Speed-up"),
                ("size", "Student size"),
                ("cost", "$ per 1M predictions"),
            )
        }
        for i, card in enumerate(self.cards.values()):
            cards.addWidget(card, 0, i)
        self.classification_cards = QWidget()
        self.classification_cards.setLayout(cards)
        root.addWidget(self.classification_cards)
        self.latency = LatencyCard()  # every runtime of student and teacher, under the speed-up
        root.addWidget(self.latency)
        self.generation_cards = GenerationCards()  # a generation run's scores, speed and size
        self.generation_cards.hide()
        root.addWidget(self.generation_cards)

        middle = QHBoxLayout()
        middle.setSpacing(12)
        self.reliability = ReliabilityCard()
        self.cascade = CascadeCard()
        middle.addWidget(self.reliability, 1)
        middle.addWidget(self.cascade, 1)
        root.addLayout(middle, 1)

        bottom = QHBoxLayout()
        bottom.setSpacing(12)
        self.pareto = ParetoCard()
        self.pareto.sweep_requested.connect(self.ask_sweep)
        self.pareto.evaluate_requested.connect(self.evaluate_others)
        self.golden = GoldenCard()
        self.golden.floor_changed.connect(self.set_floor)
        self.golden.compare_requested.connect(lambda: self.tab_requested.emit("compare"))
        self.golden.setMaximumWidth(340)
        bottom.addWidget(self.pareto, 1)
        bottom.addWidget(self.golden)
        root.addLayout(bottom, 1)
        for card in (self.reliability, self.cascade):
            card.setMinimumHeight(300)
            card.setMaximumHeight(380)
        self.pareto.setMinimumHeight(320)
        self.stack.addWidget(scroll)
        self.page = scroll
        ThemeManager.instance().theme_changed.connect(self._theme_changed)
        self.refresh()

    # -- loading ------------------------------------------------------------------------------------
    def refresh(self, run_id: int | None = None) -> Worker:
        """Read the run's report (default: the one shown, else the latest) in the worker."""
        worker = Worker(
            load_dashboard,
            str(self.project_path),
            run_id if run_id is not None else self.run_id,
            name="Loading the evaluation",
            parent=self,
        )
        worker.finished.connect(lambda status, w=worker: self._loaded(w, status))
        self._workers.append(worker.start())
        return worker

    def _loaded(self, worker: Worker, status: str) -> None:
        if worker in self._workers:
            self._workers.remove(worker)
        if status != "finished" or not isinstance(worker.result, DashboardData):
            return
        self.show_data(worker.result)

    def show_data(self, data: DashboardData) -> None:
        self.data = data
        self.run_id = data.run
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for r in reversed(data.runs):
            mark = "" if r.evaluated else "  (not evaluated)"
            self.run_combo.addItem(f"#{r.id} · {r.name}{mark}", r.id)
        if self.run_id is not None:
            self.run_combo.setCurrentIndex(max(0, self.run_combo.findData(self.run_id)))
        self.run_combo.blockSignals(False)
        report = data.report
        self.golden.set_floor(data.golden_floor)
        generation = getattr(data, "generation", None)  # DashboardData.generation: a generation run's report
        self._show_task(generation is not None)
        if generation is not None:
            self.stack.setCurrentWidget(self.page)
            self._show_generation(generation)
            self.pareto.set_points(data.points, data.teacher_point, len(data.unevaluated), self.run_id,
                               data.quality_name)
            self.loaded.emit()
            return
        if report is None:
            self.stack.setCurrentWidget(self.empty)
            if self.run_id is not None:
                self.empty.set_state(
                    f"Run #{self.run_id} is not evaluated yet",
                    "Evaluation measures the student against the teacher on the test split: "
                    "accuracy, agreement, calibration, speed, size and cost, and where a cascade "
                    "pays off.",
                    f"Evaluate run #{self.run_id}",
                    self.evaluate_current,
                )
            else:
                self.empty.set_state(
                    "No finished run yet",
                    "Train a student first. When its run finishes, evaluate it here: accuracy, "
                    "agreement, speed, size and cost, side by side with the teacher.",
                    "Train a student",
                    lambda: self.tab_requested.emit("training"),
                )
            self.loaded.emit()
            return
        self.stack.setCurrentWidget(self.page)
        self._show_report(report)
        golden = data.golden
        self.golden.set_golden(golden)
        self.flag.setText(
            f"⚠ below the golden-set floor ({golden.floor:.0%})"
            if golden is not None and golden.below_floor and golden.floor is not None
            else ""
        )
        self.pareto.set_points(data.points, data.teacher_point, len(data.unevaluated), self.run_id,
                               data.quality_name)
        self.loaded.emit()

    def _show_report(self, r: EvalReport) -> None:
        c = self.cards
        c["accuracy"].set(pct(r.student_accuracy), f"teacher {pct(r.teacher_accuracy)}")
        c["agreement"].set(pct(r.agreement), f"KL {r.kl:.3f}" if r.kl is not None else "")
        c["retention"].set(pct(r.retention), "student ÷ teacher")
        c["speedup"].set(f"{r.speedup:,.1f}×" if r.speedup else "–", speedup_basis(r))
        c["speedup"].detail.setToolTip(
            f"{ms(r.student_latency_ms_p50)} vs {ms(r.teacher_latency_ms_p50)} p50 at batch 1"
        )
        c["size"].set(
            f"{r.student_size_mb:,.1f} MB" if r.student_size_mb is not None else "–",
            (f"{r.student_params / 1e6:,.2f}M params" if r.student_params else "")
            + (f" · teacher {r.teacher_size_mb:,.0f} MB" if r.teacher_size_mb else ""),
        )
        best = r.best_cascade
        c["cost"].set(
            money(best.cost_per_1m_usd) if best is not None else "$0",
            ("best cascade" if best is not None else "student alone, local")
            + f" · teacher {money(r.teacher_cost_per_1m_usd)}",
        )
        self.summary.setText(
            f"vs teacher {r.teacher_spec or '–'} · {r.n_test or 0:,} test examples · on {r.device or '?'}"
        )
        self.reliability.set_report(r)
        self.cascade.set_plan(r.cascade)
        self.latency.set_report(r)

    def _show_task(self, generation: bool) -> None:
        """A generation run's cards in place of classification's; no reliability, cascade slider or
        golden set (they are about labels)."""
        self.classification_cards.setVisible(not generation)
        self.generation_cards.setVisible(generation)
        for card in (self.reliability, self.cascade, self.golden, self.latency):
            card.setVisible(not generation)

    def _show_generation(self, r: Any) -> None:
        self.generation_cards.set_report(r)
        self.flag.setText("")
        self.summary.setText(f"vs teacher {r.teacher_spec or '–'} · {r.n_test or 0:,} test prompts · "
                             f"on {r.device or '?'}")

    def _run_picked(self, *_args: object) -> None:
        run_id = self.run_combo.currentData()
        if run_id is not None and run_id != self.run_id:
            self.refresh(int(run_id))

    def _theme_changed(self, theme: Theme) -> None:
        for card in (self.reliability, self.cascade, self.pareto):
            theme_plot(card.widget, theme)
        if self.data is not None:
            self.show_data(self.data)

    # -- actions -------------------------------------------------------------------------------------
    def set_floor(self, floor: float | None) -> None:
        """Keep the golden-set floor as a project setting, then re-read the flag."""
        from kdstudio.core.store import Project

        if self.project is not None:
            self.project.update_settings(golden_floor=floor)
        else:
            with Project(self.project_path) as project:
                project.update_settings(golden_floor=floor)
        self.refresh()

    def _start(self, worker: Worker) -> bool:
        worker.finished.connect(lambda status, w=worker: self._job_done(w, status))
        started = self.jobs.start(worker, self)
        if started:
            self.empty.action.setEnabled(False)
            self.failure.dismiss()
        return started

    def _job_done(self, worker: Worker, status: str) -> None:
        self.empty.action.setEnabled(True)
        if status == "failed":
            self._failure_wrap.show()
            self.failure.show_failure(worker.message, worker.name)
        if status == "finished" and self.run_id is not None:
            self.evaluated.emit(self.run_id)
        self.refresh()

    def evaluate_current(self) -> Worker | None:
        """Evaluate the run shown (quality, speed, cascade) in the worker."""
        from kdstudio.core.evaluate import evaluate

        if self.run_id is None:
            return None
        worker = Worker(
            evaluate,
            str(self.project_path),
            self.run_id,
            name=f"Evaluating run #{self.run_id}",
            parent=self,
            limit_threads=True,
        )
        return worker if self._start(worker) else None

    def evaluate_others(self) -> Worker | None:
        runs = list(self.data.unevaluated) if self.data is not None else []
        if not runs:
            return None
        worker = Worker(
            evaluate_runs,
            str(self.project_path),
            runs,
            name="Evaluating runs",
            parent=self,
            limit_threads=True,
        )
        return worker if self._start(worker) else None

    def sweep_base(self) -> dict[str, Any]:
        """The settings every preset of a sweep shares: the shown run's, without its name and student."""
        from kdstudio.core.store import Project

        base: dict[str, Any] = {}
        if self.run_id is not None:
            with Project(self.project_path) as project:
                run = project.run(self.run_id) or {}
            base = {
                k: v
                for k, v in (run.get("config") or {}).items()
                if k not in ("student", "name", "lr", "vocab_size", "max_length")
            }
        return base

    def start_sweep(self, presets: Sequence[str], *, epochs: int | None = None) -> Worker | None:
        """Queue ``presets`` in one worker job: trained one after another, each evaluated."""
        from kdstudio.core.store import Project
        from kdstudio.core.train import close_unfinished_runs as mark_unfinished_runs
        from kdstudio.core.train_sweep import size_sweep

        base = self.sweep_base()
        if epochs is not None:
            base["epochs"] = epochs
        with Project(self.project_path) as project:
            last = max((r["id"] for r in project.runs()), default=0)
        worker = Worker(
            size_sweep,
            str(self.project_path),
            list(presets),
            base=base,
            name="Size sweep",
            parent=self,
            limit_threads=True,
            on_stop=functools.partial(mark_unfinished_runs, str(self.project_path), last),
        )
        return worker if self._start(worker) else None

    def export_current(self) -> ExportDialog | None:
        """Open the export dialog for the run shown (the export itself runs when asked there)."""
        if self.run_id is None:
            return None
        run = next((r for r in self.data.runs if r.id == self.run_id), None) if self.data else None
        if self.export_dialog is not None:
            self.export_dialog.deleteLater()
        dialog = ExportDialog(self.project_path, self.run_id, run.name if run else "", self)
        dialog.exported.connect(lambda _result: self.refresh())  # the export evaluates an unevaluated run
        self.export_dialog = dialog
        dialog.open()
        return dialog

    def ask_sweep(self) -> None:
        from kdstudio.core.train_sweep import SWEEP_PRESETS

        epochs = int(self.sweep_base().get("epochs") or 5)
        dialog = SweepDialog(SWEEP_PRESETS, epochs, self)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.presets():
            self.start_sweep(dialog.presets(), epochs=dialog.epochs.value())

    def close(self) -> bool:
        for worker in list(self._workers):
            worker.cancel()
        return super().close()


def speedup_basis(r: EvalReport) -> str:
    """The speed-up card's line: what the headline compares ("faster · torch, batch 1"), and the
    latencies when an earlier evaluation did not say."""
    if not r.speedup:
        return "not measured"
    if r.speedup_runtime == "recorded":
        return "faster · torch vs API, batch 1"
    if r.speedup_runtime:
        return f"faster · {r.speedup_runtime}, batch 1"
    return f"{ms(r.student_latency_ms_p50)} vs {ms(r.teacher_latency_ms_p50)} p50"
