"""Label names in little room: shortened in the middle, and never two labels alike.

banking77's names run to 48 characters (``balance_not_updated_after_cheque_or_cash_deposit``) and
many share a beginning (``card_payment_…``) or an end (``…_charge``), so cutting them at the right
makes different labels look the same. :func:`distinct_elisions` keeps the start and the end of
each name and, where what is left could still be another name, moves the cut until it cannot. The
table's label columns draw through :class:`LabelDelegate`; every place that shortens a name shows
the whole one as its tooltip; :class:`LabelCombo` is a combo box of names that does the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont, QFontMetrics, QPaintEvent
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionComboBox,
    QStyleOptionViewItem,
    QStylePainter,
    QWidget,
)

ELLIPSIS = "…"
#: the model role that gives a label column's label id (an int, or None)
LABEL_ROLE = Qt.ItemDataRole.UserRole + 2


def _cuts(name: str, metrics: QFontMetrics, width: int, longest: int) -> Iterator[str]:
    """``name`` shortened to ``head…tail`` forms (keeping at most ``longest`` characters) that fit
    ``width``: the longest first and, of one length, the most even cut first."""
    n = len(name)
    for kept in range(min(n - 1, longest), 0, -1):
        for head in sorted(range(kept + 1), key=lambda h: (abs(2 * h - kept), -h)):
            text = name[:head] + ELLIPSIS + name[n - (kept - head) :]
            if metrics.horizontalAdvance(text) <= width:
                yield text


def _matches_another(head: str, tail: str, name: str, names: Sequence[str]) -> bool:
    """Whether ``head…tail`` could be a label other than ``name`` (one that starts with ``head``
    and ends with ``tail``)."""
    return any(
        other != name
        and len(other) >= len(head) + len(tail)
        and other.startswith(head)
        and other.endswith(tail)
        for other in names
    )


def distinct_elisions(names: Sequence[str], metrics: QFontMetrics, width: int) -> list[str]:
    """Each name as it fits ``width`` pixels: whole when it fits, else cut in the middle, at the
    place that keeps the most characters (evenly) where the part shown could not be any other
    name's: ``top_up_by_card_charge`` and ``top_up_by_bank_transfer_charge`` never both show as
    ``top_up…_charge`` (when some cut that fits can tell them apart)."""
    shown = []
    for name in names:
        text = metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, width)
        if ELLIPSIS in text:
            head, _, tail = text.partition(ELLIPSIS)
            if _matches_another(head, tail, name, names):
                for cut in _cuts(name, metrics, width, len(text) + 1):
                    head, _, tail = cut.partition(ELLIPSIS)
                    if not _matches_another(head, tail, name, names):
                        text = cut
                        break
        shown.append(text)
    return shown


class LabelElider:
    """:func:`distinct_elisions` of one label set, kept per font and width (the table asks for
    every visible cell on every paint)."""

    def __init__(self, labels: Sequence[str] = ()) -> None:
        self.labels: list[str] = list(labels)
        self._cache: dict[tuple[str, int], list[str]] = {}

    def set_labels(self, labels: Sequence[str]) -> None:
        if list(labels) != self.labels:
            self.labels = list(labels)
            self._cache.clear()

    def shown(self, label: int, font: QFont, width: int) -> str:
        """Label ``label`` (an index into the labels) as it fits ``width`` in ``font``."""
        if not 0 <= label < len(self.labels):
            return str(label)
        key = (font.key(), max(0, width))
        names = self._cache.get(key)
        if names is None:
            names = distinct_elisions(self.labels, QFontMetrics(font), max(0, width))
            self._cache[key] = names
        return names[label]


class LabelDelegate(QStyledItemDelegate):
    """Draws a label column's names through a :class:`LabelElider`, so a cut name in the table
    never looks like another label (the model's tooltip has the whole name)."""

    def __init__(self, elider: LabelElider, parent=None) -> None:
        super().__init__(parent)
        self.elider = elider

    def initStyleOption(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        super().initStyleOption(option, index)
        label = index.data(LABEL_ROLE)
        if label is None:
            return
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        width = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, option, widget).width()
        # the style's own text margins inside that rectangle
        margin = 2 * (style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, widget) + 1)
        option.text = self.elider.shown(int(label), option.font, width - margin)


class LabelCombo(QComboBox):
    """A combo box of label names: the chosen one is cut in the middle to the box's width (never
    like another item), the list opens wide enough for whole names, and the tooltip says the
    chosen name whole after ``tip`` (the box's own help)."""

    def __init__(self, tip: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tip = tip
        self.elider = LabelElider()
        self.view().setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.currentIndexChanged.connect(self._show_tip)
        self._show_tip(self.currentIndex())

    def items(self) -> list[str]:
        return [self.itemText(i) for i in range(self.count())]

    def _show_tip(self, index: int) -> None:
        name = self.itemText(index) if index >= 0 else ""
        self.setToolTip("\n".join(t for t in (self.tip, name) if t))

    def showPopup(self) -> None:
        view = self.view()
        view.setMinimumWidth(view.sizeHintForColumn(0) + view.verticalScrollBar().sizeHint().width() + 8)
        super().showPopup()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        field = self.style().subControlRect(
            QStyle.ComplexControl.CC_ComboBox, option, QStyle.SubControl.SC_ComboBoxEditField, self
        )
        if self.currentIndex() >= 0:
            self.elider.set_labels(self.items())
            option.currentText = self.elider.shown(self.currentIndex(), self.font(), field.width() - 4)
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)
