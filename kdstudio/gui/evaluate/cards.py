"""The cards about one run's evaluation: a big number (:class:`MetricCard`), the reliability
diagram of student and teacher, the cascade slider, and the golden set with its floor. Each draws
a part of a typed :class:`~kdstudio.core.evaluate.result.EvalReport` (or the golden-set score)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QSizePolicy,
    QSlider,
    QWidget,
)

from kdstudio.core.evaluate.cascade import TARGETS
from kdstudio.core.evaluate.dashboard import GoldenScore
from kdstudio.core.evaluate.result import CascadePlan, CascadeRow, EvalReport
from kdstudio.gui.evaluate.plots import (
    LINE_COLOR,
    STUDENT_COLOR,
    TEACHER_COLOR,
    money,
    ms,
    pct,
    plot_widget,
)
from kdstudio.gui.theme import current_theme
from kdstudio.gui.wheel_guard import guard_wheel
from kdstudio.gui.widgets import Card, button, label


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


class ReliabilityCard(Card):
    """Binned confidence against accuracy for student and teacher, with the diagonal."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_.addWidget(label("Reliability", "subheading"))
        self.legend = label("", "muted")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.layout_.addWidget(self.legend)
        self.widget = plot_widget("confidence", "accuracy")
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

    def set_report(self, report: EvalReport) -> None:
        for who, curve in self.curves.items():
            bins = getattr(report.reliability, who) if report.reliability is not None else ()
            rows = [b for b in bins if b.count]
            xs, ys = [b.confidence for b in rows], [b.accuracy for b in rows]
            self.points[who] = (xs, ys)
            curve.setData(xs, ys)
        calibrated = ""
        if report.teacher_ece_calibrated is not None and report.teacher_calibration:
            calibrated = (f" → {report.teacher_ece_calibrated:.3f} calibrated"
                          f" (T {report.teacher_calibration['temperature']:.2f})")
        self.legend.setText(
            f"<span style='color:{TEACHER_COLOR}'>●</span> teacher, ECE {report.teacher_ece or 0:.3f}{calibrated}"
            f" &nbsp; <span style='color:{STUDENT_COLOR}'>●</span> student, ECE {report.student_ece or 0:.3f}"
            " &nbsp; dashed: perfectly calibrated"
        )


def target_text(tolerance: float) -> str:
    """A cascade target in words: ``within 1 point of the teacher``."""
    if tolerance <= 0:
        return "at least the teacher's"
    points = tolerance * 100
    return f"within {points:g} point{'s' if points != 1 else ''} of the teacher's"


