"""The viewer's filter bar: split, text search, disagreements, sort, right/wrong vs gold, class,
confidence range and the confusion-cell chip."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

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

class FilterBar(QWidget):
    """The viewer's filters and sort; emits ``changed`` (text search after a short pause)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
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
        self.klass = QComboBox()
        self.klass.setMinimumContentsLength(10)
        self.klass.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        second.addWidget(self.klass)
        second.addWidget(QLabel("Confidence"))
        self.conf_low, self.conf_high = QDoubleSpinBox(), QDoubleSpinBox()
        for spin, value in ((self.conf_low, 0.0), (self.conf_high, 1.0)):
            spin.setRange(0.0, 1.0)
            spin.setSingleStep(0.05)
            spin.setDecimals(2)
            spin.setValue(value)
            spin.setToolTip("the student's top probability")
        second.addWidget(self.conf_low)
        second.addWidget(QLabel("–"))
        second.addWidget(self.conf_high)
        second.addStretch(1)
        self.cell_chip = QToolButton()
        self.cell_chip.setObjectName("cellChip")
        self.cell_chip.setToolTip(
            "a confusion-matrix cell filters the table; click (or Esc) to clear"
        )
        self.cell_chip.hide()
        second.addWidget(self.cell_chip)
        layout.addLayout(second)
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
        self.klass.blockSignals(True)
        self.klass.clear()
        self.klass.addItem("any", None)
        for i, name in enumerate(labels):
            self.klass.addItem(name, i)
        self.klass.blockSignals(False)

    def set_cell(self, student: int, other: int, against: str, text: str) -> None:
        self.cell = (student, other, against)
        self.cell_chip.setText(f"{text}  ✕")
        self.cell_chip.show()
        self.changed.emit()

    def clear_cell(self) -> None:
        if self.cell is not None:
            self.cell = None
            self.cell_chip.hide()
            self.changed.emit()

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


