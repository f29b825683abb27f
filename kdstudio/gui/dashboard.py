"""The evaluation dashboard of one run: metric cards (student vs teacher accuracy, agreement,
retention, speed-up, size, $ per 1M predictions), the reliability diagram of both, a cascade
slider (share sent to the teacher, accuracy and cost at each confidence threshold, the numbers
of ``kdstudio eval --json``), accuracy on the golden set with a floor, and a Pareto plot of
accuracy against latency across the project's runs, fed by the "Size sweep" action.

Everything heavy (evaluation, the sweep, reading reports) runs in the worker; the Qt thread only
draws what a job returned.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.events import CancelToken, Event, Finished, Log
from kdstudio.gui.job_host import JobHost
from kdstudio.gui.theme import SERIES_COLORS, Theme, ThemeManager, current_theme
from kdstudio.gui.widgets import Card, EmptyState, button, label
from kdstudio.gui.worker import Worker

STUDENT_COLOR, TEACHER_COLOR = SERIES_COLORS[1], SERIES_COLORS[0]


# -- jobs (run in the worker) ------------------------------------------------------------------------


def pareto_points(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mark each point ``frontier=True`` when no other point is at least as fast and as accurate
    and strictly better in one (lower ``latency_ms``, higher ``accuracy``). Points without both
    numbers are never on the frontier."""
    out = [dict(p) for p in runs]
    scored = [p for p in out if p.get("accuracy") is not None and p.get("latency_ms") is not None]
    for p in out:
        p["frontier"] = p in scored and not any(
            q is not p
            and q["latency_ms"] <= p["latency_ms"]
            and q["accuracy"] >= p["accuracy"]
            and (q["latency_ms"] < p["latency_ms"] or q["accuracy"] > p["accuracy"])
            for q in scored
        )
    return out


def load_dashboard_job(
    project_path: str, run_id: int | None = None, *, cancel: CancelToken | None = None
) -> Iterator[Event]:
    """The stored report of ``run_id`` (default: the latest finished run), its golden-set
    scores, and one point per evaluated run for the Pareto plot."""
    from kdstudio.core.evaluate.golden import golden_report
    from kdstudio.core.store import Project

    with Project(project_path) as project:
        finished = [r for r in project.runs() if r["status"] == "finished"]
        if run_id is None and finished:
            run_id = project.preferred_run()
        report = project.evaluation(run_id) if run_id is not None else None
        golden = golden_report(project, run_id) if report is not None else None
        points, unevaluated = [], []
        for r in finished:
            rep = project.evaluation(r["id"])
            if rep is None:
                unevaluated.append(r["id"])
                continue
            points.append(
                {
                    "run": r["id"],
                    "name": r.get("name") or r["student"],
                    "student": r["student"],
                    "accuracy": rep.get("student_accuracy"),
                    "latency_ms": rep.get("student_latency_ms_p50"),
                    "params": rep.get("student_params"),
                    "size_mb": rep.get("student_size_mb"),
                }
            )
        teacher_point = None
        if report is not None and report.get("teacher_latency_ms_p50") is not None:
            teacher_point = {
                "accuracy": report.get("teacher_accuracy"),
                "latency_ms": report.get("teacher_latency_ms_p50"),
                "name": f"teacher {report.get('teacher_spec') or ''}".strip(),
            }
        runs = [
            {
                "id": r["id"],
                "name": r.get("name") or r["student"],
                "student": r["student"],
                "evaluated": r["id"] not in unevaluated,
            }
            for r in finished
        ]
        floor = project.settings().get("golden_floor")
    yield Finished(
        {
            "run": run_id,
            "report": report,
            "golden": golden,
            "runs": runs,
            "points": pareto_points(points),
            "teacher_point": teacher_point,
            "unevaluated": unevaluated,
            "golden_floor": floor,
        }
    )