class CascadeCard(Card):
    """The student answers first and sends cases under a confidence threshold to the teacher:
    a slider over the report's thresholds shows the share sent, accuracy, cost and time."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        head = QHBoxLayout()
        head.addWidget(label("Cascade: student first, teacher when unsure", "subheading"))
        head.addStretch(1)
        head.addWidget(label("Target", "muted"))
        self.target = QComboBox()
        for tolerance in TARGETS:
            self.target.addItem(target_text(tolerance).removesuffix(" of the teacher's") if tolerance
                                else "the teacher's or better", tolerance)
        self.target.setCurrentIndex(TARGETS.index(0.01))
        self.target.setToolTip("The accuracy the best threshold must keep, against the teacher alone")
        self.target.currentIndexChanged.connect(self._target_changed)
        guard_wheel(self.target)
        head.addWidget(self.target)
        self.best_button = button(
            "Best", "link", tooltip="Go to the threshold that sends the fewest cases to the teacher "
            "while keeping the target accuracy"
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
        self.widget = plot_widget("share sent to the teacher", "accuracy")
        self.widget.setMinimumHeight(150)
        self.plot = self.widget.getPlotItem()
        self.curve = self.plot.plot([], [], pen=pg.mkPen(LINE_COLOR, width=2))
        self.marker = pg.ScatterPlotItem(size=11, brush=pg.mkBrush(STUDENT_COLOR), pen=None)
        self.teacher_line = pg.InfiniteLine(
            angle=0, pen=pg.mkPen(TEACHER_COLOR, style=Qt.PenStyle.DashLine)
        )
        self.plot.addItem(self.teacher_line)
        self.plot.addItem(self.marker)
        self.layout_.addWidget(self.widget, 1)
        self.rows: list[CascadeRow] = []
        self.best_index: int | None = None
        self.plan: CascadePlan | None = None

    def tolerance(self) -> float:
        return float(self.target.currentData())

    def _target_changed(self, _index: int) -> None:
        self._choose_best()
        self.go_to_best()

    def _choose_best(self) -> None:
        """Find the best row for the chosen target and say, in words, by which rule."""
        plan = self.plan
        best = plan.best_within(self.tolerance()) if plan is not None else None
        self.best_index = next(
            (i for i, r in enumerate(self.rows) if best is not None and r.threshold == best.threshold),
            None,
        )
        self.best_button.setEnabled(self.best_index is not None)
        if plan is None or not self.rows:
            self.note.setText("No cascade: the test split has no gold labels or no teacher answers.")
            return
        teacher_acc = plan.teacher_accuracy
        rule = (f"Best = the fewest cases sent to the teacher with accuracy "
                f"{target_text(self.tolerance())} ({pct(teacher_acc)} alone)")
        if best is None:
            self.note.setText(f"{rule}: no threshold gets there.")
            return
        sent = ("the student answers everything" if best.share_to_teacher == 0
                else f"below {best.threshold:.2f} confidence, {best.share_to_teacher:.0%} of cases go to the teacher")
        text = f"{rule}: {sent}, for {pct(best.accuracy)} accuracy."
        top = plan.most_accurate()
        if top is not None and best.accuracy is not None and top.accuracy is not None \
                and top.accuracy > best.accuracy + 1e-9:
            text += (f" The most accurate: {pct(top.accuracy)} with {top.share_to_teacher:.0%} sent "
                     f"({(top.accuracy - best.accuracy) * 100:+.1f} points).")
        self.note.setText(text)

    def set_plan(self, plan: CascadePlan | None) -> None:
        self.plan = plan
        self.rows = list(plan.rows) if plan is not None else []
        self._choose_best()
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(self.rows) - 1))
        self.slider.blockSignals(False)
        self.curve.setData(
            [r.share_to_teacher for r in self.rows],
            [r.accuracy if r.accuracy is not None else 0.0 for r in self.rows],
        )
        teacher_acc = plan.teacher_accuracy if plan is not None else None
        self.teacher_line.setVisible(teacher_acc is not None)
        if teacher_acc is not None:
            self.teacher_line.setValue(teacher_acc)
        start = self.best_index if self.best_index is not None else 0
        self.slider.setValue(start)
        self._moved(start)

    def go_to_best(self) -> None:
        if self.best_index is not None:
            self.slider.setValue(self.best_index)

    def current(self) -> CascadeRow | None:
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
        self.threshold_label.setText(f"confidence < {row.threshold:.2f}")
        self.share.setText(f"{row.share_to_teacher:.1%}")
        self.accuracy.setText(pct(row.accuracy))
        self.cost.setText(money(row.cost_per_1m_usd))
        self.time.setText(ms(row.mean_ms))
        self.marker.setData([row.share_to_teacher], [row.accuracy or 0.0])


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

    def set_golden(self, golden: GoldenScore | None) -> None:
        theme = current_theme()
        empty = golden is None or not golden.n_golden
        self.compare_button.setVisible(empty)
        self.hint.setVisible(not empty)
        if golden is None or empty:
            self.state.setText(
                "<b>No golden examples yet.</b> In the Compare tab, check an example's label, "
                "correct it with <i>Teacher is wrong</i> if needed, and press G: every run is "
                "then scored on the examples a person checked."
            )
            return
        flag = ""
        if golden.below_floor and golden.floor is not None:
            flag = (
                f"<br><b style='color:{theme.danger}'>⚠ Below the floor of {golden.floor:.0%}</b>: "
                "this run does worse than you accept on the examples a person checked."
            )
        elif golden.floor is not None and golden.student_accuracy is not None:
            flag = f"<br><span style='color:{theme.success}'>✓ Above the floor of {golden.floor:.0%}</span>"
        self.state.setText(
            f"student <b>{pct(golden.student_accuracy)}</b> · teacher <b>{pct(golden.teacher_accuracy)}</b>"
            f" on {golden.n_student:,} of {golden.n_golden:,} golden examples{flag}"
        )
