"""What the two comparison viewers (classification's and generation's) build the same way: the
keyboard shortcuts of a page, the table of rows and the list of runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QAbstractItemView, QComboBox, QTableView, QWidget


def bind_shortcuts(page: QWidget, shortcuts: Sequence[tuple[str, Callable[[], object]]]) -> None:
    """Each (keys, slot) as a shortcut active while focus is anywhere in ``page``."""
    for keys, slot in shortcuts:
        shortcut = QShortcut(QKeySequence(keys), page)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(slot)


def rows_table(*, multi_select: bool) -> QTableView:
    """A table of comparison rows: whole rows selected, alternating colours, one line per row
    elided on the right, no row header."""
    table = QTableView()
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection if multi_select
                           else QAbstractItemView.SelectionMode.SingleSelection)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(26)
    table.setTextElideMode(Qt.TextElideMode.ElideRight)
    return table


def show_runs(combo: QComboBox, runs: Sequence[dict[str, Any]], current: int | None, preferred: int | None) -> int:
    """List ``runs`` (newest first) in ``combo`` without signalling, then select ``current`` (else
    ``preferred``, else the newest), signalling. Returns the index of the run looked for (-1 when it
    is not among them: the caller opens the one selected)."""
    combo.blockSignals(True)
    combo.clear()
    for r in reversed(runs):
        combo.addItem(f"#{r['id']} · {r.get('name') or r['student']}", r["id"])
    combo.blockSignals(False)
    index = combo.findData(current if current is not None else preferred)
    if runs:
        combo.setCurrentIndex(max(index, 0))
    return index


__all__ = ["bind_shortcuts", "rows_table", "show_runs"]
