"""Small building blocks shared by the screens: cards, stat tiles, empty states, fold-away
sections and a drop zone for files."""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QMetaObject, QObject, QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QMouseEvent, QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)


def label(text: str = "", kind: str | None = None, *, wrap: bool = False, plain: bool = False) -> QLabel:
    """A QLabel styled by object name (``title``, ``heading``, ``muted``, ``error``...); ``plain=True``
    for text from a project or a file (never read as HTML)."""
    widget = QLabel(text)
    if plain:
        widget.setTextFormat(Qt.TextFormat.PlainText)
    if kind:
        widget.setObjectName(kind)
    widget.setWordWrap(wrap)
    if wrap:
        widget.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return widget


def plain_tooltip(text: str) -> str:
    """``text`` as a tooltip that shows it as written (a tooltip reads text that looks like HTML as HTML)."""
    from PySide6.QtGui import Qt as GuiQt

    return f"<qt>{html.escape(text)}</qt>" if GuiQt.mightBeRichText(text) else text


class ElidedLabel(QLabel):
    """A one-line label that shortens its text with "…" to the width it is given (the whole text
    is the tooltip). Its height never changes with the text, so setting a message does not move
    the widgets below it."""

    def __init__(self, text: str = "", kind: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if kind:
            self.setObjectName(kind)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setTextFormat(Qt.TextFormat.PlainText)  # it shows names and messages from projects, never HTML
        self._full = ""
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full = text
        self.setToolTip(plain_tooltip(text))
        self._elide()

    def text(self) -> str:
        return self._full

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, max(0, self.width()))
        super().setText(shown)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def sizeHint(self) -> QSize:
        return QSize(0, self.fontMetrics().height())

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()


def button(text: str, role: str | None = None, *, tooltip: str = "") -> QPushButton:
    """A push button; ``role`` is ``primary``, ``danger`` or ``link`` for the style sheet."""
    widget = QPushButton(text)
    if role:
        widget.setProperty("role", role)
    if tooltip:
        widget.setToolTip(tooltip)
    widget.setCursor(Qt.CursorShape.PointingHandCursor)
    widget.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
    return widget


def restyle(widget: QWidget) -> None:
    """Re-apply the style sheet after a dynamic property changed."""
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)
    widget.update()


def set_flag(widget: QWidget, name: str, value: bool) -> None:
    if widget.property(name) != value:
        widget.setProperty(name, value)
        restyle(widget)


class Card(QFrame):
    """A rounded surface; clickable cards emit ``clicked`` and can show a selected state."""

    clicked = Signal()

    def __init__(self, parent: QWidget | None = None, *, clickable: bool = False) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        self.setProperty("clickable", clickable)
        if clickable:
            self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(16, 14, 16, 14)
        self.layout_.setSpacing(6)
        self.layout_.setAlignment(Qt.AlignmentFlag.AlignTop)

    def set_selected(self, selected: bool) -> None:
        set_flag(self, "selected", selected)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self.property("clickable") and event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mouseReleaseEvent(event)


