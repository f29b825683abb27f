"""The lower half of the harvest panel: the examples the teacher could not answer, each with its
reason, filled as failures arrive; or, before there is anything to list, what to do first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kdstudio.gui.widgets import EmptyState, label


class FailuresView(QWidget):
    """A "Failures" title over a stack: the table of failed examples, "No failures", or the first
    step (import data, choose a teacher, start the harvest)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        self.title = label("Failures", "subheading")
        layout.addWidget(self.title)
        self.stack = QStackedWidget()
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Example", "Text", "Reason"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.empty = EmptyState("No failures", "Examples the teacher could not answer (refusals, timeouts, "
                                "unparseable or cut-off replies) are listed here with the reason as they happen, "
                                "ready for Retry failed.")
        self.first_step = EmptyState("No teacher answers yet", "")
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.first_step)
        layout.addWidget(self.stack, 1)
        self.shown = 0  #: rows in the table

    def show_failures(self, failures: list[tuple], total: int | None = None) -> None:
        """``failures``: (example id, text, reason) rows; ``total``: how many there are in all
        (the list may hold only the first of them)."""
        self.table.setRowCount(len(failures))
        for r, (ex, text, reason) in enumerate(failures):
            for c, value in enumerate((str(ex), (text or "")[:300], reason or "")):
                item = QTableWidgetItem(value)
                item.setToolTip(value)
                if c == 0:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.shown = len(failures)
        total = max(total or 0, len(failures))
        title = f"Failures ({total:,})" if failures else "Failures"
        if total > len(failures):
            title += f" · the first {len(failures):,} shown"
        self.title.setText(title)
        self.title.show()
        self.stack.setCurrentWidget(self.table if failures else self.empty)

    def show_first_step(self, title: str, text: str, action: str, on_action: Callable[[], Any]) -> None:
        self.first_step.set_state(title, text, action, on_action)
        self.title.hide()
        self.stack.setCurrentWidget(self.first_step)

    def show_no_data(self, on_import: Callable[[], Any]) -> None:
        self.show_first_step(
            "No data in this project yet",
            "Import a data file first (CSV, TSV, JSON Lines or Parquet): a text column, and a label column "
            "where you have gold labels. Then the teacher answers every example here.",
            "Import data…", on_import)

    def show_no_answers(self, spec: str, others: bool, *, choose: Callable[[], Any],
                        start: Callable[[], Any]) -> None:
        """The teacher ``spec`` has not answered yet (``others``: another teacher has): say what a
        harvest does and offer to start it, or to choose a teacher when there is none."""
        if not spec:
            self.show_first_step(
                "No teacher answers yet",
                "Choose a teacher: the offline MiniLM, a local model, or Claude. It answers every example; the "
                "student then learns from those answers.",
                "Choose a teacher…", choose)
            return
        self.show_first_step(
            "No answers from this teacher yet" if others else "No teacher answers yet",
            f"Start the harvest: {spec} answers every example of the ticked splits, and the student learns from "
            "those answers. Answers are kept in the project, so a stopped harvest continues where it stopped.",
            "Start harvest", start)

    @property
    def showing_first_step(self) -> bool:
        return self.stack.currentWidget() is self.first_step
