"""The Compare tab of a generation project: a run's completions beside the teacher's, prompt by prompt.

A table of the run's held-out prompts, lowest score first (ROUGE-L against the teacher's completion,
else against the references), with the filters that make sense for text (split, search in the prompt,
the completions and the references, score range, the worst N, review marks), and beside it the detail
pane (:mod:`kdstudio.gui.compare.generation_detail`): the prompt, the student's completion against
the teacher's as a word diff, every reference, the scores and the review, whose corrected completion
replaces the teacher's in the next run. The data is read once per run off the Qt thread
(:func:`~kdstudio.core.evaluate.compare_generation.prepare_generation_compare`).

Keyboard: ↑/↓ (or J/K) move through the rows, Ctrl+F searches, X toggles "exclude", G toggles
"golden", C goes to the corrected completion, Ctrl+E exports the rows shown.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.evaluate.compare_generation import GenerationCompareData, prepare_generation_compare
from kdstudio.core.export.compare_generation import write_generation_view
from kdstudio.gui.compare.common import bind_shortcuts, rows_table, show_runs
from kdstudio.gui.compare.generation_detail import GenerationDetailPane
from kdstudio.gui.compare.generation_table import GENERATION_COLUMNS, GenerationFilterBar, GenerationTableModel
from kdstudio.gui.widgets import Card, ElidedLabel, EmptyState, button, label
from kdstudio.gui.worker import Worker

#: starting column widths; the prompt, student and teacher columns share the rest
COLUMN_WIDTHS = {"example": 48, "split": 52, "score": 56, "review": 64}
STRETCH = ("prompt", "student", "teacher")


class GenerationComparisonViewer(QWidget):
    """The Compare tab for a generation project: pick a run, filter its prompts, review completions."""

    review_saved = Signal(int)
    tab_requested = Signal(str)  # "training": no finished run to compare yet

    def __init__(self, project_path: str | Path, project: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from kdstudio.core.store import Project

        self.project_path = Path(project_path)
        self._own_project = project is None
        self.project = project if project is not None else Project(self.project_path)
        self.model: GenerationTableModel | None = None
        self.run_id: int | None = None
        self.data: GenerationCompareData | None = None
        self.reviews: dict[int, dict[str, Any]] = {}
        self._workers: list[Worker] = []

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.stack = QStackedWidget()
        outer.addWidget(self.stack)
        self.empty = EmptyState(
            "No finished run to compare yet",
            "Train a student first. When its run finishes, this tab shows every held-out prompt with the "
            "teacher's and the student's completions, the words where they differ and their scores, lowest "
            "first; correct a completion here and the next run learns the correction.",
            "Train a student",
            on_action=self._ask_training,
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
        self.export_button = button("Export…", tooltip="Export the rows the filters show as CSV or JSON Lines (Ctrl+E)")
        self.export_button.clicked.connect(self.ask_export)
        head.addWidget(self.export_button)
        root.addLayout(head)

        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.setChildrenCollapsible(False)
        self.split.addWidget(self._build_table_pane())
        detail_card = Card()
        detail_card.layout_.setContentsMargins(10, 10, 10, 10)
        self.detail = GenerationDetailPane()
        self.detail.review_changed.connect(self.save_review)
        detail_card.layout_.addWidget(self.detail, 1)
        detail_card.setMinimumWidth(360)
        self.split.addWidget(detail_card)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 2)
        self.split.setSizes([700, 520])
        root.addWidget(self.split, 1)
        self.page_scroll = QScrollArea()
        self.page_scroll.setWidgetResizable(True)
        self.page_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.page_scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.page_scroll.setWidget(page)
        self.stack.addWidget(self.page_scroll)
        self.page = self.page_scroll

        shortcuts = (
            ("Ctrl+F", self._focus_search),
            ("J", self.next_row),
            ("K", self.previous_row),
            ("X", self.detail.exclude_box.toggle),
            ("G", self.detail.golden_box.toggle),
            ("C", self._focus_correction),
            ("Ctrl+E", self.ask_export),
        )
        bind_shortcuts(self.page, shortcuts)
        self.refresh()

    def _build_table_pane(self) -> QWidget:
        pane = QWidget()
        lv = QVBoxLayout(pane)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.setSpacing(6)
        self.filter_bar = GenerationFilterBar()
        self.filter_bar.changed.connect(self.apply_filters)
        lv.addWidget(self.filter_bar)
        self.table = rows_table(multi_select=False)
        self.no_matches = EmptyState("No matches", "No prompt passes these filters.", "Clear filters",
                                     on_action=self.filter_bar.reset)
        self.table_stack = QStackedWidget()
        self.table_stack.addWidget(self.table)
        self.table_stack.addWidget(self.no_matches)
        lv.addWidget(self.table_stack, 1)
        self.summary = label("", "muted", wrap=True)
        self.summary.setToolTip("Review marks: ✎ corrected completion · ★ golden · ✕ excluded · ✉ note")
        lv.addWidget(self.summary)
        return pane

    # -- runs -----------------------------------------------------------------------------------------
    def _ask_training(self) -> None:
        self.tab_requested.emit("training")

    def refresh(self) -> None:
        """Re-read the list of runs (after training or evaluation) and keep the current one."""
        runs = [r for r in self.project.runs() if r["status"] == "finished"]
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
        """Show run ``run_id``: its rows are read off the Qt thread, then the table shows."""
        self.run_id = run_id
        self.count_label.setText("Loading…")
        worker = Worker(prepare_generation_compare, str(self.project_path), run_id,
                        name="Preparing the comparison", parent=self)
        worker.finished.connect(self._prepared)  # a bound slot: no lambda over self (a cycle)
        self._workers.append(worker.start())

    def _prepared(self, status: str) -> None:
        worker = self.sender()
        if worker in self._workers:
            self._workers.remove(worker)
        result = getattr(worker, "result", None)
        if status != "finished" or not isinstance(result, GenerationCompareData) or result.run != self.run_id:
            if status == "failed":
                self.count_label.setText(worker.message)
            return
        self.show_data(result)

    def show_data(self, data: GenerationCompareData) -> None:
        """Bind the table to a run's rows."""
        self.data, self.run_id = data, data.run
        self.teacher_label.setText(f"vs teacher {data.teacher_spec}" if data.teacher_spec else "")
        self.reviews = self.project.reviews()
        model = GenerationTableModel(data, parent=self)
        model.reviews = self.reviews
        old, self.model = self.model, model
        sort, descending = self.filter_bar.sort_key()
        model.set_query(self.filter_bar.filters(), sort, descending)
        self.table.setModel(model)
        if old is not None:
            old.deleteLater()
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        for i, (key, _title, _tip) in enumerate(GENERATION_COLUMNS):
            if key in STRETCH:
                header.setSectionResizeMode(i, QHeaderView.ResizeMode.Stretch)
            else:
                header.setSectionResizeMode(i, QHeaderView.ResizeMode.Interactive)
                header.resizeSection(i, max(COLUMN_WIDTHS.get(key, 0), header.sectionSizeHint(i)))
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        model.query_changed.connect(self._count_changed)
        self._count_changed(len(model.rows))
        self._select_first()

    def _count_changed(self, shown: int) -> None:
        if self.model is None:
            return
        total = self.model.total
        where = self.filter_bar.split.currentText().lower()
        self.count_label.setText(f"{total:,} prompts" if shown == total and self.filter_bar.is_default()
                                 else f"{shown:,} of {total:,} prompts")
        mean = self.model.mean_score
        self.summary.setText(
            ("" if mean is None else f"Mean score of the rows shown: {mean:.2f}. ")
            + "Lowest score first. Review marks: ✎ corrected · ★ golden · ✕ excluded · ✉ note.")
        if not shown:
            if total:
                self.no_matches.set_state("No matches", f"None of the {total:,} prompts in the {where} matches "
                                          "these filters.", "Clear filters", self.filter_bar.reset)
            else:
                self.no_matches.set_state("No prompts", f"This run has no completions in the {where}.")
        self.table_stack.setCurrentWidget(self.table if shown else self.no_matches)

    # -- filters and selection ------------------------------------------------------------------------
    def apply_filters(self) -> None:
        if self.model is None:
            return
        sort, descending = self.filter_bar.sort_key()
        self.model.set_query(self.filter_bar.filters(), sort, descending)
        self._select_first()

    def _select_first(self) -> None:
        if self.model is not None and self.model.rows:
            self.table.selectRow(0)
            self.table.scrollToTop()
            self.show_detail(0)
        else:
            self.detail.set_row(None, None)

    def _focus_search(self) -> None:
        self.filter_bar.search.setFocus()

    def _focus_correction(self) -> None:
        self.detail.corrected.setFocus()

    def next_row(self) -> None:
        self.move(1)

    def previous_row(self) -> None:
        self.move(-1)

    def move(self, step: int) -> None:
        if self.model is None or not self.model.rows:
            return
        current = self.table.currentIndex().row()
        self.table.selectRow(min(max(current + step, 0), len(self.model.rows) - 1))

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.show_detail(current.row())

    def show_detail(self, row: int) -> None:
        data = self.model.row_at(row) if self.model is not None else None
        self.detail.set_row(data, self.reviews.get(data.example) if data is not None else None)

    def current_row(self) -> Any:
        if self.model is None:
            return None
        return self.model.row_at(self.table.currentIndex().row())

    def save_review(self, example: int, changes: dict[str, Any] | None) -> None:
        """Store a review from the detail pane through ``Project.set_review`` (the rule ``kdstudio
        review`` follows); None clears it."""
        if changes is None:
            self.project.clear_review(example)
            stored = None
        else:
            stored = self.project.set_review(example, **changes)
        if stored is None:
            self.reviews.pop(example, None)
        else:
            self.reviews[example] = stored
        if self.detail.row is not None and self.detail.row.example == example:
            self.detail.show_review(stored)
        if self.model is not None:
            self.model.refresh_rows()
        self.review_saved.emit(example)

    # -- export ---------------------------------------------------------------------------------------
    def export(self, path: str | Path, fmt: str | None = None) -> int:
        """Write the rows the filters show, in their order, to ``path`` (CSV or JSON Lines); return how many."""
        if self.model is None:
            raise RuntimeError("no run is shown")
        return write_generation_view(self.model.rows, self.reviews, path, fmt)

    def ask_export(self) -> None:
        if self.model is None:
            return
        path, chosen = QFileDialog.getSaveFileName(self, f"Export {len(self.model.rows):,} rows",
                                                   f"run-{self.run_id}-compare.csv", "CSV (*.csv);;JSON Lines (*.jsonl)")
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


__all__ = ["GenerationComparisonViewer"]