def evaluate_runs_job(
    project_path: str,
    run_ids: Sequence[int],
    *,
    speed: bool = True,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """``kdstudio eval`` for each run in turn (one job); ends with the reports' run ids."""
    from kdstudio.core.evaluate import evaluate

    done = []
    for i, run_id in enumerate(run_ids, start=1):
        yield Log(f"evaluating run #{run_id} ({i}/{len(run_ids)})")
        for event in evaluate(project_path, run_id, speed=speed, cancel=cancel):
            if not isinstance(event, Finished):
                yield event
        done.append(run_id)
    yield Finished({"runs": done})


# -- pieces ---------------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _money(value: float | None) -> str:
    if value is None:
        return "–"
    return f"${value:,.0f}" if value >= 100 else f"${value:,.2f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f} ms" if value < 10 else f"{value:,.0f} ms"


class MetricCard(Card):
    """A big number with a caption and a line of context under it."""

    def __init__(self, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_.setContentsMargins(14, 10, 14, 10)
        self.layout_.setSpacing(2)
        self.caption = label(caption, "statLabel")
        self.value = label("–", "statValue")
        self.detail = label("", "muted")
        for w in (self.caption, self.value, self.detail):
            self.layout_.addWidget(w)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(140)
        self.setFixedHeight(90)

    def set(self, value: str, detail: str = "", *, flag: str | None = None) -> None:
        self.value.setText(value)
        self.detail.setText(detail)
        self.detail.setToolTip(detail)
        self.value.setObjectName({"bad": "error", "good": "success"}.get(flag or "", "statValue"))
        if flag:
            self.value.setStyleSheet("font-size: 17pt; font-weight: 600;")
        else:
            self.value.setStyleSheet("")
        self.value.style().unpolish(self.value)
        self.value.style().polish(self.value)


def _plot(title_x: str, title_y: str) -> pg.PlotWidget:
    widget = pg.PlotWidget()
    widget.setMinimumHeight(220)
    plot = widget.getPlotItem()
    plot.setLabel("bottom", title_x)
    plot.setLabel("left", title_y)
    plot.hideButtons()
    plot.setMenuEnabled(False)
    plot.getViewBox().setMouseEnabled(False, False)
    for axis in ("left", "bottom"):
        plot.getAxis(axis).enableAutoSIPrefix(False)
    _theme_plot(widget, current_theme())
    return widget


def _theme_plot(widget: pg.PlotWidget, theme: Theme) -> None:
    widget.setBackground(theme.plot_bg)
    plot = widget.getPlotItem()
    for axis in ("left", "bottom"):
        ax = plot.getAxis(axis)
        ax.setPen(pg.mkPen(theme.border))
        ax.setTextPen(pg.mkPen(theme.plot_fg))
    plot.showGrid(x=True, y=True, alpha=theme.grid_alpha)


class ReliabilityCard(Card):
    """Binned confidence against accuracy for student and teacher, with the diagonal."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_.addWidget(label("Reliability", "subheading"))
        self.legend = label("", "muted")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.layout_.addWidget(self.legend)
        self.widget = _plot("confidence", "accuracy")
        self.plot = self.widget.getPlotItem()
        self.plot.setXRange(0, 1, padding=0.02)
        self.plot.setYRange(0, 1, padding=0.02)
        self.diagonal = self.plot.plot(
            [0, 1], [0, 1], pen=pg.mkPen(current_theme().muted, width=1, style=Qt.PenStyle.DashLine)
        )
        self.curves = {
            who: self.plot.plot(
                [],
                [],
                pen=pg.mkPen(colour, width=2),
                symbol="o",
                symbolSize=7,
                symbolBrush=colour,
                symbolPen=None,
            )
            for who, colour in (("teacher", TEACHER_COLOR), ("student", STUDENT_COLOR))
        }
        self.layout_.addWidget(self.widget, 1)
        self.points: dict[str, tuple[list[float], list[float]]] = {}

    def set_report(self, report: dict[str, Any]) -> None:
        bins = report.get("reliability") or {}
        for who, curve in self.curves.items():
            rows = [b for b in bins.get(who) or [] if b.get("count")]
            xs, ys = [b["confidence"] for b in rows], [b["accuracy"] for b in rows]
            self.points[who] = (xs, ys)
            curve.setData(xs, ys)
        self.legend.setText(
            f"<span style='color:{TEACHER_COLOR}'>●</span> teacher, ECE {report.get('teacher_ece') or 0:.3f}"
            f" &nbsp; <span style='color:{STUDENT_COLOR}'>●</span> student, ECE {report.get('student_ece') or 0:.3f}"
            " &nbsp; dashed: perfectly calibrated"
        )


class CascadeCard(Card):
    """The student answers first and sends cases under a confidence threshold to the teacher:
    a slider over the report's thresholds shows the share sent, accuracy, cost and time."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        head = QHBoxLayout()
        head.addWidget(label("Cascade: student first, teacher when unsure", "subheading"))
        head.addStretch(1)
        self.best_button = button(
            "Best", "link", tooltip="the cheapest threshold within a point of the teacher"
        )
        self.best_button.clicked.connect(self.go_to_best)
        head.addWidget(self.best_button)
        self.layout_.addLayout(head)
        row = QHBoxLayout()
        self.threshold_label = label("", "subheading")
        self.threshold_label.setMinimumWidth(190)
        row.addWidget(self.threshold_label)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip(
            "Send a case to the teacher when the student's confidence is below this"
        )
        self.slider.valueChanged.connect(self._moved)
        row.addWidget(self.slider, 1)
        self.layout_.addLayout(row)
        numbers = QGridLayout()
        numbers.setHorizontalSpacing(18)
        self.share = label("–", "statValue")
        self.accuracy = label("–", "statValue")
        self.cost = label("–", "statValue")
        self.time = label("–", "statValue")
        for col, (w, caption) in enumerate(
            (
                (self.share, "sent to the teacher"),
                (self.accuracy, "accuracy"),
                (self.cost, "$ per 1M predictions"),
                (self.time, "mean time"),
            )
        ):
            numbers.addWidget(w, 0, col)
            numbers.addWidget(label(caption, "statLabel"), 1, col)
        self.layout_.addLayout(numbers)
        self.note = label("", "muted")
        self.note.setWordWrap(True)
        self.layout_.addWidget(self.note)
        self.widget = _plot("share sent to the teacher", "accuracy")
        self.widget.setMinimumHeight(150)
        self.plot = self.widget.getPlotItem()
        self.curve = self.plot.plot([], [], pen=pg.mkPen(SERIES_COLORS[2], width=2))
        self.marker = pg.ScatterPlotItem(size=11, brush=pg.mkBrush(STUDENT_COLOR), pen=None)
        self.teacher_line = pg.InfiniteLine(
            angle=0, pen=pg.mkPen(TEACHER_COLOR, style=Qt.PenStyle.DashLine)
        )
        self.plot.addItem(self.teacher_line)
        self.plot.addItem(self.marker)
        self.layout_.addWidget(self.widget, 1)
        self.rows: list[dict[str, Any]] = []
        self.best_index: int | None = None

    def set_plan(self, plan: dict[str, Any] | None) -> None:
        self.rows = list((plan or {}).get("rows") or [])
        best = (plan or {}).get("best")
        self.best_index = next(
            (i for i, r in enumerate(self.rows) if best and r["threshold"] == best["threshold"]),
            None,
        )
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(self.rows) - 1))
        self.slider.blockSignals(False)
        self.curve.setData(
            [r["share_to_teacher"] for r in self.rows],
            [r["accuracy"] if r["accuracy"] is not None else 0.0 for r in self.rows],
        )
        teacher_acc = (plan or {}).get("teacher_accuracy")
        self.teacher_line.setVisible(teacher_acc is not None)
        if teacher_acc is not None:
            self.teacher_line.setValue(teacher_acc)
        if best:
            self.note.setText(
                f"Best: below {best['threshold']:.2f} confidence, {best['share_to_teacher']:.0%} of "
                f"cases go to the teacher for {best['accuracy']:.1%} accuracy (teacher alone "
                f"{_pct(teacher_acc)})."
            )
        elif self.rows:
            self.note.setText("No threshold reaches the teacher's accuracy within a point.")
        else:
            self.note.setText(
                "No cascade: the test split has no gold labels or no teacher answers."
            )
        self.best_button.setEnabled(self.best_index is not None)
        start = self.best_index if self.best_index is not None else 0
        self.slider.setValue(start)
        self._moved(start)

    def go_to_best(self) -> None:
        if self.best_index is not None:
            self.slider.setValue(self.best_index)

    def current(self) -> dict[str, Any] | None:
        i = self.slider.value()
        return self.rows[i] if 0 <= i < len(self.rows) else None

    def _moved(self, _value: int) -> None:
        row = self.current()
        if row is None:
            for w in (self.share, self.accuracy, self.cost, self.time):
                w.setText("–")
            self.threshold_label.setText("")
            self.marker.setData([], [])
            return
        self.threshold_label.setText(f"confidence < {row['threshold']:.2f}")
        self.share.setText(f"{row['share_to_teacher']:.1%}")
        self.accuracy.setText(_pct(row["accuracy"]))
        self.cost.setText(_money(row["cost_per_1m_usd"]))
        self.time.setText(_ms(row["mean_ms"]))
        self.marker.setData([row["share_to_teacher"]], [row["accuracy"] or 0.0])


