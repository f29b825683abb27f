"""The comparison viewer: a run's test predictions beside the teacher's answers.

A table on a Qt model that pages from SQLite (``Project.compare_page``), so a run with 100,000
test rows opens at once; filters and sorting are SQL, answered in milliseconds. Beside it the
confusion matrix student × teacher (or × gold) as a heatmap whose cells filter the table, and a
detail pane with the text, the teacher's and the student's probability bars side by side, the
teacher's rationale, the gold label and the person's review (corrected label, exclude, golden).

Keyboard: ↑/↓ (or J/K) move through the rows, Ctrl+F searches, Esc clears the cell filter,
X toggles "exclude", G toggles "golden", C jumps to the corrected-label box, Ctrl+E exports.
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRectF,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QKeySequence, QMouseEvent, QPainter, QPaintEvent, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.evaluate.compare import CompareData, CompareFilters, prepare_compare
from kdstudio.core.export.compare import CompareExportConfig, export_compare, export_format, write_rows
from kdstudio.gui.theme import ThemeManager, current_theme
from kdstudio.gui.widgets import Card, EmptyState, button, label
from kdstudio.gui.worker import Worker

PAGE_SIZE = 200
MAX_PAGES = 64  # pages kept in memory (LRU): 12,800 rows
ROW_ROLE = Qt.ItemDataRole.UserRole + 1

#: (key, header, store sort key or None). The store's sorts: kl, margin, entropy, confidence,
#: teacher_confidence, id.
COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("example", "#", "id"),
    ("text", "Text", None),
    ("gold", "Gold", None),
    ("teacher_label", "Teacher", None),
    ("teacher_confidence", "T conf", "teacher_confidence"),
    ("student_label", "Student", None),
    ("confidence", "S conf", "confidence"),
    ("kl", "KL", "kl"),
    ("margin", "Margin", "margin"),
    ("entropy", "Entropy", "entropy"),
    ("review", "Review", None),
)
SORT_CHOICES = (
    ("kl", "KL (teacher ‖ student)"),
    ("margin", "Margin"),
    ("entropy", "Entropy"),
    ("confidence", "Student confidence"),
    ("teacher_confidence", "Teacher confidence"),
    ("id", "Example id"),
)
# -- the table model ------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


SPLIT_CHOICES = (
    ("Test set", ("test",)),
    ("Training data", ("train", "unlabeled")),
)

class CompareTableModel(QAbstractTableModel):
    """Rows of ``Project.compare_page`` for one (run, teacher), fetched a page at a time as the
    view scrolls; ``set_query`` changes filters and sort (one count, one page)."""

    query_changed = Signal(int)

    def __init__(
        self,
        project: Any,
        run_id: int,
        teacher_id: int | None,
        labels: Sequence[str],
        *,
        page_size: int = PAGE_SIZE,
        parent: Any = None,
    ) -> None:
        super().__init__(parent)
        self.project, self.run_id, self.teacher_id = project, run_id, teacher_id
        self.labels = list(labels)
        self.page_size = page_size
        self.filters: dict[str, Any] = {}
        self.sort_key, self.descending = "kl", True
        self.total = 0
        self.reviews: dict[int, dict[str, Any]] = {}
        self._pages: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()

    # -- queries ----------------------------------------------------------------------------------
    def set_query(
        self,
        filters: dict[str, Any] | None = None,
        sort: str | None = None,
        descending: bool | None = None,
    ) -> int:
        """Apply filters and sort; returns the number of matching rows."""
        self.beginResetModel()
        self.filters = {
            k: v
            for k, v in (filters if filters is not None else self.filters).items()
            if v is not None
        }
        if sort is not None:
            self.sort_key = sort
        if descending is not None:
            self.descending = descending
        self._pages.clear()
        rows, total = self.project.compare_page(
            self.run_id,
            self.teacher_id,
            filters=self.filters,
            sort=self.sort_key,
            descending=self.descending,
            offset=0,
            limit=self.page_size,
        )
        self.total = int(total or 0)
        self._pages[0] = rows
        self.endResetModel()
        self.query_changed.emit(self.total)
        return self.total

    def refresh_rows(self) -> None:
        """Read the cached pages again (after a review changed) without moving the view."""
        self._pages.clear()
        if self.total:
            self.dataChanged.emit(self.index(0, 0), self.index(self.total - 1, len(COLUMNS) - 1))

    def _page(self, number: int) -> list[dict[str, Any]]:
        page = self._pages.get(number)
        if page is None:
            page, _ = self.project.compare_page(
                self.run_id,
                self.teacher_id,
                filters=self.filters,
                sort=self.sort_key,
                descending=self.descending,
                offset=number * self.page_size,
                limit=self.page_size,
                with_total=False,
            )
            self._pages[number] = page
            while len(self._pages) > MAX_PAGES:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(number)
        return page

    def row_at(self, row: int) -> dict[str, Any] | None:
        if not 0 <= row < self.total:
            return None
        page = self._page(row // self.page_size)
        i = row % self.page_size
        return page[i] if i < len(page) else None

    def rows(self, rows: Sequence[int]) -> list[dict[str, Any]]:
        return [r for r in (self.row_at(i) for i in rows) if r is not None]

    def label_name(self, label_id: int | None) -> str:
        if label_id is None:
            return "–"
        return self.labels[label_id] if 0 <= label_id < len(self.labels) else str(label_id)

    # -- Qt model ---------------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else self.total

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(COLUMNS):
            key, title, sort = COLUMNS[section]
            if role == Qt.ItemDataRole.DisplayRole:
                return title
            if role == Qt.ItemDataRole.ToolTipRole:
                return {
                    "kl": "KL(teacher ‖ student) of this example; click to sort",
                    "margin": "student's top probability minus its second; click to sort",
                    "entropy": "entropy of the student's probabilities; click to sort",
                    "confidence": "the student's top probability; click to sort",
                    "teacher_confidence": "the teacher's top probability; click to sort",
                    "review": "C: corrected label · X: excluded · G: golden",
                }.get(key, "click to sort" if sort else None)
        return None

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid():
            return None
        row = self.row_at(index.row())
        if row is None:
            return None
        key = COLUMNS[index.column()][0]
        if role == ROW_ROLE:
            return row
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, key)
        if role == Qt.ItemDataRole.ToolTipRole and key == "text":
            return row["text"]
        if role == Qt.ItemDataRole.TextAlignmentRole and key not in (
            "text",
            "gold",
            "teacher_label",
            "student_label",
            "review",
        ):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            theme = current_theme()
            disagree = (
                row["teacher_label"] is not None
                and row["student_label"] is not None
                and row["teacher_label"] != row["student_label"]
            )
            if key == "student_label" and disagree:
                return QColor(theme.danger)
            if (
                key == "student_label"
                and row["gold"] is not None
                and row["student_label"] == row["gold"]
            ):
                return QColor(theme.success)
            if (
                key == "teacher_label"
                and row["gold"] is not None
                and row["teacher_label"] is not None
                and row["teacher_label"] != row["gold"]
            ):
                return QColor(theme.warning)
            if key == "example":
                return QColor(theme.muted)
        if role == Qt.ItemDataRole.FontRole and key == "review" and self._review_text(row):
            font = QFont()
            font.setBold(True)
            return font
        return None

    def _review_text(self, row: dict[str, Any]) -> str:
        review = self.reviews.get(row["example"]) or {}
        marks = []
        if row.get("corrected_label") is not None:
            marks.append("→ " + self.label_name(row["corrected_label"]))
        if review.get("exclude"):
            marks.append("excluded")
        if review.get("golden"):
            marks.append("★")
        return " ".join(marks)

    def _display(self, row: dict[str, Any], key: str) -> str:
        if key == "example":
            return str(row["example"])
        if key == "text":
            text = row["text"] or ""
            return text if len(text) <= 160 else text[:157] + "…"
        if key in ("gold", "teacher_label", "student_label"):
            return self.label_name(row[key])
        if key == "review":
            return self._review_text(row)
        if key in ("confidence", "teacher_confidence", "margin"):
            return _fmt(row[key], 2)
        return _fmt(row[key], 3)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Header clicks: sort by the column when the store can (KL, margin, entropy, confidences, id)."""
        if not 0 <= column < len(COLUMNS):
            return
        key = COLUMNS[column][2]
        if key is None:
            return
        self.set_query(sort=key, descending=order == Qt.SortOrder.DescendingOrder)


