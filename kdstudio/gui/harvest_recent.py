"""The harvest panel's view of a generation teacher's latest completions, cut to one line each (a
classification teacher's answers are labels; its panel shows none of this)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.evaluate.compare_generation import excerpt
from kdstudio.gui.widgets import label

#: how many of the latest completions are shown
RECENT = 8


class RecentCompletions(QWidget):
    """A "Latest completions" title over a table: example, prompt, completion, output tokens."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        self.title = label("Latest completions", "subheading")
        layout.addWidget(self.title)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Example", "Prompt", "Completion", "Tokens"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        for column, mode in enumerate((QHeaderView.ResizeMode.ResizeToContents, QHeaderView.ResizeMode.Stretch,
                                       QHeaderView.ResizeMode.Stretch, QHeaderView.ResizeMode.ResizeToContents)):
            header.setSectionResizeMode(column, mode)
        layout.addWidget(self.table, 1)
        self.empty = label("The teacher's completions show here as they arrive.", "muted", wrap=True)
        layout.addWidget(self.empty)

    def show_completions(self, rows: Sequence[tuple[int, str, str, int]]) -> None:
        """``rows``: (example id, prompt, completion, output tokens), newest first."""
        self.table.setRowCount(len(rows))
        for r, (ex, prompt, completion, tokens) in enumerate(rows):
            cells = (str(ex), excerpt(prompt, 120), excerpt(completion, 200), f"{tokens:,}" if tokens else "–")
            for c, value in enumerate(cells):
                item = QTableWidgetItem(value)
                if c in (1, 2):
                    item.setToolTip((prompt, completion)[c - 1][:2000])
                self.table.setItem(r, c, item)
        self.empty.setVisible(not rows)

    def completions(self) -> list[str]:
        """The completion cells as shown (cut to one line)."""
        return [self.table.item(r, 2).text() for r in range(self.table.rowCount())]


__all__ = ["RECENT", "RecentCompletions"]
