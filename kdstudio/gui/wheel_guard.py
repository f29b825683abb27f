"""Combo and spin boxes, and plots, that take the mouse wheel only when they have focus.

On a long scrolling form a QComboBox or QSpinBox under the pointer otherwise swallows the wheel
and changes its value while the person only meant to scroll the page (a file's split silently
became "unlabeled" that way). A guarded box takes focus by click or Tab only, and while it has no
focus the wheel scrolls the nearest scroll area around it that can scroll. A plot (a graphics
view, whose wheel zooms) is guarded the same way: it takes focus when clicked.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QGraphicsView,
    QWidget,
)

GUARDED = (QComboBox, QAbstractSpinBox)


class WheelGuard(QObject):
    """The event filter: an unfocused box hands the wheel to the scroll area around it."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Wheel and isinstance(obj, QWidget) and not _focused(obj):
            _scroll_around(obj, event)
            event.accept()  # handled: Qt offers it to no one else, so nothing scrolls twice
            return True
        return False


class ViewWheelGuard(QObject):
    """The event filter on a graphics view's viewport: while the view has no focus, the wheel
    scrolls the scroll area around the view instead of zooming."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.Wheel or not isinstance(obj, QWidget):
            return False
        view = obj.parentWidget()
        if isinstance(view, QGraphicsView) and not _focused(view):
            _scroll_around(view, event)
            event.accept()
            return True
        return False


def _scroll_around(widget: QWidget, event: QWheelEvent) -> None:
    """Give ``event`` to the scroll bar of the nearest scroll area around ``widget`` that can
    scroll that way (a table that holds the box but has nothing to scroll is passed over)."""
    delta = event.angleDelta()
    vertical = abs(delta.y()) >= abs(delta.x())
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QAbstractScrollArea):
            bar = parent.verticalScrollBar() if vertical else parent.horizontalScrollBar()
            if bar.maximum() > bar.minimum():
                QApplication.sendEvent(bar, event)
                return
        parent = parent.parentWidget()


def _focused(widget: QWidget) -> bool:
    focus = QApplication.focusWidget()
    return widget.hasFocus() or (focus is not None and widget.isAncestorOf(focus))


_GUARD: WheelGuard | None = None
_VIEW_GUARD: ViewWheelGuard | None = None


def guard_view_wheel(*views: QGraphicsView) -> None:
    """Let each of ``views`` (a pyqtgraph ``PlotWidget``...) take the wheel only once clicked."""
    global _VIEW_GUARD
    if _VIEW_GUARD is None:
        _VIEW_GUARD = ViewWheelGuard()
    for view in views:
        if view.property("wheelGuarded"):
            continue
        view.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        view.viewport().installEventFilter(_VIEW_GUARD)
        view.setProperty("wheelGuarded", True)


def guard_wheel(*widgets: QWidget) -> None:
    """Guard ``widgets`` and every combo and spin box inside them (idempotent)."""
    global _GUARD
    if _GUARD is None:
        _GUARD = WheelGuard()
    for root in widgets:
        boxes = [root] if isinstance(root, GUARDED) else []
        for kind in GUARDED:
            boxes += root.findChildren(kind)
        for box in boxes:
            if box.property("wheelGuarded"):
                continue
            box.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            box.installEventFilter(_GUARD)
            box.setProperty("wheelGuarded", True)
