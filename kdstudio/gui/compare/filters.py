"""The viewer's filter bar: split, text search, disagreements, sort, right/wrong vs gold, class,
confidence range and the confusion-cell chip (on a row of its own, its label names cut in the
middle to the room there is, so choosing a cell never widens the pane)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from kdstudio.gui.compare.labels import LabelCombo

SORT_CHOICES = (
    ("kl", "KL (teacher ‖ student)"),
    ("margin", "Margin"),
    ("entropy", "Entropy"),
    ("confidence", "Student confidence"),
    ("teacher_confidence", "Teacher confidence"),
    ("id", "Example id"),
)
SPLIT_CHOICES = (
    ("Test set", ("test",)),
    ("Training data", ("train", "unlabeled")),
)
CLEAR_MARK = "  ✕"


class CellChip(QToolButton):
    """The confusion-cell filter as a button that clears it: "student A · teacher B ✕", with the
    two names cut in the middle when the row is narrower than the whole text (the tooltip has
    it whole). It asks for the whole text's width but takes what it gets."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.parts: tuple[str, str, str] = ("", "", "")
        self.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)

    def set_cell(self, student: str, other_kind: str, other: str) -> None:
        self.parts = (student, other_kind, other)
        self.setToolTip(
            f"student {student} · {other_kind} {other}\n"
            "a confusion-matrix cell filters the table; click (or Esc) to clear"
        )
        self.updateGeometry()
        self._fit()

    def full_text(self) -> str:
        student, kind, other = self.parts
        return f"student {student} · {kind} {other}{CLEAR_MARK}"

    def _padding(self) -> int:
        return super().sizeHint().width() - self.fontMetrics().horizontalAdvance(super().text())

    def _fit(self) -> None:
        metrics = self.fontMetrics()
        room = self.width() - self._padding()
        student, kind, other = self.parts
        text = self.full_text()
        if metrics.horizontalAdvance(text) > room:
            fixed = metrics.horizontalAdvance(f"student  · {kind} {CLEAR_MARK}")
            names = max(0, room - fixed)
            wide_s, wide_o = metrics.horizontalAdvance(student), metrics.horizontalAdvance(other)
            # the shorter name whole when it takes at most half; the other gets the rest
            keep_s = wide_s if wide_s <= names // 2 else max(names // 2, names - wide_o)
            keep_o = names - min(keep_s, wide_s)
            mid = Qt.TextElideMode.ElideMiddle
            text = (
                f"student {metrics.elidedText(student, mid, keep_s)} · {kind} "
                f"{metrics.elidedText(other, mid, keep_o)}{CLEAR_MARK}"
            )
        super().setText(text)

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        return QSize(self._padding() + self.fontMetrics().horizontalAdvance(self.full_text()), hint.height())

    def minimumSizeHint(self) -> QSize:
        return QSize(min(160, self.sizeHint().width()), super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()


class FilterBar(QWidget):
    """The viewer's filters and sort; emits ``changed`` (text search after a short pause)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.labels: list[str] = []
        top = QHBoxLayout()
        self.split = QComboBox()
        for title, value in SPLIT_CHOICES:
            self.split.addItem(title, value)
        self.split.setToolTip(
            "Test set: held-out examples, as in the evaluation.\n"
            "Training data: the teacher's answers the student learned from (train and unlabeled):\n"
            "correct the teacher here and the next run learns the corrected label."
        )
        top.addWidget(self.split)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search text…  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        top.addWidget(self.search, 2)
        self.disagreements = QCheckBox("Disagreements only")
        self.disagreements.setToolTip("the student's label differs from the teacher's")
        top.addWidget(self.disagreements)
        top.addWidget(QLabel("Sort"))
        self.sort = QComboBox()
        for key, title in SORT_CHOICES:
            self.sort.addItem(title, key)
        top.addWidget(self.sort)
        self.direction = QToolButton()
        self.direction.setCheckable(True)
        self.direction.setChecked(True)
        self.direction.setToolTip("descending / ascending")
        self.direction.toggled.connect(lambda on: self.direction.setText("↓" if on else "↑"))
        self.direction.setText("↓")
        top.addWidget(self.direction)
        layout.addLayout(top)

        second = QHBoxLayout()
        second.addWidget(QLabel("Student vs gold"))
        self.gold = QComboBox()
        self.gold.addItem("any", None)
        self.gold.addItem("right", "right")
        self.gold.addItem("wrong", "wrong")
        second.addWidget(self.gold)
        second.addWidget(QLabel("Class"))
        self.klass = LabelCombo("the gold label")
        self.klass.setMinimumContentsLength(6)
        self.klass.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.klass.setMaximumWidth(300)
        second.addWidget(self.klass, 3)
        second.addWidget(QLabel("Confidence"))
        self.conf_low, self.conf_high = QDoubleSpinBox(), QDoubleSpinBox()
        for spin, value in ((self.conf_low, 0.0), (self.conf_high, 1.0)):
            spin.setRange(0.0, 1.0)
            spin.setSingleStep(0.05)
            spin.setDecimals(2)
            spin.setValue(value)
            spin.setToolTip("the student's top probability")
            spin.setMaximumWidth(spin.fontMetrics().horizontalAdvance("0.00") + 44)
        second.addWidget(self.conf_low)
        second.addWidget(QLabel("–"))
        second.addWidget(self.conf_high)
        second.addStretch(1)
        layout.addLayout(second)
        self.cell_row = QWidget()
        third = QHBoxLayout(self.cell_row)
        third.setContentsMargins(0, 0, 0, 0)
        third.addWidget(QLabel("Confusion cell"))
        self.cell_chip = CellChip()
        self.cell_chip.setObjectName("cellChip")
        third.addWidget(self.cell_chip)
        third.addStretch(1)
        self.cell_row.hide()
        layout.addWidget(self.cell_row)
        self.cell: tuple[int, int, str] | None = None

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self.changed)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        for signal in (
            self.split.currentIndexChanged,
            self.disagreements.toggled,
            self.sort.currentIndexChanged,
            self.direction.toggled,
            self.gold.currentIndexChanged,
            self.klass.currentIndexChanged,
        ):
            signal.connect(lambda *_a: self.changed.emit())
        self.conf_low.valueChanged.connect(lambda _v: self._debounce.start())
        self.conf_high.valueChanged.connect(lambda _v: self._debounce.start())
        self.cell_chip.clicked.connect(self.clear_cell)

    def set_labels(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.klass.blockSignals(True)
        self.klass.clear()
        self.klass.addItem("any", None)
        for i, name in enumerate(labels):
            self.klass.addItem(name, i)
        self.klass.blockSignals(False)

    def set_cell(self, student: int, other: int, against: str) -> None:
        """Filter to one confusion-matrix cell: the student said ``student`` and the teacher
        (``against="teacher"``) or the gold label (``"gold"``) is ``other``."""
        self.cell = (student, other, against)
        self.cell_chip.set_cell(
            self._name(student), "teacher" if against == "teacher" else "gold", self._name(other)
        )
        self.cell_row.show()
        self.changed.emit()

    def clear_cell(self) -> None:
        if self.cell is not None:
            self.cell = None
            self.cell_row.hide()
            self.changed.emit()

    def reset(self) -> None:
        """Drop every filter but the split (and keep the sort): what "Clear filters" does."""
        widgets = (self.search, self.disagreements, self.gold, self.klass, self.conf_low, self.conf_high)
        for widget in widgets:
            widget.blockSignals(True)
        try:
            self.search.clear()
            self.disagreements.setChecked(False)
            self.gold.setCurrentIndex(0)
            self.klass.setCurrentIndex(0)
            self.conf_low.setValue(0.0)
            self.conf_high.setValue(1.0)
        finally:
            for widget in widgets:
                widget.blockSignals(False)
        self._debounce.stop()
        self.cell = None
        self.cell_row.hide()
        self.changed.emit()

    def _name(self, i: int) -> str:
        return self.labels[i] if 0 <= i < len(self.labels) else str(i)

    def flush(self) -> None:
        """Apply a pending text or confidence change now."""
        if self._debounce.isActive():
            self._debounce.stop()
            self.changed.emit()

    def splits(self) -> list[str]:
        return list(self.split.currentData())

    def filters(self) -> dict[str, Any]:
        f: dict[str, Any] = {"split": self.splits()}
        if self.disagreements.isChecked():
            f["disagreement"] = True
        if self.gold.currentData() is not None:
            f["gold"] = self.gold.currentData()
        if self.klass.currentData() is not None:
            f["gold_label"] = self.klass.currentData()
        low, high = self.conf_low.value(), self.conf_high.value()
        if low > 0.0 or high < 1.0:
            f["confidence"] = (low if low > 0.0 else None, high if high < 1.0 else None)
        if self.search.text().strip():
            f["text"] = self.search.text().strip()
        if self.cell is not None:
            s, x, against = self.cell
            f["student_label"] = s
            f["teacher_label" if against == "teacher" else "gold_label"] = x
        return f

    def sort_key(self) -> tuple[str, bool]:
        return self.sort.currentData(), self.direction.isChecked()


