"""The comparison table's Qt model: rows of ``Project.compare_page`` for one (run, teacher),
fetched a page at a time as the view scrolls, so a run with 100,000 test rows opens at once."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont

from kdstudio.gui.compare.labels import LABEL_ROLE
from kdstudio.gui.theme import current_theme

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
#: the columns that show a label name (drawn cut in the middle, the whole name as the tooltip)
LABEL_COLUMNS = ("gold", "teacher_label", "student_label")


def fmt_value(value: float | None, digits: int = 3) -> str:
    """A number as the table and the detail pane show it; "–" for none."""
    return "–" if value is None else f"{value:.{digits}f}"


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
        if role == LABEL_ROLE:
            return row[key] if key in LABEL_COLUMNS else None
        if role == Qt.ItemDataRole.ToolTipRole:
            if key == "text":
                return row["text"]
            if key in LABEL_COLUMNS:
                return self.label_name(row[key])
            if key == "review":
                return self._review_text(row) or None
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
            return fmt_value(row[key], 2)
        return fmt_value(row[key], 3)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Header clicks: sort by the column when the store can (KL, margin, entropy, confidences, id)."""
        if not 0 <= column < len(COLUMNS):
            return
        key = COLUMNS[column][2]
        if key is None:
            return
        self.set_query(sort=key, descending=order == Qt.SortOrder.DescendingOrder)