class ParetoCard(Card):
    """Accuracy against latency across the project's evaluated runs; the frontier joins the runs
    worth keeping."""

    sweep_requested = Signal()
    evaluate_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        head = QHBoxLayout()
        head.addWidget(label("Accuracy vs latency across runs", "subheading"))
        head.addStretch(1)
        self.evaluate_button = button(
            "Evaluate the others",
            tooltip="Evaluate the finished runs that have no report yet, one after another",
        )
        self.evaluate_button.clicked.connect(self.evaluate_requested)
        head.addWidget(self.evaluate_button)
        self.sweep_button = button(
            "Size sweep…",
            "primary",
            tooltip="Train several student sizes on the same "
            "harvest, one after another, and plot them",
        )
        self.sweep_button.clicked.connect(self.sweep_requested)
        head.addWidget(self.sweep_button)
        self.layout_.addLayout(head)
        self.note = label("", "muted")
        self.note.setWordWrap(True)
        self.layout_.addWidget(self.note)
        self.widget = _plot("latency p50 (ms, batch 1)", "test accuracy")
        self.plot = self.widget.getPlotItem()
        self.frontier = self.plot.plot([], [], pen=pg.mkPen(SERIES_COLORS[2], width=2))
        self.scatter = pg.ScatterPlotItem(size=11, pen=None)
        self.teacher = pg.ScatterPlotItem(
            size=13, symbol="star", pen=None, brush=pg.mkBrush(TEACHER_COLOR)
        )
        self.plot.addItem(self.scatter)
        self.plot.addItem(self.teacher)
        self.texts: list[pg.TextItem] = []
        self.layout_.addWidget(self.widget, 1)
        self.points: list[dict[str, Any]] = []

    def set_points(
        self,
        points: list[dict[str, Any]],
        teacher: dict[str, Any] | None,
        unevaluated: int,
        current: int | None,
    ) -> None:
        theme = current_theme()
        self.points = points
        for t in self.texts:
            self.plot.removeItem(t)
        self.texts = []
        shown = [
            p for p in points if p.get("accuracy") is not None and p.get("latency_ms") is not None
        ]
        spots = []
        for p in shown:
            colour = STUDENT_COLOR if p["frontier"] else theme.muted
            spots.append(
                {
                    "pos": (p["latency_ms"], p["accuracy"]),
                    "brush": pg.mkBrush(colour),
                    "size": 14 if p["run"] == current else 10,
                    "data": p["run"],
                    "symbol": "o" if p["frontier"] else "t",
                }
            )
            text = pg.TextItem(f"#{p['run']} {p['student']}", color=theme.plot_fg, anchor=(0, 1.1))
            text.setPos(p["latency_ms"], p["accuracy"])
            self.plot.addItem(text)
            self.texts.append(text)
        self.scatter.setData(spots)
        front = sorted((p for p in shown if p["frontier"]), key=lambda p: p["latency_ms"])
        self.frontier.setData([p["latency_ms"] for p in front], [p["accuracy"] for p in front])
        if teacher and teacher.get("accuracy") is not None:
            self.teacher.setData([teacher["latency_ms"]], [teacher["accuracy"]])
            text = pg.TextItem(teacher["name"], color=theme.plot_fg, anchor=(1, 1.1))
            text.setPos(teacher["latency_ms"], teacher["accuracy"])
            self.plot.addItem(text)
            self.texts.append(text)
        else:
            self.teacher.setData([], [])
        keep = ", ".join(f"#{p['run']} {p['student']}" for p in front)
        bits = [
            f"Worth keeping (no run is both faster and more accurate): {keep}."
            if keep
            else "No evaluated run has a latency yet."
        ]
        if unevaluated:
            bits.append(
                f"{unevaluated} finished run{'s' if unevaluated > 1 else ''} not evaluated yet."
            )
        self.note.setText(" ".join(bits))
        self.evaluate_button.setVisible(bool(unevaluated))
        xs = [p["latency_ms"] for p in shown] + (
            [teacher["latency_ms"]] if teacher and teacher.get("accuracy") is not None else []
        )
        ys = [p["accuracy"] for p in shown] + (
            [teacher["accuracy"]] if teacher and teacher.get("accuracy") is not None else []
        )
        if xs:
            x0, x1 = min(xs), max(xs)
            y0, y1 = min(ys), max(ys)
            xspan = max(x1 - x0, x1 * 0.5, 0.1)
            yspan = max(y1 - y0, 0.04)
            self.plot.setXRange(max(0.0, x0 - 0.15 * xspan), x1 + 0.3 * xspan, padding=0)
            self.plot.setYRange(
                y0 - 0.2 * yspan, min(1.0, y1 + 0.25 * yspan) if y1 < 1 else 1.02, padding=0
            )


