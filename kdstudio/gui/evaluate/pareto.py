"""Accuracy against latency across the project's evaluated runs, with the Pareto frontier: the runs
worth keeping. Its buttons start the size sweep and evaluate the runs that have no report yet."""

from __future__ import annotations

from collections.abc import Sequence

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QWidget

from kdstudio.core.evaluate.dashboard import ParetoPoint, TeacherPoint
from kdstudio.gui.evaluate.plots import LINE_COLOR, STUDENT_COLOR, TEACHER_COLOR, plot_widget
from kdstudio.gui.theme import current_theme
from kdstudio.gui.widgets import Card, button, label


class ParetoCard(Card):
    """Accuracy against latency across the project's evaluated runs; the frontier joins the runs
    worth keeping."""

    sweep_requested = Signal()
    evaluate_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        head = QHBoxLayout()
        self.title = label("Accuracy vs latency across runs", "subheading")
        head.addWidget(self.title)
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
        self.widget = plot_widget("latency p50 (ms, batch 1)", "test accuracy")
        self.plot = self.widget.getPlotItem()
        self.frontier = self.plot.plot([], [], pen=pg.mkPen(LINE_COLOR, width=2))
        self.scatter = pg.ScatterPlotItem(size=11, pen=None)
        self.teacher = pg.ScatterPlotItem(
            size=13, symbol="star", pen=None, brush=pg.mkBrush(TEACHER_COLOR)
        )
        self.plot.addItem(self.scatter)
        self.plot.addItem(self.teacher)
        self.texts: list[pg.TextItem] = []
        self.layout_.addWidget(self.widget, 1)
        self.points: list[ParetoPoint] = []

    def set_points(
        self,
        points: Sequence[ParetoPoint],
        teacher: TeacherPoint | None,
        unevaluated: int,
        current: int | None,
        quality_name: str = "accuracy",
    ) -> None:
        """``quality_name``: what a point's height is (``DashboardData.quality_name``: accuracy, or a
        generation run's ROUGE-L)."""
        theme = current_theme()
        self.title.setText(f"{quality_name[0].upper()}{quality_name[1:]} vs latency across runs")
        self.plot.setLabel("left", f"test {quality_name}")
        self.points = list(points)
        for t in self.texts:
            self.plot.removeItem(t)
        self.texts = []
        shown = [p for p in points if p.plotted]
        spots = []
        for p in shown:
            colour = STUDENT_COLOR if p.frontier else theme.muted
            spots.append(
                {
                    "pos": (p.latency_ms, p.accuracy),
                    "brush": pg.mkBrush(colour),
                    "size": 14 if p.run == current else 10,
                    "data": p.run,
                    "symbol": "o" if p.frontier else "t",
                }
            )
            text = pg.TextItem(f"#{p.run} {p.student}", color=theme.plot_fg, anchor=(0, 1.1))
            text.setPos(p.latency_ms, p.accuracy)
            self.plot.addItem(text)
            self.texts.append(text)
        self.scatter.setData(spots)
        front = sorted((p for p in shown if p.frontier), key=lambda p: p.latency_ms)
        self.frontier.setData([p.latency_ms for p in front], [p.accuracy for p in front])
        teacher_xy = (
            [(teacher.latency_ms, teacher.accuracy)]
            if teacher is not None and teacher.accuracy is not None
            else []
        )
        if teacher is not None and teacher_xy:
            self.teacher.setData([teacher.latency_ms], [teacher.accuracy])
            text = pg.TextItem(teacher.name, color=theme.plot_fg, anchor=(1, 1.1))
            text.setPos(teacher.latency_ms, teacher.accuracy)
            self.plot.addItem(text)
            self.texts.append(text)
        else:
            self.teacher.setData([], [])
        keep = ", ".join(f"#{p.run} {p.student}" for p in front)
        bits = [
            f"Worth keeping (no run is both faster and {'more accurate' if quality_name == 'accuracy' else 'better'})"
            f": {keep}."
            if keep
            else "No evaluated run has a latency yet."
        ]
        if unevaluated:
            bits.append(
                f"{unevaluated} finished run{'s' if unevaluated > 1 else ''} not evaluated yet."
            )
        self.note.setText(" ".join(bits))
        self.evaluate_button.setVisible(bool(unevaluated))
        xs = [p.latency_ms for p in shown] + [x for x, _ in teacher_xy]
        ys = [p.accuracy for p in shown] + [y for _, y in teacher_xy]
        if xs:
            x0, x1 = min(xs), max(xs)
            y0, y1 = min(ys), max(ys)
            xspan = max(x1 - x0, x1 * 0.5, 0.1)
            yspan = max(y1 - y0, 0.04)
            self.plot.setXRange(max(0.0, x0 - 0.15 * xspan), x1 + 0.3 * xspan, padding=0)
            self.plot.setYRange(
                y0 - 0.2 * yspan, min(1.0, y1 + 0.25 * yspan) if y1 < 1 else 1.02, padding=0
            )
