"""The generation viewer's table and filter bar: one row per prompt (id, split, score, the prompt,
the student's and the teacher's completions cut to one line, the review marks), lowest score first.

The rows are read once per run (:func:`kdstudio.core.evaluate.compare_generation.prepare_generation_compare`);
the filters, the search and the sort run over them in memory
(:func:`~kdstudio.core.evaluate.compare_generation.query_generation`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.evaluate.compare_generation import (
    GenerationCompareData,
    GenerationFilters,
    GenerationRow,
    excerpt,
    query_generation,
)
from kdstudio.gui.theme import current_theme

#: (key, header, tooltip)
GENERATION_COLUMNS = (
    ("example", "#", "example id"),
    ("split", "Split", "test: held-out prompts, as in the evaluation; valid: the validation prompts"),
    ("score", "Score", "ROUGE-L of the student's completion against the teacher's (else against the references)"),
    ("prompt", "Prompt", "the prompt (hover for all of it)"),
    ("student", "Student", "the student's completion"),
    ("teacher", "Teacher", "the teacher's completion (a person's correction, when there is one, is in the tooltip)"),
    ("review", "Review", "✎ corrected completion · ★ golden · ✕ excluded from training · ✉ note"),
)
SORT_CHOICES = (
    ("score", "Score"),
    ("id", "Example id"),
    ("confidence", "Student log-probability"),
    ("latency_ms", "Student latency"),
)
SPLIT_CHOICES = (("Test set", ("test",)), ("Validation set", ("valid",)), ("Test + validation", ("test", "valid")))
REVIEW_CHOICES = (
    ("any review", None),
    ("reviewed", "reviewed"),
    ("not reviewed", "unreviewed"),
    ("corrected", "corrected"),
    ("golden", "golden"),
    ("excluded", "excluded"),
)
EXCERPT = 90


def review_marks(review: Mapping[str, Any] | None) -> str:
    """The review column: ✎ corrected, ★ golden, ✕ excluded, ✉ note."""
    if not review:
        return ""
    marks = (("✎", review.get("corrected_completion")), ("★", review.get("golden")),
             ("✕", review.get("exclude")), ("✉", review.get("note")))
    return " ".join(mark for mark, on in marks if on)


def score_colour(score: float | None) -> str | None:
    """Red below 0.4, amber below 0.7, green from 0.9 (the theme's colours); None in between."""
    if score is None:
        return None
    theme = current_theme()
    if score < 0.4:
        return theme.danger
    if score < 0.7:
        return theme.warning
    return theme.success if score >= 0.9 else None


class GenerationTableModel(QAbstractTableModel):
    """The rows a query returned, with the reviews they are shown with."""

    query_changed = Signal(int)  # rows shown

    def __init__(self, data: GenerationCompareData, parent: Any = None) -> None:
        super().__init__(parent)
        self.compare_data = data
        self.rows: list[GenerationRow] = []
        self.reviews: dict[int, dict[str, Any]] = {}
        self.filters = GenerationFilters()
        self.sort, self.descending = "score", False
        self.total = 0  # rows of the chosen splits before the other filters
        self.mean_score: float | None = None

    def set_query(self, filters: GenerationFilters, sort: str = "score", descending: bool = False) -> None:
        self.beginResetModel()
        self.filters, self.sort, self.descending = filters, sort, descending
        page = query_generation(self.compare_data, filters, self.reviews, sort=sort, descending=descending)
        self.rows, self.total, self.mean_score = page.rows, page.total, page.mean_score
        self.endResetModel()
        self.query_changed.emit(len(self.rows))

    def refresh_rows(self) -> None:
        """The review column again (after a review was saved); the rows stay where they are."""
        if self.rows:
            column = len(GENERATION_COLUMNS) - 1
            self.dataChanged.emit(self.index(0, column), self.index(len(self.rows) - 1, column))

    def row_at(self, row: int) -> GenerationRow | None:
        return self.rows[row] if 0 <= row < len(self.rows) else None

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(GENERATION_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(GENERATION_COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return GENERATION_COLUMNS[section][1]
        if role == Qt.ItemDataRole.ToolTipRole:
            return GENERATION_COLUMNS[section][2]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = self.row_at(index.row())
        if row is None:
            return None
        key = GENERATION_COLUMNS[index.column()][0]
        review = self.reviews.get(row.example)
        if role == Qt.ItemDataRole.DisplayRole:
            if key == "example":
                return str(row.example)
            if key == "split":
                return row.split
            if key == "score":
                return "–" if row.score is None else f"{row.score:.2f}"
            if key == "review":
                return review_marks(review)
            return excerpt(getattr(row, key), EXCERPT)
        if role == Qt.ItemDataRole.ToolTipRole:
            if key in ("prompt", "student"):
                return getattr(row, key) or ""
            if key == "teacher":
                corrected = (review or {}).get("corrected_completion")
                return (row.teacher or "") + (f"\n\ncorrected to: {corrected}" if corrected else "")
            if key == "review" and review:
                return review.get("note") or None
            return None
        if role == Qt.ItemDataRole.ForegroundRole and key == "score":
            colour = score_colour(row.score)
            return QColor(colour) if colour else None
        if role == Qt.ItemDataRole.TextAlignmentRole and key in ("example", "score"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class GenerationFilterBar(QWidget):
    """Split, search (prompt, completions, references), sort, review marks, score range, worst N;
    emits ``changed`` (typing and the spin boxes after a short pause)."""

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
        self.split.setToolTip("The prompts the run wrote completions for: held out (test) or validation")
        top.addWidget(self.split)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search prompts, completions, references…  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        top.addWidget(self.search, 2)
        top.addWidget(QLabel("Sort"))
        self.sort = QComboBox()
        for key, title in SORT_CHOICES:
            self.sort.addItem(title, key)
        top.addWidget(self.sort)
        self.direction = QToolButton()
        self.direction.setCheckable(True)
        self.direction.setChecked(False)  # ascending: the lowest score first
        self.direction.setToolTip("ascending (lowest first) / descending")
        self.direction.setText("↑")
        top.addWidget(self.direction)
        layout.addLayout(top)

        second = QHBoxLayout()
        self.review = QComboBox()
        for title, value in REVIEW_CHOICES:
            self.review.addItem(title, value)
        self.review.setToolTip("Only prompts with this review mark")
        second.addWidget(self.review)
        second.addWidget(QLabel("Score"))
        self.score_low, self.score_high = QDoubleSpinBox(), QDoubleSpinBox()
        for spin, value in ((self.score_low, 0.0), (self.score_high, 1.0)):
            spin.setRange(0.0, 1.0)
            spin.setSingleStep(0.05)
            spin.setDecimals(2)
            spin.setValue(value)
            spin.setToolTip("the row's score (ROUGE-L vs the teacher, else vs the references)")
            spin.setMaximumWidth(spin.fontMetrics().horizontalAdvance("0.00") + 44)
        second.addWidget(self.score_low)
        second.addWidget(QLabel("–"))
        second.addWidget(self.score_high)
        second.addSpacing(8)
        second.addWidget(QLabel("Worst"))
        self.worst = QSpinBox()
        self.worst.setRange(0, 100000)
        self.worst.setSingleStep(10)
        self.worst.setSpecialValueText("all")
        self.worst.setToolTip("Only the N lowest-scored prompts that pass the other filters")
        second.addWidget(self.worst)
        second.addStretch(1)
        layout.addLayout(second)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self.changed)
        self.search.textChanged.connect(self._later)
        for spin in (self.score_low, self.score_high, self.worst):
            spin.valueChanged.connect(self._later)
        self.direction.toggled.connect(self._direction_toggled)
        for signal in (self.split.currentIndexChanged, self.sort.currentIndexChanged, self.review.currentIndexChanged):
            signal.connect(self._now)

    def _later(self, *_args: object) -> None:
        self._debounce.start()

    def _now(self, *_args: object) -> None:
        self.changed.emit()

    def _direction_toggled(self, descending: bool) -> None:
        self.direction.setText("↓" if descending else "↑")
        self.changed.emit()

    def flush(self) -> None:
        """Apply a pending search or spin-box change now."""
        if self._debounce.isActive():
            self._debounce.stop()
            self.changed.emit()

    def reset(self) -> None:
        """Drop every filter but the split (keep the sort): what "Clear filters" does."""
        widgets = (self.search, self.review, self.score_low, self.score_high, self.worst)
        for widget in widgets:
            widget.blockSignals(True)
        try:
            self.search.clear()
            self.review.setCurrentIndex(0)
            self.score_low.setValue(0.0)
            self.score_high.setValue(1.0)
            self.worst.setValue(0)
        finally:
            for widget in widgets:
                widget.blockSignals(False)
        self._debounce.stop()
        self.changed.emit()

    def splits(self) -> tuple[str, ...]:
        return tuple(self.split.currentData())

    def filters(self) -> GenerationFilters:
        low, high = self.score_low.value(), self.score_high.value()
        score = (low if low > 0.0 else None, high if high < 1.0 else None) if low > 0.0 or high < 1.0 else None
        return GenerationFilters(
            splits=self.splits(),
            text=self.search.text().strip() or None,
            score=score,
            worst=self.worst.value() or None,
            review=self.review.currentData(),
        )

    def is_default(self) -> bool:
        """No filter but the split."""
        return self.filters() == GenerationFilters(splits=self.splits())

    def sort_key(self) -> tuple[str, bool]:
        return self.sort.currentData(), self.direction.isChecked()


__all__ = ["GENERATION_COLUMNS", "GenerationFilterBar", "GenerationTableModel", "review_marks", "score_colour"]