# -- the heatmap ------------------------------------------------------------------------------------


class ConfusionHeatmap(QWidget):
    """A clickable confusion matrix: rows are the student's label, columns the teacher's (or
    gold). A click emits ``cell_clicked(student, other)``; hovering tells the count."""

    cell_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.matrix: list[list[int]] = []
        self.labels: list[str] = []
        self.against = "teacher"
        self.selected: tuple[int, int] | None = None
        self.setMouseTracking(True)
        self.setMinimumSize(220, 220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        ThemeManager.instance().theme_changed.connect(self._theme_changed)

    def _theme_changed(self, _theme: object) -> None:
        self.update()

    def set_matrix(self, matrix: list[list[int]], labels: Sequence[str], against: str) -> None:
        self.matrix, self.labels, self.against = matrix, list(labels), against
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(320, 320)

    def _geometry(self) -> tuple[float, float, float]:
        """(left, top, cell size) of the grid."""
        n = max(1, len(self.matrix))
        show_names = n <= 12
        margin = 86.0 if show_names else 28.0
        top = 22.0
        side = max(
            1.0, min(self.width() - margin - 8, self.height() - top - (70 if show_names else 28))
        )
        left = margin + max(0.0, (self.width() - margin - 8 - side) / 2)
        return left, top, side / n

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        n = len(self.matrix)
        if not n:
            return None
        left, top, cell = self._geometry()
        col, row = int((pos.x() - left) // cell), int((pos.y() - top) // cell)
        if 0 <= row < n and 0 <= col < n and pos.x() >= left and pos.y() >= top:
            return row, col
        return None

    def cell_center(self, student: int, other: int) -> QPoint:
        left, top, cell = self._geometry()
        return QPoint(int(left + (other + 0.5) * cell), int(top + (student + 0.5) * cell))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell is None:
            self.setToolTip("")
            return
        s, x = cell
        name = "teacher" if self.against == "teacher" else "gold"
        self.setToolTip(
            f"student {self._name(s)} · {name} {self._name(x)}: {self.matrix[s][x]:,} examples\n"
            "click to show them"
        )

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            cell = self.cell_at(event.position().toPoint())
            if cell is not None:
                self.selected = cell
                self.update()
                self.cell_clicked.emit(*cell)

    def _name(self, i: int) -> str:
        return self.labels[i] if 0 <= i < len(self.labels) else str(i)

    def paintEvent(self, event: QPaintEvent) -> None:
        theme = current_theme()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        n = len(self.matrix)
        if not n:
            p.setPen(QColor(theme.muted))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No predictions")
            return
        left, top, cell = self._geometry()
        peak = max((v for r in self.matrix for v in r), default=0) or 1
        accent, danger = QColor(theme.accent), QColor(theme.danger)
        base = QColor(theme.surface_alt)
        for s in range(n):
            for x in range(n):
                value = self.matrix[s][x]
                t = math.log1p(value) / math.log1p(peak) if value else 0.0
                hue = accent if s == x else danger
                colour = QColor(
                    round(base.red() + (hue.red() - base.red()) * t),
                    round(base.green() + (hue.green() - base.green()) * t),
                    round(base.blue() + (hue.blue() - base.blue()) * t),
                )
                rect = QRectF(left + x * cell, top + s * cell, cell, cell)
                p.fillRect(
                    rect.adjusted(0, 0, -1 if cell > 6 else 0, -1 if cell > 6 else 0), colour
                )
                if cell >= 26 and value:
                    p.setPen(QColor(theme.accent_text) if t > 0.55 else QColor(theme.text))
                    p.drawText(rect, Qt.AlignmentFlag.AlignCenter, f"{value:,}")
        if self.selected is not None:
            s, x = self.selected
            if s < n and x < n:
                p.setPen(QColor(theme.text))
                p.drawRect(
                    QRectF(left + x * cell, top + s * cell, cell, cell).adjusted(0, 0, -1, -1)
                )
        p.setPen(QColor(theme.muted))
        small = QFont(self.font())
        small.setPointSizeF(max(7.0, small.pointSizeF() - 1.5))
        p.setFont(small)
        other = "teacher" if self.against == "teacher" else "gold"
        p.drawText(QRectF(left, 0, n * cell, top - 4), Qt.AlignmentFlag.AlignCenter, f"{other} →")
        if n <= 12:
            for i in range(n):
                p.drawText(
                    QRectF(left - 90, top + i * cell, 84, cell),
                    Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                    self._name(i)[:12],
                )
                p.save()
                p.translate(left + (i + 0.5) * cell, top + n * cell + 6)
                p.rotate(-40)
                p.drawText(
                    QRectF(-80, -8, 80, 16),
                    Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                    self._name(i)[:12],
                )
                p.restore()
        p.save()
        p.translate(left - (96 if n <= 12 else 18), top + n * cell / 2)
        p.rotate(-90)
        p.drawText(QRectF(-60, -8, 120, 16), Qt.AlignmentFlag.AlignCenter, "← student")
        p.restore()


# -- the probability bars ------------------------------------------------------------------------


class ProbabilityBars(QWidget):
    """The teacher's and the student's probabilities side by side for the labels that matter:
    the top labels of either (at most ``top``), sorted by the teacher's probability."""

    def __init__(self, top: int = 6, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.top = top
        self.items: list[tuple[str, float, float, bool]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        ThemeManager.instance().theme_changed.connect(self._theme_changed)

    def _theme_changed(self, _theme: object) -> None:
        self.update()

    def set_probs(
        self,
        labels: Sequence[str],
        teacher: Sequence[float] | None,
        student: Sequence[float] | None,
        gold: int | None = None,
    ) -> None:
        t = list(teacher or [0.0] * len(labels))
        s = list(student or [0.0] * len(labels))
        by_t = sorted(range(len(labels)), key=lambda i: -t[i])[: self.top]
        by_s = sorted(range(len(labels)), key=lambda i: -s[i])[: self.top]
        keep = sorted(
            set(by_t[:4]) | set(by_s[:3]) | ({gold} if gold is not None else set()),
            key=lambda i: (-t[i], -s[i]),
        )[: max(self.top, 1)]
        self.items = [(labels[i], float(t[i]), float(s[i]), i == gold) for i in keep]
        self.setFixedHeight(24 + 26 * len(self.items))
        self.update()

    def values(self) -> list[tuple[str, float, float]]:
        """(label, teacher probability, student probability) rows as drawn."""
        return [(name, t, s) for name, t, s, _ in self.items]

    def paintEvent(self, event: QPaintEvent) -> None:
        theme = current_theme()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        name_w = min(170.0, self.width() * 0.36)
        value_w = 44.0
        bar_w = max(20.0, self.width() - name_w - value_w - 12)
        teacher_c, student_c = QColor(theme.accent), QColor("#f97316")
        small = QFont(self.font())
        small.setPointSizeF(max(7.0, small.pointSizeF() - 1))
        p.setFont(small)
        # legend
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(teacher_c)
        p.drawRoundedRect(QRectF(name_w, 4, 10, 10), 2, 2)
        p.setBrush(student_c)
        p.drawRoundedRect(QRectF(name_w + 80, 4, 10, 10), 2, 2)
        p.setPen(QColor(theme.muted))
        p.drawText(QRectF(name_w + 14, 0, 66, 18), Qt.AlignmentFlag.AlignVCenter, "teacher")
        p.drawText(QRectF(name_w + 94, 0, 66, 18), Qt.AlignmentFlag.AlignVCenter, "student")
        for row, (name, t, s, is_gold) in enumerate(self.items):
            y = 24 + row * 26
            p.setPen(QColor(theme.text))
            text = ("★ " if is_gold else "") + name
            p.drawText(
                QRectF(0, y, name_w - 8, 22),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                p.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, int(name_w - 8)),
            )
            for k, (value, colour) in enumerate(((t, teacher_c), (s, student_c))):
                top = y + 1 + k * 11
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(QColor(theme.surface_alt))
                p.drawRoundedRect(QRectF(name_w, top, bar_w, 9), 3, 3)
                p.setBrush(colour)
                p.drawRoundedRect(QRectF(name_w, top, max(2.0, bar_w * value), 9), 3, 3)
            p.setPen(QColor(theme.muted))
            p.drawText(
                QRectF(name_w + bar_w + 4, y - 2, value_w + 8, 13),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"{t:.2f}",
            )
            p.drawText(
                QRectF(name_w + bar_w + 4, y + 9, value_w + 8, 13),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"{s:.2f}",
            )


# -- the detail pane --------------------------------------------------------------------------------


class DetailPane(QWidget):
    """One example: text, gold, both answers as bars, the teacher's rationale and the review."""

    review_changed = Signal(int, object)  # example, review dict (None: cleared)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.row: dict[str, Any] | None = None
        self.labels: list[str] = []
        self.review: dict[str, Any] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        self.title = label("Pick an example", "subheading")
        self.meta = label("", "muted", wrap=True)
        self.text = label("", wrap=True)
        self.text.setObjectName("exampleText")
        self.bars = ProbabilityBars()
        self.rationale_title = label("Teacher's rationale", "muted")
        self.rationale = label("", wrap=True)
        layout.addWidget(self.title)
        layout.addWidget(self.meta)
        layout.addWidget(self.text)
        layout.addWidget(self.bars)
        layout.addWidget(self.rationale_title)
        layout.addWidget(self.rationale)

        review = QFrame()
        review.setObjectName("banner")
        box = QVBoxLayout(review)
        box.setContentsMargins(10, 8, 10, 8)
        box.setSpacing(6)
        box.addWidget(label("Review", "subheading"))
        row = QHBoxLayout()
        row.addWidget(QLabel("Correct label:"))
        self.correct_combo = QComboBox()
        self.correct_combo.setToolTip("C: the label this example really has")
        self.correct_combo.setMinimumContentsLength(8)
        self.correct_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        row.addWidget(self.correct_combo, 1)
        box.addLayout(row)
        row = QHBoxLayout()
        self.correct_button = button(
            "Teacher is wrong → use this label",
            "primary",
            tooltip="Store the corrected label; the next training run uses it "
            "instead of the teacher's answer",
        )
        self.correct_button.clicked.connect(self.apply_correction)
        row.addWidget(self.correct_button)
        row.addStretch(1)
        box.addLayout(row)
        flags = QHBoxLayout()
        self.exclude_box = QCheckBox("Exclude from training")
        self.exclude_box.setToolTip("X: the next training run leaves this example out")
        self.golden_box = QCheckBox("Golden (checked)")
        self.golden_box.setToolTip("G: part of the golden set the dashboard scores runs on")
        self.exclude_box.toggled.connect(lambda on: self._set(exclude=on))
        self.golden_box.toggled.connect(lambda on: self._set(golden=on))
        flags.addWidget(self.exclude_box)
        flags.addWidget(self.golden_box)
        flags.addStretch(1)
        box.addLayout(flags)
        state = QHBoxLayout()
        self.review_state = label("", "muted", wrap=True)
        state.addWidget(self.review_state, 1)
        self.clear_button = button("Clear review", "link")
        self.clear_button.clicked.connect(self.clear_review)
        state.addWidget(self.clear_button)
        box.addLayout(state)
        layout.addWidget(review)
        layout.addStretch(1)
        self._loading = False
        self.set_row(None, [], None, None)

    def set_row(
        self,
        row: dict[str, Any] | None,
        labels: Sequence[str],
        review: dict[str, Any] | None,
        rationale: str | None,
    ) -> None:
        self._loading = True
        try:
            self.row, self.labels = row, list(labels)
            self.review = dict(review or {})
            enabled = row is not None
            for w in (
                self.correct_combo,
                self.correct_button,
                self.exclude_box,
                self.golden_box,
                self.clear_button,
            ):
                w.setEnabled(enabled)
            if row is None:
                self.title.setText("Pick an example")
                self.meta.setText("Select a row to see both answers side by side.")
                self.text.setText("")
                self.bars.set_probs([], None, None)
                self.rationale_title.hide()
                self.rationale.hide()
                self.review_state.setText("")
                self.exclude_box.setChecked(False)
                self.golden_box.setChecked(False)
                return

            def name(i: int | None) -> str:
                return labels[i] if i is not None and 0 <= i < len(labels) else "–"

            self.title.setText(f"Example #{row['example']}")
            parts = [
                f"gold: <b>{name(row['gold'])}</b>" if row["gold"] is not None else "no gold label",
                f"teacher: <b>{name(row['teacher_label'])}</b> ({_fmt(row['teacher_confidence'], 2)})",
                f"student: <b>{name(row['student_label'])}</b> ({_fmt(row['confidence'], 2)})",
                f"KL {_fmt(row['kl'], 3)}",
            ]
            self.meta.setText(" · ".join(parts))
            self.meta.setTextFormat(Qt.TextFormat.RichText)
            self.text.setText(row["text"] or "")
            self.bars.set_probs(
                labels, row.get("teacher_probs"), row.get("student_probs"), row["gold"]
            )
            self.rationale.setText(rationale or "")
            self.rationale_title.setVisible(bool(rationale))
            self.rationale.setVisible(bool(rationale))
            if self.correct_combo.count() != len(labels):
                self.correct_combo.clear()
                self.correct_combo.addItems(list(labels))
            corrected = self.review.get("corrected_label")
            default = (
                corrected
                if corrected is not None
                else (row["gold"] if row["gold"] is not None else row["student_label"])
            )
            if default is not None:
                self.correct_combo.setCurrentIndex(int(default))
            self.exclude_box.setChecked(bool(self.review.get("exclude")))
            self.golden_box.setChecked(bool(self.review.get("golden")))
            self._show_review_state()
        finally:
            self._loading = False

    def _show_review_state(self) -> None:
        r = self.review
        bits = []
        if r.get("corrected_label") is not None:
            lab = r["corrected_label"]
            bits.append(f"corrected to {self.labels[lab] if 0 <= lab < len(self.labels) else lab}")
        if r.get("exclude"):
            bits.append("left out of training")
        if r.get("golden"):
            bits.append("in the golden set")
        self.review_state.setText(
            ("Reviewed: " + ", ".join(bits) + ".") if bits else "Not reviewed."
        )

    def apply_correction(self) -> None:
        if self.row is None or self.correct_combo.currentIndex() < 0:
            return
        self._set(corrected_label=self.correct_combo.currentIndex())

    def _set(self, **changes: Any) -> None:
        if self._loading or self.row is None:
            return
        self.review = {
            "corrected_label": None,
            "exclude": False,
            "golden": False,
            "note": None,
            **self.review,
            **changes,
        }
        self._show_review_state()
        self.review_changed.emit(self.row["example"], dict(self.review))

    def clear_review(self) -> None:
        if self.row is None:
            return
        self.review = {}
        self._loading = True
        self.exclude_box.setChecked(False)
        self.golden_box.setChecked(False)
        self._loading = False
        self._show_review_state()
        self.review_changed.emit(self.row["example"], None)


# -- the viewer -------------------------------------------------------------------------------------


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


class ComparisonViewer(QWidget):
    """The Compare tab: pick a run, filter and sort its test rows, inspect and review examples."""

    review_saved = Signal(int)
    tab_requested = Signal(str)  # "training": no finished run to compare yet

    def __init__(
        self, project_path: str | Path, project: Any = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        from kdstudio.core.store import Project

        self.project_path = Path(project_path)
        self._own_project = project is None
        self.project = project if project is not None else Project(self.project_path)
        self.labels: list[str] = []
        self.model: CompareTableModel | None = None
        self.run_id: int | None = None
        self.teacher_id: int | None = None
        self.rationales: dict[int, str] = {}
        self.reviews: dict[int, dict[str, Any]] = {}
        self._workers: list[Worker] = []
        self._all_rows: int | None = None

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.stack = QStackedWidget()
        outer.addWidget(self.stack)
        self.empty = EmptyState(
            "No finished run to compare yet",
            "Train a student first. When its run finishes, this tab shows every test example "
            "with the teacher's and the student's answers and where they disagree; review an "
            "example here (Teacher is wrong, X to exclude, G for golden) and the next run learns "
            "from it.",
            "Train a student",
            on_action=lambda: self.tab_requested.emit("training"),
        )
        self.stack.addWidget(self.empty)

        page = QWidget()
        root = QVBoxLayout(page)
        root.setContentsMargins(20, 12, 20, 12)
        root.setSpacing(10)
        head = QHBoxLayout()
        head.addWidget(label("Run", "subheading"))
        self.run_combo = QComboBox()
        self.run_combo.setMinimumContentsLength(24)
        self.run_combo.currentIndexChanged.connect(self._run_picked)
        head.addWidget(self.run_combo)
        self.teacher_label = label("", "muted")
        head.addWidget(self.teacher_label)
        head.addStretch(1)
        self.count_label = label("", "muted")
        head.addWidget(self.count_label)
        self.export_button = button(
            "Export…",
            tooltip="Export the selected rows (or, with none selected, "
            "every row the filters show) as CSV or JSON Lines (Ctrl+E)",
        )
        self.export_button.clicked.connect(self.ask_export)
        head.addWidget(self.export_button)
        root.addLayout(head)

        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.setSpacing(8)
        self.filter_bar = FilterBar()
        self.filter_bar.changed.connect(self.apply_filters)
        lv.addWidget(self.filter_bar)
        self.table = QTableView()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(26)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.horizontalHeader().sectionClicked.connect(self._header_clicked)
        lv.addWidget(self.table, 1)
        split.addWidget(left)

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.setSpacing(10)
        heat_card = Card()
        heat_head = QHBoxLayout()
        heat_head.addWidget(label("Confusion", "subheading"))
        heat_head.addStretch(1)
        self.against = QComboBox()
        self.against.addItem("student × teacher", "teacher")
        self.against.addItem("student × gold", "gold")
        self.against.currentIndexChanged.connect(lambda _i: self.refresh_heatmap())
        heat_head.addWidget(self.against)
        heat_card.layout_.addLayout(heat_head)
        self.heatmap = ConfusionHeatmap()
        self.heatmap.cell_clicked.connect(self.filter_cell)
        heat_card.layout_.addWidget(self.heatmap, 1)
        rv.addWidget(heat_card, 4)
        detail_card = Card()
        self.detail = DetailPane()
        self.detail.review_changed.connect(self.save_review)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.detail)
        detail_card.layout_.addWidget(scroll)
        rv.addWidget(detail_card, 6)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([860, 380])
        root.addWidget(split, 1)
        self.stack.addWidget(page)
        self.page = page

        shortcuts = (
            ("Ctrl+F", lambda: self.filter_bar.search.setFocus()),
            ("Escape", self.filter_bar.clear_cell),
            ("J", lambda: self.move(1)),
            ("K", lambda: self.move(-1)),
            ("X", lambda: self.detail.exclude_box.toggle()),
            ("G", lambda: self.detail.golden_box.toggle()),
            ("C", lambda: self.detail.correct_combo.setFocus()),
            ("Ctrl+E", self.ask_export),
        )
        for keys, slot in shortcuts:
            shortcut = QShortcut(QKeySequence(keys), page)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
        self.refresh()

    # -- runs ---------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the list of runs (after training or evaluation) and keep the current one."""
        runs = [r for r in self.project.runs() if r["status"] == "finished"]
        self.labels = self.project.labels()
        self.filter_bar.set_labels(self.labels)
        current = self.run_id
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for r in reversed(runs):
            self.run_combo.addItem(f"#{r['id']} · {r.get('name') or r['student']}", r["id"])
        self.run_combo.blockSignals(False)
        if not runs:
            self.stack.setCurrentWidget(self.empty)
            return
        self.stack.setCurrentWidget(self.page)
        index = self.run_combo.findData(current if current is not None else self.project.preferred_run())
        self.run_combo.setCurrentIndex(max(index, 0))
        if current is None or index < 0:
            self._run_picked()

    def _run_picked(self, *_args: object) -> None:
        run_id = self.run_combo.currentData()
        if run_id is not None and run_id != self.run_id:
            self.open_run(int(run_id))

    def open_run(self, run_id: int) -> None:
        """Show run ``run_id``: the table is prepared off the Qt thread, then the first page shows."""
        self.run_id = run_id
        self.count_label.setText("Loading…")
        worker = Worker(
            prepare_compare,
            str(self.project_path),
            run_id,
            name="Preparing the comparison",
            parent=self,
        )
        worker.finished.connect(lambda status, w=worker: self._prepared(w, status))
        self._workers.append(worker.start())

    def _prepared(self, worker: Worker, status: str) -> None:
        if worker in self._workers:
            self._workers.remove(worker)
        result = worker.result
        if status != "finished" or not isinstance(result, CompareData) or result.run != self.run_id:
            if status == "failed":
                self.count_label.setText(worker.message)
            return
        self.show_run(result.run, result.teacher, result.rationales, result.teacher_spec)

    def show_run(
        self,
        run_id: int,
        teacher_id: int | None,
        rationales: dict[int, str] | None = None,
        teacher_spec: str | None = None,
    ) -> None:
        """Bind the table to a prepared (run, teacher)."""
        self.run_id, self.teacher_id = run_id, teacher_id
        self.rationales = rationales or {}
        self.teacher_label.setText(f"vs teacher {teacher_spec}" if teacher_spec else "")
        self.reviews = self.project.reviews()
        self._all_rows = None
        model = CompareTableModel(self.project, run_id, teacher_id, self.labels, parent=self)
        model.reviews = self.reviews
        sort, descending = self.filter_bar.sort_key()
        model.set_query(self.filter_bar.filters(), sort, descending)
        old = self.model
        self.model = model
        self.table.setModel(model)
        if old is not None:
            old.deleteLater()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        for i, (key, _title, _s) in enumerate(COLUMNS):
            header.resizeSection(
                i,
                {"example": 52, "text": 240, "review": 64, "margin": 70, "entropy": 72}.get(
                    key, 80 if key.endswith("label") or key == "gold" else 62
                ),
            )
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionsClickable(True)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        model.query_changed.connect(self._count_changed)
        self._count_changed(model.total)
        self.refresh_heatmap()
        if model.total:
            self.table.selectRow(0)
        else:
            self.detail.set_row(None, self.labels, None, None)

    def _header_clicked(self, section: int) -> None:
        key = COLUMNS[section][2]
        if key is None:
            return
        index = self.filter_bar.sort.findData(key)
        if index == self.filter_bar.sort.currentIndex():
            self.filter_bar.direction.toggle()
        else:
            self.filter_bar.sort.setCurrentIndex(index)

    def _count_changed(self, total: int) -> None:
        if self.model is None:
            return
        base = {"split": self.filter_bar.splits()}
        everything = self.model.filters == base
        if everything:
            self._all_rows = total
        elif self._all_rows is None:
            self._all_rows = self.project.compare_count(self.run_id, self.teacher_id, filters=base)
        self.count_label.setText(
            f"{total:,} examples" if everything else f"{total:,} of {self._all_rows:,} examples"
        )

    # -- filters --------------------------------------------------------------------------------------
    def apply_filters(self) -> None:
        if self.model is None:
            return
        sort, descending = self.filter_bar.sort_key()
        splits = self.filter_bar.splits()
        if splits != getattr(self, "_shown_splits", splits):
            self._all_rows = None
            self._shown_splits = splits
            self.refresh_heatmap()
        self._shown_splits = splits
        self.model.set_query(self.filter_bar.filters(), sort, descending)
        header = self.table.horizontalHeader()
        column = next((i for i, c in enumerate(COLUMNS) if c[2] == sort), -1)
        header.setSortIndicatorShown(column >= 0)
        if column >= 0:
            header.setSortIndicator(
                column, Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
            )
        if self.model.total:
            self.table.selectRow(0)
            self.table.scrollToTop()
        else:
            self.detail.set_row(None, self.labels, None, None)

    def refresh_heatmap(self) -> None:
        if self.run_id is None:
            return
        against = self.against.currentData()
        matrix = self.project.confusion_counts(
            self.run_id, self.teacher_id, against=against, split=self.filter_bar.splits()
        )
        self.heatmap.set_matrix(matrix, self.labels, against)

    def filter_cell(self, student: int, other: int) -> None:
        against = self.heatmap.against
        name = "teacher" if against == "teacher" else "gold"
        self.filter_bar.set_cell(
            student, other, against, f"student {self._name(student)} · {name} {self._name(other)}"
        )

    def _name(self, i: int | None) -> str:
        return self.labels[i] if i is not None and 0 <= i < len(self.labels) else "–"

    # -- selection and detail -------------------------------------------------------------------------
    def move(self, step: int) -> None:
        if self.model is None or not self.model.total:
            return
        current = self.table.currentIndex().row()
        self.table.selectRow(min(max(current + step, 0), self.model.total - 1))

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.show_detail(current.row())

    def show_detail(self, row: int) -> None:
        data = self.model.row_at(row) if self.model is not None else None
        if data is None:
            self.detail.set_row(None, self.labels, None, None)
            return
        self.detail.set_row(
            data,
            self.labels,
            self.reviews.get(data["example"]),
            self.rationales.get(data["example"]),
        )

    def current_row(self) -> dict[str, Any] | None:
        if self.model is None:
            return None
        return self.model.row_at(self.table.currentIndex().row())

    def save_review(self, example: int, review: dict[str, Any] | None) -> None:
        """Store a review from the detail pane (a tiny write on the Qt thread's own connection)."""
        empty = review is None or (
            review.get("corrected_label") is None
            and not review.get("exclude")
            and not review.get("golden")
            and not review.get("note")
        )
        if empty:
            self.project.clear_review(example)
            self.reviews.pop(example, None)
        else:
            self.project.set_review(
                example,
                corrected_label=review.get("corrected_label"),
                exclude=bool(review.get("exclude")),
                golden=bool(review.get("golden")),
                note=review.get("note"),
            )
            self.reviews[example] = dict(review)
        if self.model is not None:
            self.model.refresh_rows()
        self.review_saved.emit(example)

    # -- export ---------------------------------------------------------------------------------------
    def selected_rows(self) -> list[int]:
        if self.table.selectionModel() is None:
            return []
        return sorted(i.row() for i in self.table.selectionModel().selectedRows())

    def export(
        self, path: str | Path, fmt: str | None = None, *, selection_only: bool | None = None
    ) -> Worker | int:
        """Write the selected rows (more than one selected) or every filtered row to ``path``.
        A selection is written at once (returns the row count); the filtered set is written by
        a worker (returns it)."""
        if self.model is None:
            raise RuntimeError("no run is shown")
        path = Path(path)
        fmt = export_format(path, fmt)
        selected = self.selected_rows()
        if selection_only is None:
            selection_only = 1 < len(selected) < self.model.total
        if selection_only:
            return write_rows(self.model.rows(selected), self.labels, path, fmt)
        sort, descending = self.filter_bar.sort_key()
        config = CompareExportConfig(
            out=str(path),
            run=self.run_id,
            teacher=self.teacher_id,
            format=fmt,
            filters=CompareFilters.from_store(self.model.filters),
            sort=sort,
            descending=descending,
        )
        worker = Worker(
            export_compare,
            str(self.project_path),
            config,
            name="Exporting rows",
            parent=self,
        )
        worker.finished.connect(lambda status, w=worker: self._exported(w, status))
        self._workers.append(worker.start())
        return worker

    def _exported(self, worker: Worker, status: str) -> None:
        if worker in self._workers:
            self._workers.remove(worker)
        if status == "failed":
            QMessageBox.warning(self, "Export failed", worker.message)

    def ask_export(self) -> None:
        if self.model is None:
            return
        selected = self.selected_rows()
        what = (
            f"{len(selected):,} selected rows"
            if 1 < len(selected) < self.model.total
            else f"{self.model.total:,} rows"
        )
        path, chosen = QFileDialog.getSaveFileName(
            self,
            f"Export {what}",
            f"run-{self.run_id}-compare.csv",
            "CSV (*.csv);;JSON Lines (*.jsonl)",
        )
        if not path:
            return
        fmt = "jsonl" if "jsonl" in chosen or path.lower().endswith(".jsonl") else "csv"
        try:
            self.export(path, fmt)
        except OSError as exc:
            QMessageBox.warning(self, "Export failed", str(exc))

    def close(self) -> bool:
        for worker in list(self._workers):
            worker.cancel()
        if self._own_project:
            with contextlib.suppress(Exception):
                self.project.close()
        return super().close()
