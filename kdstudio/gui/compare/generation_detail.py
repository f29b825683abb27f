"""The generation viewer's detail pane: one prompt, the student's completion against the teacher's as
a word-level diff, both completions, every reference, the scores, and the person's review.

The example scrolls; the review (a corrected completion, exclude, golden, a note) stays below it,
in view. A corrected completion replaces the teacher's in the next training run
(``Project.set_review(ex, corrected_completion=...)``)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from kdstudio.core.evaluate.compare_generation import GenerationRow, word_diff
from kdstudio.gui.theme import ThemeManager, current_theme
from kdstudio.gui.widgets import ElidedLabel, FoldSection, button, label

#: the metrics of a prediction's scores, in the order the table shows them
SCORE_NAMES = (("rouge_l", "ROUGE-L"), ("chrf", "chrF"), ("exact", "exact match"), ("length_ratio", "length ratio"))
#: references shown open up to this many; more fold away
OPEN_REFERENCES = 3


def diff_html(student: str | None, teacher: str | None) -> str:
    """The word diff as rich text: words only the teacher wrote struck through in red, words only the
    student wrote underlined in green (the theme's colours)."""
    theme = current_theme()
    parts = []
    for op, text in word_diff(student, teacher):
        words = html.escape(text)
        if op == "delete":
            parts.append(f"<span style='color:{theme.danger}; text-decoration:line-through'>{words}</span>")
        elif op == "insert":
            parts.append(f"<span style='color:{theme.success}; text-decoration:underline'><b>{words}</b></span>")
        else:
            parts.append(words)
    return " ".join(parts) if parts else "<i>both completions are empty</i>"


def scores_html(row: GenerationRow) -> str:
    """The per-example scores: one line per metric, against the teacher and against the references."""
    def cell(scores: Mapping[str, float], key: str) -> str:
        value = scores.get(key)
        return "–" if value is None else f"{value:.2f}"

    head = "<tr><td></td><td>&nbsp;vs teacher&nbsp;</td><td>&nbsp;vs references&nbsp;</td></tr>"
    body = "".join(
        f"<tr><td>{title}</td><td align='right'>{cell(row.teacher_scores, key)}</td>"
        f"<td align='right'>{cell(row.reference_scores, key)}</td></tr>"
        for key, title in SCORE_NAMES
    )
    return f"<table cellspacing='0' cellpadding='1'>{head}{body}</table>"


def _text_label(kind: str | None = None) -> QLabel:
    widget = label("", kind, wrap=True, plain=True)  # prompts and completions, as written
    widget.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return widget


class GenerationDetailPane(QWidget):
    """One prompt and its completions, which scroll, above its review, which does not."""

    review_changed = Signal(int, object)  # example, the review fields that changed (None: cleared)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.row: GenerationRow | None = None
        self.review: dict[str, Any] = {}
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(8)

        info = QWidget()
        layout = QVBoxLayout(info)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.setSpacing(6)
        self.title = label("Pick a prompt", "subheading")
        self.meta = label("", "muted", wrap=True)
        self.prompt = _text_label()
        self.prompt.setObjectName("exampleText")
        self.diff_title = label("Student vs teacher, word by word", "muted")
        self.legend = label("", "muted", wrap=True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.diff = _text_label()
        self.diff.setTextFormat(Qt.TextFormat.RichText)
        self.teacher_title = label("Teacher", "muted")
        self.teacher = _text_label()
        self.student_title = label("Student", "muted")
        self.student = _text_label()
        self.scores_title = label("Scores", "muted")
        self.scores = _text_label()
        self.scores.setTextFormat(Qt.TextFormat.RichText)
        self.references = _text_label()
        self.references.setTextFormat(Qt.TextFormat.RichText)
        self.references_fold = FoldSection("References", self.references, open_=True)
        for widget in (self.title, self.meta, self.prompt, self.diff_title, self.diff, self.legend,
                       self.teacher_title, self.teacher, self.student_title, self.student, self.scores_title,
                       self.scores, self.references_fold):
            layout.addWidget(widget)
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
        self._show_legend()
        ThemeManager.instance().theme_changed.connect(self._theme_changed)
        self.set_row(None, None)

    def _build_review(self) -> QFrame:
        review = QFrame()
        review.setObjectName("banner")
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
        self.corrected = QPlainTextEdit()
        self.corrected.setPlaceholderText("C: the completion the teacher should have written…")
        self.corrected.setToolTip("A corrected completion replaces the teacher's in the next training run")
        self.corrected.setTabChangesFocus(True)
        self.corrected.setFixedHeight(self.corrected.fontMetrics().lineSpacing() * 3 + 14)
        box.addWidget(self.corrected)
        row = QHBoxLayout()
        self.correct_button = button("Save corrected completion", "primary",
                                     tooltip="Store it; the next training run learns it instead of the teacher's")
        self.correct_button.clicked.connect(self.apply_correction)
        row.addWidget(self.correct_button)
        self.copy_button = button("Start from the teacher's", "link",
                                  tooltip="Put the teacher's completion in the box to edit it")
        self.copy_button.clicked.connect(self.copy_teacher)
        row.addWidget(self.copy_button)
        row.addStretch(1)
        box.addLayout(row)
        flags = QHBoxLayout()
        self.exclude_box = QCheckBox("Exclude from training (X)")
        self.exclude_box.setToolTip("X: the next training run leaves this prompt out")
        self.golden_box = QCheckBox("Golden (G)")
        self.golden_box.setToolTip("G: a person checked this prompt's completion")
        self.exclude_box.toggled.connect(self._exclude_toggled)
        self.golden_box.toggled.connect(self._golden_toggled)
        flags.addWidget(self.exclude_box)
        flags.addWidget(self.golden_box)
        self.note = QLineEdit()
        self.note.setPlaceholderText("Note")
        self.note.setToolTip("A note kept with the review (saved when you leave the field or press Enter)")
        self.note.editingFinished.connect(self._note_edited)
        flags.addWidget(self.note, 1)
        box.addLayout(flags)
        return review

    def _theme_changed(self, _theme: object) -> None:
        self._show_legend()
        if self.row is not None:
            self.diff.setText(diff_html(self.row.student, self.row.teacher))

    def _show_legend(self) -> None:
        theme = current_theme()
        self.legend.setText(
            f"<span style='color:{theme.danger}; text-decoration:line-through'>struck</span>: only the teacher "
            f"wrote it · <span style='color:{theme.success}; text-decoration:underline'><b>underlined</b></span>: "
            "only the student wrote it")

    def review_controls(self) -> list[QWidget]:
        """The widgets a review is made with (what must stay in view)."""
        return [self.corrected, self.correct_button, self.copy_button, self.exclude_box, self.golden_box,
                self.note, self.clear_button]

    def set_row(self, row: GenerationRow | None, review: Mapping[str, Any] | None) -> None:
        self._loading = True
        try:
            self.row = row
            self.review = dict(review or {})
            for widget in self.review_controls():
                widget.setEnabled(row is not None)
            shown = row is not None
            for widget in (self.prompt, self.diff_title, self.diff, self.legend, self.teacher_title, self.teacher,
                           self.student_title, self.student, self.scores_title, self.scores, self.references_fold):
                widget.setVisible(shown)
            if row is None:
                self.title.setText("Pick a prompt")
                self.meta.setText("Select a row to see the student's completion against the teacher's.")
                self.corrected.setPlainText("")
                self.note.setText("")
                self.exclude_box.setChecked(False)
                self.golden_box.setChecked(False)
                self.review_state.setText("")
                return
            score = "not scored" if row.score is None else f"score {row.score:.2f}"
            self.title.setText(f"Prompt #{row.example}")
            bits = [row.split, score]
            if row.confidence is not None:
                bits.append(f"mean token log-prob {row.confidence:.2f}")
            if row.latency_ms is not None:
                bits.append(f"{row.latency_ms:.0f} ms")
            self.meta.setText(" · ".join(bits))
            self.prompt.setText(row.prompt)
            self.diff.setText(diff_html(row.student, row.teacher))
            self.teacher.setText(row.teacher if row.teacher is not None else "(the teacher has no completion here)")
            self.student.setText(row.student if row.student is not None else "(no completion)")
            self.scores.setText(scores_html(row))
            refs = row.references
            self.references_fold.setVisible(bool(refs))
            self.references.setText("".join(f"<p style='margin:0 0 4px 0'>{i}. {html.escape(r)}</p>"
                                            for i, r in enumerate(refs, 1)))
            self.references_fold.set_title(f"References ({len(refs)})", open_=len(refs) <= OPEN_REFERENCES)
            self._show_review()
        finally:
            self._loading = False

    def _show_review(self) -> None:
        r = self.review
        self.corrected.setPlainText(r.get("corrected_completion") or "")
        self.note.setText(r.get("note") or "")
        self.exclude_box.setChecked(bool(r.get("exclude")))
        self.golden_box.setChecked(bool(r.get("golden")))
        bits = []
        if r.get("corrected_completion"):
            bits.append("completion corrected")
        if r.get("exclude"):
            bits.append("left out of training")
        if r.get("golden"):
            bits.append("golden")
        if r.get("note"):
            bits.append("a note")
        self.review_state.setText(("Reviewed: " + ", ".join(bits) + ".") if bits else "Not reviewed.")

    def show_review(self, review: Mapping[str, Any] | None) -> None:
        """Show ``review`` as the store keeps it (after a change was merged into it)."""
        self._loading = True
        try:
            self.review = dict(review or {})
            self._show_review()
        finally:
            self._loading = False

    def copy_teacher(self) -> None:
        if self.row is not None and self.row.teacher:
            self.corrected.setPlainText(self.row.teacher)
            self.corrected.setFocus()

    def apply_correction(self) -> None:
        """Save the box's text as the corrected completion (an empty box removes the correction)."""
        text = self.corrected.toPlainText().strip()
        self._set(corrected_completion=text or None)

    def _exclude_toggled(self, on: bool) -> None:
        self._set(exclude=on)

    def _golden_toggled(self, on: bool) -> None:
        self._set(golden=on)

    def _note_edited(self) -> None:
        text = self.note.text().strip() or None
        if text != (self.review.get("note") or None):
            self._set(note=text)

    def _set(self, **changes: Any) -> None:
        if self._loading or self.row is None:
            return
        self.review = {"corrected_completion": None, "exclude": False, "golden": False, "note": None,
                       **self.review, **changes}
        self.review_changed.emit(self.row.example, dict(changes))

    def clear_review(self) -> None:
        if self.row is None:
            return
        self.review = {}
        self.show_review(None)
        self.review_changed.emit(self.row.example, None)


__all__ = ["GenerationDetailPane", "diff_html", "scores_html"]
