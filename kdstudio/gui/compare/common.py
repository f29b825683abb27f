"""What the two comparison viewers (classification's and generation's) build the same way: the
keyboard shortcuts of a page and the table of rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QAbstractItemView, QTableView, QWidget


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


__all__ = ["bind_shortcuts", "rows_table"]