class GoldenCard(Card):
    """Student and teacher accuracy on the golden set, and the floor below which a run is flagged."""

    floor_changed = Signal(object)
    compare_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_.addWidget(label("Golden set", "subheading"))
        self.state = label("", wrap=True)
        self.state.setTextFormat(Qt.TextFormat.RichText)
        self.layout_.addWidget(self.state)
        self.compare_button = button(
            "Open Compare", tooltip="Review examples in the Compare tab: G marks one golden"
        )
        self.compare_button.clicked.connect(self.compare_requested)
        self.compare_button.hide()
        self.layout_.addWidget(self.compare_button, 0, Qt.AlignmentFlag.AlignLeft)
        row = QHBoxLayout()
        self.use_floor = QCheckBox("Flag runs below")
        self.floor = QDoubleSpinBox()
        self.floor.setRange(0.0, 1.0)
        self.floor.setSingleStep(0.01)
        self.floor.setDecimals(2)
        self.floor.setValue(0.9)
        self.floor.setEnabled(False)
        row.addWidget(self.use_floor)
        row.addWidget(self.floor)
        row.addStretch(1)
        self.layout_.addLayout(row)
        self.hint = label(
            "Mark examples golden in the Compare tab (G) once a person has checked their label.",
            "muted",
            wrap=True,
        )
        self.layout_.addWidget(self.hint)
        self._loading = False
        self.use_floor.toggled.connect(self._changed)
        self.floor.valueChanged.connect(self._changed)

    def set_floor(self, floor: float | None) -> None:
        self._loading = True
        self.use_floor.setChecked(floor is not None)
        self.floor.setEnabled(floor is not None)
        if floor is not None:
            self.floor.setValue(float(floor))
        self._loading = False

    def _changed(self, *_args: object) -> None:
        self.floor.setEnabled(self.use_floor.isChecked())
        if not self._loading:
            self.floor_changed.emit(self.floor.value() if self.use_floor.isChecked() else None)

    def set_golden(self, golden: dict[str, Any] | None) -> None:
        theme = current_theme()
        empty = not golden or not golden.get("n_golden")
        self.compare_button.setVisible(empty)
        self.hint.setVisible(not empty)
        if empty:
            self.state.setText(
                "<b>No golden examples yet.</b> In the Compare tab, check an example's label, "
                "correct it with <i>Teacher is wrong</i> if needed, and press G: every run is "
                "then scored on the examples a person checked."
            )
            return
        flag = ""
        if golden.get("below_floor"):
            flag = (
                f"<br><b style='color:{theme.danger}'>⚠ Below the floor of {golden['floor']:.0%}</b>: "
                "this run does worse than you accept on the examples a person checked."
            )
        elif golden.get("floor") is not None and golden.get("student_accuracy") is not None:
            flag = f"<br><span style='color:{theme.success}'>✓ Above the floor of {golden['floor']:.0%}</span>"
        self.state.setText(
            f"student <b>{_pct(golden['student_accuracy'])}</b> · teacher <b>{_pct(golden['teacher_accuracy'])}</b>"
            f" on {golden['n_student']:,} of {golden['n_golden']:,} golden examples{flag}"
        )


