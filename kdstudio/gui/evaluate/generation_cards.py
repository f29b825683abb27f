"""The dashboard's cards for a generation run: ROUGE-L and chrF against the teacher and against the
references, exact match and length ratio, latency per completion and tokens/s of the student and the
teacher, and the student's size. Each reads a field of the typed
:class:`~kdstudio.core.evaluate.generation_report.GenerationReport` (``DashboardData.generation``)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QGridLayout, QWidget

from kdstudio.gui.evaluate.cards import MetricCard
from kdstudio.gui.evaluate.plots import ms, pct

#: card key → caption, in the order they are laid out
GENERATION_CARDS = (
    ("vs_teacher", "ROUGE-L vs teacher"),
    ("vs_references", "ROUGE-L vs references"),
    ("exact", "Exact match"),
    ("latency", "Latency per completion"),
    ("tokens", "Tokens per second"),
    ("size", "Student size"),
)


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}/s"


class GenerationCards(QWidget):
    """Six metric cards in a row; :meth:`set_report` fills them from a generation report."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(10)
        self.cards = {key: MetricCard(caption) for key, caption in GENERATION_CARDS}
        for i, card in enumerate(self.cards.values()):
            grid.addWidget(card, 0, i)

    def set_report(self, r: Any) -> None:
        """``r``: a ``GenerationReport``."""
        c = self.cards
        t, refs, teacher_refs = r.student_vs_teacher, r.student_vs_references, r.teacher_vs_references
        c["vs_teacher"].set(_score(t.rouge_l if t else None),
                            f"chrF {_score(t.chrf)}" if t else "no teacher completions on test")
        c["vs_references"].set(
            _score(refs.rouge_l if refs else None),
            (f"chrF {_score(refs.chrf)}" + (f" · teacher {_score(teacher_refs.rouge_l)}" if teacher_refs else ""))
            if refs else "no references on test")
        main = refs or t
        c["exact"].set(pct(main.exact) if main else "–",
                       f"length ratio {main.length_ratio:.2f}" if main and main.length_ratio is not None else "")
        c["latency"].set(ms(r.student_latency_ms_p50),
                         f"teacher {ms(r.teacher_latency_ms_p50)} p50"
                         + (f" · {r.speedup:,.1f}× faster" if r.speedup else ""))
        c["tokens"].set(_rate(r.student_tokens_per_s), f"teacher {_rate(r.teacher_tokens_per_s)}")
        c["size"].set(f"{r.student_size_mb:,.1f} MB" if r.student_size_mb is not None else "–",
                      (f"{r.student_params / 1e6:,.2f}M params" if r.student_params else "")
                      + (f" · teacher {r.teacher_size_mb:,.0f} MB" if r.teacher_size_mb else ""))


__all__ = ["GENERATION_CARDS", "GenerationCards"]
