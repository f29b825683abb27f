"""The comparison viewer: a run's test predictions beside the teacher's answers.

A table on a Qt model that pages from SQLite (``Project.compare_page``), so a run with 100,000
test rows opens at once; filters and sorting are SQL, answered in milliseconds. Beside it the
confusion matrix student × teacher (or × gold) as a heatmap whose cells filter the table, and a
detail pane with the text, the teacher's and the student's probability bars side by side, the
teacher's rationale, the gold label and the person's review (corrected label, exclude, golden).

Laid out for 1280×800 and up: splitters that stop at each pane's smallest size (never collapse
one), the review controls fixed below the example (which scrolls), label names cut in the middle
with the whole name as the tooltip, and, only below the tab's smallest size, a scrolling page.

Keyboard: ↑/↓ (or J/K) move through the rows, Ctrl+F searches, Esc clears the cell filter,
X toggles "exclude", G toggles "golden", C jumps to the corrected-label box, Ctrl+E exports.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QMenu,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.evaluate.compare import CompareData, CompareFilters, prepare_compare
from kdstudio.core.export.compare import CompareExportConfig, export_compare, export_format, write_rows
from kdstudio.gui.compare.common import bind_shortcuts, rows_table, show_runs
from kdstudio.gui.compare.detail import DetailPane
from kdstudio.gui.compare.filters import FilterBar
from kdstudio.gui.compare.heatmap import ConfusionHeatmap
from kdstudio.gui.compare.labels import LabelDelegate, LabelElider
from kdstudio.gui.compare.table import COLUMNS, LABEL_COLUMNS, CompareTableModel
from kdstudio.gui.theme import ThemeManager, current_theme
from kdstudio.gui.widgets import Card, ElidedLabel, EmptyState, button, label
from kdstudio.gui.worker import Worker

#: the table's starting column widths where their headers' (with room for the sort arrow) are
#: not enough; the text column takes the rest; a label column holds about 15 characters of a
#: name cut in the middle
COLUMN_WIDTHS = {"example": 56, "gold": 118, "teacher_label": 118, "student_label": 118, "review": 64}


#: columns shown when the table is sorted by them, or always when asked (right-click a header)
OPTIONAL_COLUMNS = ("margin", "entropy")


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
        self.teacher_label = ElidedLabel("", "muted")
        head.addWidget(self.teacher_label, 1)
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

        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.setChildrenCollapsible(False)
        self.split.addWidget(self._build_table_pane())
        self.side_split = QSplitter(Qt.Orientation.Vertical)
        self.side_split.setChildrenCollapsible(False)
        heat_card = Card()
        heat_card.layout_.setContentsMargins(10, 10, 10, 10)
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
        self.side_split.addWidget(heat_card)
        detail_card = Card()
        detail_card.layout_.setContentsMargins(10, 10, 10, 10)
        self.detail = DetailPane()
        self.detail.review_changed.connect(self.save_review)
        detail_card.layout_.addWidget(self.detail, 1)
        self.side_split.addWidget(detail_card)
        self.side_split.setStretchFactor(0, 1)
        self.side_split.setStretchFactor(1, 2)
        self.side_split.setSizes([180, 360])
        self.split.addWidget(self.side_split)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 1)
        self.split.setSizes([820, 400])
        for splitter in (self.split, self.side_split):
            for i in range(splitter.count()):
                splitter.setCollapsible(i, False)  # a drag stops at the pane's smallest size
        root.addWidget(self.split, 1)
        # below the smallest size the tab can take (a small screen), it scrolls, never clips
        self.page_scroll = QScrollArea()
        self.page_scroll.setWidgetResizable(True)
        self.page_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.page_scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.page_scroll.setWidget(page)
        self.stack.addWidget(self.page_scroll)
        self.page = self.page_scroll

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
        bind_shortcuts(self.page, shortcuts)
        self.refresh()

    def _build_table_pane(self) -> QWidget:
        """The filters, the table (or "no matches") and the legend of its label colours."""
        pane = QWidget()
        lv = QVBoxLayout(pane)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.setSpacing(6)
        self.filter_bar = FilterBar()
        self.filter_bar.changed.connect(self.apply_filters)
        lv.addWidget(self.filter_bar)
        self.table = rows_table(multi_select=True)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        header = self.table.horizontalHeader()
        header.sectionClicked.connect(self._header_clicked)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._header_menu)
        self.extra_columns: set[str] = set()
        self.label_elider = LabelElider()
        self.label_delegate = LabelDelegate(self.label_elider, self.table)
        for i, (key, _title, _sort) in enumerate(COLUMNS):
            if key in LABEL_COLUMNS:
                self.table.setItemDelegateForColumn(i, self.label_delegate)
        self.no_matches = EmptyState(
            "No matches",
            "No example passes these filters.",
            "Clear filters",
            on_action=self.filter_bar.reset,
        )
        self.table_stack = QStackedWidget()
        self.table_stack.addWidget(self.table)
        self.table_stack.addWidget(self.no_matches)
        lv.addWidget(self.table_stack, 1)
        self.legend = label("", "muted", wrap=True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setToolTip(
            "A label name cut short shows whole when you point at it.\n"
            "Margin and entropy show when the table is sorted by them; right-click a column "
            "header to keep them."
        )
        self._show_legend()
        ThemeManager.instance().theme_changed.connect(self._show_legend)
        lv.addWidget(self.legend)
        return pane

    def _show_legend(self, _theme: object = None) -> None:
        theme = current_theme()
        swatch = "<span style='color:{}'>■</span>&nbsp;{}"
        self.legend.setText(
            "Label colours: &nbsp;"
            + " &nbsp; ".join(
                swatch.format(colour, text)
                for colour, text in (
                    (theme.danger, "student ≠ teacher"),
                    (theme.success, "student = teacher = gold"),
                    (theme.warning, "teacher ≠ gold"),
                )
            )
            + " &nbsp;· &nbsp;right\u2011click a header for more columns"
        )

    # -- runs ---------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the list of runs (after training or evaluation) and keep the current one."""
        runs = [r for r in self.project.runs() if r["status"] == "finished"]
        self.labels = self.project.labels()
        self.filter_bar.set_labels(self.labels)
        self.label_elider.set_labels(self.labels)
        current = self.run_id
        if not runs:
            show_runs(self.run_combo, runs, current, None)
            self.stack.setCurrentWidget(self.empty)
            return
        self.stack.setCurrentWidget(self.page)
        index = show_runs(self.run_combo, runs, current, self.project.preferred_run())
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
        header.setSortIndicatorShown(False)  # the hints below, then room for the arrow
        for i, (key, _title, store_sort) in enumerate(COLUMNS):
            arrow = 12 if store_sort else 0
            header.resizeSection(i, max(COLUMN_WIDTHS.get(key, 0), header.sectionSizeHint(i) + arrow))
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionsClickable(True)
        self._show_columns()
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        model.query_changed.connect(self._count_changed)
        self._count_changed(model.total)
        self.refresh_heatmap()
        if model.total:
            self.table.selectRow(0)
        else:
            self.detail.set_row(None, self.labels, None, None)

    def _show_columns(self) -> None:
        """The sort arrow on the sorted column; margin and entropy shown when the table is sorted
        by them or a person asked for them."""
        sort, descending = self.filter_bar.sort_key()
        for i, (key, _title, store_sort) in enumerate(COLUMNS):
            if key in OPTIONAL_COLUMNS:
                self.table.setColumnHidden(i, key not in self.extra_columns and store_sort != sort)
        header = self.table.horizontalHeader()
        column = next((i for i, c in enumerate(COLUMNS) if c[2] == sort), -1)
        header.setSortIndicatorShown(column >= 0)
        if column >= 0:
            order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
            header.setSortIndicator(column, order)

    def _header_menu(self, pos: QPoint) -> None:
        menu = QMenu(self)
        for key, title, _sort in COLUMNS:
            if key in OPTIONAL_COLUMNS:
                action = menu.addAction(f"Show {title}")
                action.setCheckable(True)
                action.setChecked(key in self.extra_columns)
                action.toggled.connect(lambda on, k=key: self.show_column(k, on))
        menu.popup(self.table.horizontalHeader().mapToGlobal(pos))

    def show_column(self, key: str, shown: bool = True) -> None:
        """Always show the optional column ``key`` (``"margin"``, ``"entropy"``), or only when sorted by it."""
        (self.extra_columns.add if shown else self.extra_columns.discard)(key)
        self._show_columns()

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
        if not total:
            where = self.filter_bar.split.currentText().lower()
            if everything:
                self.no_matches.set_state("No examples", f"This run has no rows in the {where}.")
            else:
                self.no_matches.set_state(
                    "No matches",
                    f"None of the {self._all_rows:,} examples in the {where} matches these filters.",
                    "Clear filters",
                    self.filter_bar.reset,
                )
        self.table_stack.setCurrentWidget(self.table if total else self.no_matches)

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
        self._show_columns()
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
        self.filter_bar.set_cell(student, other, self.heatmap.against)

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

    def save_review(self, example: int, changes: dict[str, Any] | None) -> None:
        """Store a review from the detail pane (a tiny write on the Qt thread's own connection):
        ``changes`` are merged into the stored review by the store's one rule, the one
        ``kdstudio review`` follows (``Project.set_review``); None clears the review."""
        if changes is None:
            self.project.clear_review(example)
            stored = None
        else:
            stored = self.project.set_review(example, **changes)
        if stored is None:
            self.reviews.pop(example, None)
        else:
            self.reviews[example] = stored
        if self.detail.row is not None and self.detail.row["example"] == example:
            self.detail.show_review(stored)
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

