"""The confusion matrix student × teacher (or × gold) as a heatmap whose cells filter the table,
with a legend for its two colours; label names (up to 12 labels) are cut in the middle."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QPoint, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from kdstudio.gui.theme import ThemeManager, current_theme


class ConfusionHeatmap(QWidget):
    """A clickable confusion matrix: rows are the student's label, columns the teacher's (or
    gold). A click emits ``cell_clicked(student, other)``; hovering tells the count."""

    cell_clicked = Signal(int, int)
    LEGEND_H = 18  # the legend's line at the bottom

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.matrix: list[list[int]] = []
        self.labels: list[str] = []
        self.against = "teacher"
        self.selected: tuple[int, int] | None = None
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        ThemeManager.instance().theme_changed.connect(self._theme_changed)

    def _theme_changed(self, _theme: object) -> None:
        self.update()

    def set_matrix(self, matrix: list[list[int]], labels: Sequence[str], against: str) -> None:
        self.matrix, self.labels, self.against = matrix, list(labels), against
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(320, 320)

    def minimumSizeHint(self) -> QSize:
        """Room for a grid of at least 80 pixels beside the names (up to 12 labels), else a
        small grid: with banking77's 77 labels it is a picture of where the answers fall."""
        if 0 < len(self.matrix) <= 12:
            return QSize(86 + 8 + 80, 22 + 64 + self.LEGEND_H + 80)
        return QSize(160, 120)

    def _geometry(self) -> tuple[float, float, float]:
        """(left, top, cell size) of the grid."""
        n = max(1, len(self.matrix))
        show_names = n <= 12
        margin = 86.0 if show_names else 28.0
        top = 22.0
        bottom = (64.0 if show_names else 6.0) + self.LEGEND_H
        side = max(1.0, min(self.width() - margin - 8, self.height() - top - bottom))
        left = margin + max(0.0, (self.width() - margin - 8 - side) / 2)
        return left, top, side / n

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        n = len(self.matrix)
        if not n:
            return None
        left, top, cell = self._geometry()
        col, row = int((pos.x() - left) // cell), int((pos.y() - top) // cell)
        if 0 <= row < n and 0 <= col < n and pos.x() >= left and pos.y() >= top:
            return row, col
        return None

    def cell_center(self, student: int, other: int) -> QPoint:
        left, top, cell = self._geometry()
        return QPoint(int(left + (other + 0.5) * cell), int(top + (student + 0.5) * cell))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell is None:
            self.setToolTip("")
            return
        s, x = cell
        name = "teacher" if self.against == "teacher" else "gold"
        self.setToolTip(
            f"student {self._name(s)} · {name} {self._name(x)}: {self.matrix[s][x]:,} examples\n"
            "click to show them"
        )

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            cell = self.cell_at(event.position().toPoint())
            if cell is not None:
                self.selected = cell
                self.update()
                self.cell_clicked.emit(*cell)

    def _name(self, i: int) -> str:
        return self.labels[i] if 0 <= i < len(self.labels) else str(i)

    def _short(self, p: QPainter, i: int, width: int) -> str:
        return p.fontMetrics().elidedText(self._name(i), Qt.TextElideMode.ElideMiddle, width)

    def _legend(self, p: QPainter, left: float, y: float, colours: tuple[QColor, QColor]) -> None:
        """Swatches for the diagonal's colour and the rest's, and what their depth means."""
        other = "teacher" if self.against == "teacher" else "gold"
        x = left
        for colour, text in zip(
            colours, (f"student = {other}", f"student ≠ {other}"), strict=True
        ):
            p.fillRect(QRectF(x, y + 4, 10, 10), colour)
            x += 14
            width = p.fontMetrics().horizontalAdvance(text)
            p.drawText(QRectF(x, y, width + 2, self.LEGEND_H), Qt.AlignmentFlag.AlignVCenter, text)
            x += width + 12
        p.drawText(
            QRectF(x, y, max(0.0, self.width() - x), self.LEGEND_H),
            Qt.AlignmentFlag.AlignVCenter,
            p.fontMetrics().elidedText(
                "darker: more examples", Qt.TextElideMode.ElideRight, int(max(0.0, self.width() - x))
            ),
        )

    def paintEvent(self, event: QPaintEvent) -> None:
        theme = current_theme()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        n = len(self.matrix)
        if not n:
            p.setPen(QColor(theme.muted))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No predictions")
            return
        left, top, cell = self._geometry()
        peak = max((v for r in self.matrix for v in r), default=0) or 1
        accent, danger = QColor(theme.accent), QColor(theme.danger)
        base = QColor(theme.surface_alt)
        for s in range(n):
            for x in range(n):
                value = self.matrix[s][x]
                t = math.log1p(value) / math.log1p(peak) if value else 0.0
                hue = accent if s == x else danger
                colour = QColor(
                    round(base.red() + (hue.red() - base.red()) * t),
                    round(base.green() + (hue.green() - base.green()) * t),
                    round(base.blue() + (hue.blue() - base.blue()) * t),
                )
                rect = QRectF(left + x * cell, top + s * cell, cell, cell)
                p.fillRect(
                    rect.adjusted(0, 0, -1 if cell > 6 else 0, -1 if cell > 6 else 0), colour
                )
                if cell >= 26 and value:
                    p.setPen(QColor(theme.accent_text) if t > 0.55 else QColor(theme.text))
                    p.drawText(rect, Qt.AlignmentFlag.AlignCenter, f"{value:,}")
        if self.selected is not None:
            s, x = self.selected
            if s < n and x < n:
                p.setPen(QColor(theme.text))
                p.drawRect(
                    QRectF(left + x * cell, top + s * cell, cell, cell).adjusted(0, 0, -1, -1)
                )
        p.setPen(QColor(theme.muted))
        small = QFont(self.font())
        small.setPointSizeF(max(7.0, small.pointSizeF() - 1.5))
        p.setFont(small)
        other = "teacher" if self.against == "teacher" else "gold"
        p.drawText(QRectF(left, 0, n * cell, top - 4), Qt.AlignmentFlag.AlignCenter, f"{other} →")
        if n <= 12:
            for i in range(n):
                p.drawText(
                    QRectF(left - 90, top + i * cell, 84, cell),
                    Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                    self._short(p, i, 84),
                )
                p.save()
                p.translate(left + (i + 0.5) * cell, top + n * cell + 6)
                p.rotate(-40)
                p.drawText(
                    QRectF(-80, -8, 80, 16),
                    Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                    self._short(p, i, 80),
                )
                p.restore()
        self._legend(p, 4.0, self.height() - self.LEGEND_H, (accent, danger))
        p.save()
        p.translate(left - (96 if n <= 12 else 18), top + n * cell / 2)
        p.rotate(-90)
        p.drawText(QRectF(-60, -8, 120, 16), Qt.AlignmentFlag.AlignCenter, "← student")
        p.restore()