class SweepDialog(QDialog):
    """Pick the student presets of a size sweep and the epochs each gets."""

    def __init__(self, presets: Sequence[str], epochs: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Size sweep")
        layout = QVBoxLayout(self)
        layout.addWidget(
            label(
                "Train these students one after another on the same harvest, then evaluate "
                "each. The Pareto plot shows which are worth keeping.",
                wrap=True,
            )
        )
        self.boxes: dict[str, QCheckBox] = {}
        for preset in presets:
            box = QCheckBox(preset)
            box.setChecked(preset in ("cnn", "bilstm", "transformer-tiny"))
            self.boxes[preset] = box
            layout.addWidget(box)
        row = QHBoxLayout()
        row.addWidget(QLabel("Epochs each"))
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 200)
        self.epochs.setValue(epochs)
        row.addWidget(self.epochs)
        row.addStretch(1)
        layout.addLayout(row)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start sweep")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def presets(self) -> list[str]:
        return [p for p, box in self.boxes.items() if box.isChecked()]


# -- the dashboard ---------------------------------------------------------------------------------------


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
        self.data: dict[str, Any] | None = None
        self._workers: list[Worker] = []

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
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
        root.addLayout(cards)

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
            load_dashboard_job,
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
        if status != "finished" or worker.result is None:
            return
        self.show_data(worker.result)

    def show_data(self, data: dict[str, Any]) -> None:
        self.data = data
        self.run_id = data["run"]
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for r in reversed(data["runs"]):
            mark = "" if r["evaluated"] else "  (not evaluated)"
            self.run_combo.addItem(f"#{r['id']} · {r['name']}{mark}", r["id"])
        if self.run_id is not None:
            self.run_combo.setCurrentIndex(max(0, self.run_combo.findData(self.run_id)))
        self.run_combo.blockSignals(False)
        report = data["report"]
        self.golden.set_floor(data.get("golden_floor"))
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
        self.golden.set_golden(data.get("golden"))
        golden = data.get("golden") or {}
        self.flag.setText(
            f"⚠ below the golden-set floor ({golden['floor']:.0%})"
            if golden.get("below_floor")
            else ""
        )
        self.pareto.set_points(
            data["points"], data.get("teacher_point"), len(data["unevaluated"]), self.run_id
        )
        self.loaded.emit()

    def _show_report(self, r: dict[str, Any]) -> None:
        c = self.cards
        c["accuracy"].set(
            _pct(r.get("student_accuracy")), f"teacher {_pct(r.get('teacher_accuracy'))}"
        )
        c["agreement"].set(
            _pct(r.get("agreement")), f"KL {r['kl']:.3f}" if r.get("kl") is not None else ""
        )
        c["retention"].set(_pct(r.get("retention")), "student ÷ teacher")
        speed = r.get("speedup")
        c["speedup"].set(
            f"{speed:,.1f}×" if speed else "–",
            f"{_ms(r.get('student_latency_ms_p50'))} vs {_ms(r.get('teacher_latency_ms_p50'))} p50",
        )
        size = r.get("student_size_mb")
        params = r.get("student_params")
        teacher_size = r.get("teacher_size_mb")
        c["size"].set(
            f"{size:,.1f} MB" if size is not None else "–",
            (f"{params / 1e6:,.2f}M params" if params else "")
            + (f" · teacher {teacher_size:,.0f} MB" if teacher_size else ""),
        )
        teacher_cost = r.get("teacher_cost_per_1m_usd")
        best = (r.get("cascade") or {}).get("best")
        c["cost"].set(
            _money(best["cost_per_1m_usd"]) if best else "$0",
            ("best cascade" if best else "student alone, local")
            + f" · teacher {_money(teacher_cost)}",
        )
        n = r.get("n_test", 0)
        self.summary.setText(
            f"vs teacher {r.get('teacher_spec') or '–'} · {n:,} test examples · on "
            f"{r.get('device', '?')}"
        )
        self.reliability.set_report(r)
        self.cascade.set_plan(r.get("cascade"))

    def _run_picked(self, *_args: object) -> None:
        run_id = self.run_combo.currentData()
        if run_id is not None and run_id != self.run_id:
            self.refresh(int(run_id))

    def _theme_changed(self, theme: Theme) -> None:
        for card in (self.reliability, self.cascade, self.pareto):
            _theme_plot(card.widget, theme)
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
        return started

    def _job_done(self, worker: Worker, status: str) -> None:
        self.empty.action.setEnabled(True)
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
        runs = list((self.data or {}).get("unevaluated") or [])
        if not runs:
            return None
        worker = Worker(
            evaluate_runs_job,
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