class StatTile(Card):
    """A number with a caption underneath (done, failed, cost...)."""

    def __init__(self, caption: str, value: str = "–", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_.setContentsMargins(14, 10, 14, 10)
        self.layout_.setSpacing(2)
        self.value = label(value, "statValue")
        self.caption = label(caption, "statLabel")
        self.layout_.addWidget(self.value)
        self.layout_.addWidget(self.caption)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set(self, value: str, caption: str | None = None) -> None:
        self.value.setText(value)
        if caption is not None:
            self.caption.setText(caption)


class EmptyState(QWidget):
    """A message telling what to do next, with an optional button that does it.

    ``action`` is the button's text and ``on_action`` what a click calls; ``set_state`` changes
    all three when the project's state changes (no teacher answers yet, no run yet...). Without an
    action the button is hidden. The default is centred in a page; ``compact`` puts the text on
    the left and the button on the right, for a card.

    The callback is only connected to the button, never kept in an attribute: a callback that
    refers to the widget holding this one (``panel.start``) would otherwise close a reference
    cycle, and the whole panel would wait for the cycle collector to be freed."""

    TEXT_WIDTH = 460

    def __init__(self, title: str, text: str, action: str | None = None, parent: QWidget | None = None, *,
                 on_action: Callable[[], object] | None = None, compact: bool = False) -> None:
        super().__init__(parent)
        self.compact = compact
        self.title = label(title, "subheading" if compact else "emptyTitle")
        self.text = label(text, "muted", wrap=True)
        self.action = button(action or "", "primary")
        self.action.setVisible(bool(action))
        self._connection: QMetaObject.Connection | None = None
        self._connect(on_action)
        if compact:
            row = QHBoxLayout(self)
            row.setContentsMargins(0, 2, 0, 2)
            row.setSpacing(16)
            words = QVBoxLayout()
            words.setSpacing(2)
            words.addWidget(self.title)
            words.addWidget(self.text)
            words.addStretch(1)
            row.addLayout(words, 1)
            row.addWidget(self.action, 0, Qt.AlignmentFlag.AlignTop)
            return
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        for w in (self.title, self.text):
            w.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            layout.addWidget(w)
        self.text.setFixedWidth(self.TEXT_WIDTH)
        self._reserve_text_height()
        layout.setAlignment(self.text, Qt.AlignmentFlag.AlignHCenter)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.action)
        row.addStretch(1)
        layout.addSpacing(8)
        layout.addLayout(row)
        layout.addStretch(2)

    def _reserve_text_height(self) -> None:
        # a stacked page does not always ask a wrapped label for its height at a width: reserve it
        if not self.compact:
            self.text.ensurePolished()
            self.text.setMinimumHeight(max(0, self.text.heightForWidth(self.TEXT_WIDTH)))

    def set_state(self, title: str, text: str, action: str | None = None,
                  on_action: Callable[[], object] | None = None) -> None:
        """Say something else: a new title and text, and the button (hidden without ``action``)."""
        self.title.setText(title)
        self.text.setText(text)
        self._reserve_text_height()
        self.action.setText(action or "")
        self.action.setVisible(bool(action))
        self._connect(on_action)

    def _connect(self, on_action: Callable[[], object] | None) -> None:
        if self._connection is not None:
            QObject.disconnect(self._connection)
            self._connection = None
        if on_action is not None:
            self._connection = self.action.clicked.connect(functools.partial(_call_without_arguments, on_action))


def _call_without_arguments(callback: Callable[[], object], *_signal_args: object) -> None:
    callback()


class FoldSection(QWidget):
    """A header button that shows or hides its body (advanced options)."""

    def __init__(self, title: str, body: QWidget, *, open_: bool = False, parent: QWidget | None = None):
        super().__init__(parent)
        self._title = title
        self.toggle = QToolButton()
        self.toggle.setObjectName("foldButton")
        self.toggle.setCheckable(True)
        self.toggle.setChecked(open_)
        self.toggle.setCursor(Qt.CursorShape.PointingHandCursor)
        self.toggle.toggled.connect(self._update)
        self.body = body
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toggle)
        layout.addWidget(body)
        self._update(open_)

    def _update(self, open_: bool) -> None:
        self.toggle.setText(("▾ " if open_ else "▸ ") + self._title)
        self.body.setVisible(open_)

    def set_title(self, title: str, *, open_: bool | None = None) -> None:
        """A new header text; ``open_``: show or hide the body too."""
        self._title = title
        if open_ is not None:
            self.toggle.setChecked(open_)
        self._update(self.toggle.isChecked())


class DropZone(QFrame):
    """Accepts a dropped file or a click on Browse; emits ``file_chosen(path)``."""

    file_chosen = Signal(str)
    browse_requested = Signal()

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dropZone")
        self.setAcceptDrops(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 18, 20, 18)
        self.text = label(text, "subheading")
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint = label("CSV, TSV, JSON Lines or Parquet", "muted")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.browse = button("Browse…")
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.browse)
        row.addStretch(1)
        layout.addWidget(self.text)
        layout.addWidget(self.hint)
        layout.addLayout(row)
        self.browse.clicked.connect(self.browse_requested)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()
            set_flag(self, "active", True)

    def dragLeaveEvent(self, event) -> None:
        set_flag(self, "active", False)

    def dropEvent(self, event: QDropEvent) -> None:
        set_flag(self, "active", False)
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()
            self.file_chosen.emit(str(Path(urls[0].toLocalFile())))


def format_duration(seconds: float | None) -> str:
    """``3725`` → ``1:02:05``; ``None`` → ``–``."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def format_count(n: float) -> str:
    n = float(n)
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{int(n)}"
