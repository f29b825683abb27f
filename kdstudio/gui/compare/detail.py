"""The detail pane: one example's text, the teacher's and the student's probability bars side by
side, the teacher's rationale, the gold label and the person's review.

The example scrolls; the review controls below it do not, so they stay in view however long the
text, the rationale or the label names are. Label names are shown whole where there is room to
wrap (at their underscores) and cut in the middle, with the whole name as the tooltip, where
there is not."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from kdstudio.gui.compare.labels import LabelCombo, LabelElider
from kdstudio.gui.compare.table import fmt_value
from kdstudio.gui.theme import ThemeManager, current_theme
from kdstudio.gui.widgets import ElidedLabel, button, label


def breakable(name: str) -> str:
    """``name`` as rich text that may wrap after each underscore (a zero-width space there)."""
    return html.escape(name).replace("_", "_\u200b")


# -- the probability bars ------------------------------------------------------------------------


class ProbabilityBars(QWidget):
    """The teacher's and the student's probabilities side by side for the labels that matter:
    the top labels of either (at most ``top``), sorted by the teacher's probability."""

    def __init__(self, top: int = 6, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.top = top
        self.items: list[tuple[str, float, float, bool]] = []
        self.elider = LabelElider()
        self._index: dict[str, int] = {}
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)
        ThemeManager.instance().theme_changed.connect(self._theme_changed)

    def _theme_changed(self, _theme: object) -> None:
        self.update()

    def set_probs(
        self,
        labels: Sequence[str],
        teacher: Sequence[float] | None,
        student: Sequence[float] | None,
        gold: int | None = None,
    ) -> None:
        self.elider.set_labels(labels)
        self._index = {name: i for i, name in enumerate(labels)}
        t = list(teacher or [0.0] * len(labels))
        s = list(student or [0.0] * len(labels))
        by_t = sorted(range(len(labels)), key=lambda i: -t[i])[: self.top]
        by_s = sorted(range(len(labels)), key=lambda i: -s[i])[: self.top]
        keep = sorted(
            set(by_t[:4]) | set(by_s[:3]) | ({gold} if gold is not None else set()),
            key=lambda i: (-t[i], -s[i]),
        )[: max(self.top, 1)]
        self.items = [(labels[i], float(t[i]), float(s[i]), i == gold) for i in keep]
        self.setFixedHeight(24 + 26 * len(self.items))
        self.update()

    def values(self) -> list[tuple[str, float, float]]:
        """(label, teacher probability, student probability) rows as drawn."""
        return [(name, t, s) for name, t, s, _ in self.items]

    def _name_width(self) -> float:
        return min(170.0, self.width() * 0.36)

    def _small_font(self) -> QFont:
        small = QFont(self.font())
        small.setPointSizeF(max(7.0, small.pointSizeF() - 1))
        return small

    def shown_name(self, row: int) -> str:
        """Row ``row``'s label as drawn: cut in the middle to the name column, never like another
        label's (with a star for the gold label)."""
        name, _t, _s, is_gold = self.items[row]
        star = "★ " if is_gold else ""
        font = self._small_font()
        room = int(self._name_width() - 8) - (QFontMetricsF(font).horizontalAdvance(star) if star else 0)
        return star + self.elider.shown(self._index.get(name, -1), font, int(room))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        row = int((event.position().y() - 24) // 26) if event.position().y() >= 24 else -1
        if 0 <= row < len(self.items):
            name, t, s, is_gold = self.items[row]
            gold = " (gold)" if is_gold else ""
            self.setToolTip(f"{name}{gold}\nteacher {t:.3f} · student {s:.3f}")
        else:
            self.setToolTip("")

    def paintEvent(self, event: QPaintEvent) -> None:
        theme = current_theme()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        name_w = self._name_width()
        value_w = 44.0
        bar_w = max(20.0, self.width() - name_w - value_w - 12)
        teacher_c, student_c = QColor(theme.accent), QColor("#f97316")
        p.setFont(self._small_font())
        # legend
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(teacher_c)
        p.drawRoundedRect(QRectF(name_w, 4, 10, 10), 2, 2)
        p.setBrush(student_c)
        p.drawRoundedRect(QRectF(name_w + 80, 4, 10, 10), 2, 2)
        p.setPen(QColor(theme.muted))
        p.drawText(QRectF(name_w + 14, 0, 66, 18), Qt.AlignmentFlag.AlignVCenter, "teacher")
        p.drawText(QRectF(name_w + 94, 0, 66, 18), Qt.AlignmentFlag.AlignVCenter, "student")
        for row, (_name, t, s, _gold) in enumerate(self.items):
            y = 24 + row * 26
            p.setPen(QColor(theme.text))
            p.drawText(
                QRectF(0, y, name_w - 8, 22),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                self.shown_name(row),
            )
            for k, (value, colour) in enumerate(((t, teacher_c), (s, student_c))):
                top = y + 1 + k * 11
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(QColor(theme.surface_alt))
                p.drawRoundedRect(QRectF(name_w, top, bar_w, 9), 3, 3)
                p.setBrush(colour)
                p.drawRoundedRect(QRectF(name_w, top, max(2.0, bar_w * value), 9), 3, 3)
            p.setPen(QColor(theme.muted))
            p.drawText(
                QRectF(name_w + bar_w + 4, y - 2, value_w + 8, 13),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"{t:.2f}",
            )
            p.drawText(
                QRectF(name_w + bar_w + 4, y + 9, value_w + 8, 13),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"{s:.2f}",
            )


# -- the detail pane --------------------------------------------------------------------------------


class DetailPane(QWidget):
    """One example (text, gold, both answers as bars, the teacher's rationale), which scrolls,
    above its review (correct label, exclude, golden), which does not."""

    review_changed = Signal(int, object)  # example, the review fields that changed (None: cleared)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.row: dict[str, Any] | None = None
        self.labels: list[str] = []
        self.review: dict[str, Any] = {}
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(8)

        info = QWidget()
        layout = QVBoxLayout(info)
        layout.setContentsMargins(0, 0, 4, 0)
        layout.setSpacing(8)
        self.title = label("Pick an example", "subheading")
        self.meta = label("", "muted", wrap=True)
        self.meta.setTextFormat(Qt.TextFormat.RichText)
        self.text = label("", wrap=True, plain=True)  # the example's text, as written
        self.text.setObjectName("exampleText")
        self.bars = ProbabilityBars()
        self.rationale_title = label("Teacher's rationale", "muted")
        self.rationale = label("", wrap=True, plain=True)
        for widget in (self.title, self.text, self.meta, self.bars, self.rationale_title):
            layout.addWidget(widget)
        layout.addWidget(self.rationale)
        layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(info)
        self.scroll.setMinimumHeight(64)
        self.scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        outer.addWidget(self.scroll, 1)
        outer.addWidget(self._build_review())
        self._loading = False
        self.set_row(None, [], None, None)

    def _build_review(self) -> QFrame:
        review = QFrame()
        review.setObjectName("banner")
        self.review_box = review
        box = QVBoxLayout(review)
        box.setContentsMargins(8, 6, 8, 8)
        box.setSpacing(4)
        head = QHBoxLayout()
        head.addWidget(label("Review", "subheading"))
        self.review_state = ElidedLabel("", "muted")
        head.addWidget(self.review_state, 1)
        self.clear_button = button("Clear review", "link")
        self.clear_button.clicked.connect(self.clear_review)
        head.addWidget(self.clear_button)
        box.addLayout(head)
        row = QHBoxLayout()
        row.addWidget(QLabel("Correct label:"))
        self.correct_combo = LabelCombo("C: the label this example really has")
        self.correct_combo.setMinimumContentsLength(8)
        row.addWidget(self.correct_combo, 1)
        box.addLayout(row)
        row = QHBoxLayout()
        self.correct_button = button(
            "Teacher is wrong → use this label",
            "primary",
            tooltip="Store the corrected label; the next training run uses it "
            "instead of the teacher's answer",
        )
        self.correct_button.clicked.connect(self.apply_correction)
        row.addWidget(self.correct_button)
        row.addStretch(1)
        box.addLayout(row)
        flags = QHBoxLayout()
        self.exclude_box = QCheckBox("Exclude from training (X)")
        self.exclude_box.setToolTip("X: the next training run leaves this example out")
        self.golden_box = QCheckBox("Golden (G)")
        self.golden_box.setToolTip(
            "G: a person checked this example's label; it joins the golden set the dashboard "
            "scores runs on"
        )
        self.exclude_box.toggled.connect(lambda on: self._set(exclude=on))
        self.golden_box.toggled.connect(lambda on: self._set(golden=on))
        flags.addWidget(self.exclude_box)
        flags.addWidget(self.golden_box)
        flags.addStretch(1)
        box.addLayout(flags)
        return review

    def review_controls(self) -> list[QWidget]:
        """The widgets a review is made with (what must stay in view)."""
        return [
            self.correct_combo,
            self.correct_button,
            self.exclude_box,
            self.golden_box,
            self.clear_button,
        ]

    def set_row(
        self,
        row: dict[str, Any] | None,
        labels: Sequence[str],
        review: dict[str, Any] | None,
        rationale: str | None,
    ) -> None:
        self._loading = True
        try:
            self.row, self.labels = row, list(labels)
            self.review = dict(review or {})
            enabled = row is not None
            for w in self.review_controls():
                w.setEnabled(enabled)
            if row is None:
                self.title.setText("Pick an example")
                self.meta.setText("Select a row to see both answers side by side.")
                self.text.setText("")
                self.text.hide()
                self.bars.set_probs([], None, None)
                self.rationale_title.hide()
                self.rationale.hide()
                self.review_state.setText("")
                self.exclude_box.setChecked(False)
                self.golden_box.setChecked(False)
                return

            def name(i: int | None) -> str:
                return labels[i] if i is not None and 0 <= i < len(labels) else "–"

            self.title.setText(f"Example #{row['example']}")
            gold = (
                f"<b>{breakable(name(row['gold']))}</b>" if row["gold"] is not None else "no gold label"
            )
            lines = (
                ("gold", gold),
                (
                    "teacher",
                    f"<b>{breakable(name(row['teacher_label']))}</b> "
                    f"({fmt_value(row['teacher_confidence'], 2)})",
                ),
                (
                    "student",
                    f"<b>{breakable(name(row['student_label']))}</b> "
                    f"({fmt_value(row['confidence'], 2)}) · KL {fmt_value(row['kl'], 3)}",
                ),
            )
            self.meta.setText(
                "<table cellspacing='0' cellpadding='1'>"
                + "".join(f"<tr><td>{k}&nbsp;&nbsp;</td><td>{v}</td></tr>" for k, v in lines)
                + "</table>"
            )
            self.text.setText(row["text"] or "")
            self.text.show()
            self.bars.set_probs(
                labels, row.get("teacher_probs"), row.get("student_probs"), row["gold"]
            )
            self.rationale.setText(rationale or "")
            self.rationale_title.setVisible(bool(rationale))
            self.rationale.setVisible(bool(rationale))
            if self.correct_combo.items() != list(labels):
                self.correct_combo.clear()
                self.correct_combo.addItems(list(labels))
            # what the review holds, else the gold label, else the teacher's answer
            default = next(
                (
                    v
                    for v in (self.review.get("corrected_label"), row["gold"], row["teacher_label"])
                    if v is not None
                ),
                None,
            )
            if default is not None:
                self.correct_combo.setCurrentIndex(int(default))
            self.exclude_box.setChecked(bool(self.review.get("exclude")))
            self.golden_box.setChecked(bool(self.review.get("golden")))
            self._show_review_state()
        finally:
            self._loading = False

    def _show_review_state(self) -> None:
        r = self.review
        bits = []
        if r.get("corrected_label") is not None:
            lab = r["corrected_label"]
            bits.append(
                f"corrected to {self.labels[lab] if 0 <= lab < len(self.labels) else lab}"
            )
        if r.get("exclude"):
            bits.append("left out of training")
        if r.get("golden"):
            bits.append("in the golden set")
        self.review_state.setText(
            ("Reviewed: " + ", ".join(bits) + ".") if bits else "Not reviewed."
        )

    def apply_correction(self) -> None:
        if self.row is None or self.correct_combo.currentIndex() < 0:
            return
        self._set(corrected_label=self.correct_combo.currentIndex())

    def _set(self, **changes: Any) -> None:
        if self._loading or self.row is None:
            return
        self.review = {
            "corrected_label": None,
            "exclude": False,
            "golden": False,
            "note": None,
            **self.review,
            **changes,
        }
        self._show_review_state()
        self.review_changed.emit(self.row["example"], dict(changes))

    def show_review(self, review: dict[str, Any] | None) -> None:
        """Show ``review`` as the store keeps it (after a change was merged into it)."""
        self._loading = True
        try:
            self.review = dict(review or {})
            self.exclude_box.setChecked(bool(self.review.get("exclude")))
            self.golden_box.setChecked(bool(self.review.get("golden")))
            self._show_review_state()
        finally:
            self._loading = False

    def clear_review(self) -> None:
        if self.row is None:
            return
        self.review = {}
        self._loading = True
        self.exclude_box.setChecked(False)
        self.golden_box.setChecked(False)
        self._loading = False
        self._show_review_state()
        self.review_changed.emit(self.row["example"], None)


