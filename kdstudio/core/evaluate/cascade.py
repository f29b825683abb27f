"""The student–teacher cascade: the student answers first and hands its low-confidence cases
to the teacher.

For a confidence threshold ``τ`` a case goes to the teacher when the student's top probability
is below ``τ`` (at ``τ = 1`` every case goes). The cascade's answer is the teacher's label for
those cases and the student's for the rest. Costs: the student is free to run, the teacher costs
``teacher_cost_usd`` per prediction, so $ per 1M predictions = share sent × cost × 10⁶; the mean
time per prediction is the student's latency plus the share sent × the teacher's latency (the
student always runs first).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def default_thresholds(step: float = 0.05) -> list[float]:
    """0.0, 0.05, …, 1.0."""
    return [round(x, 4) for x in np.arange(0.0, 1.0 + step / 2, step)]


def cascade(
    confidence: Sequence[float] | np.ndarray,
    student_label: Sequence[int] | np.ndarray,
    teacher_label: Sequence[int] | np.ndarray,
    gold: Sequence[int] | np.ndarray,
    *,
    thresholds: Sequence[float] | None = None,
    teacher_cost_usd: float = 0.0,
    student_ms: float | None = None,
    teacher_ms: float | None = None,
    teacher_accuracy: float | None = None,
    tolerance: float = 0.01,
) -> dict[str, Any]:
    """One row per threshold — ``threshold``, ``share_to_teacher``, ``accuracy`` (vs gold),
    ``cost_per_1m_usd``, ``mean_ms`` — and ``best``: the cheapest row (lowest share, then highest
    accuracy) whose accuracy is at least ``teacher_accuracy − tolerance`` (the teacher's accuracy
    on the same cases when not given), or None when no row gets there.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    student, teacher, gold = (
        np.asarray(a, dtype=np.int64) for a in (student_label, teacher_label, gold)
    )
    n = len(conf)
    if teacher_accuracy is None and n:
        teacher_accuracy = float(np.mean(teacher == gold))
    rows = []
    for tau in thresholds if thresholds is not None else default_thresholds():
        sent = conf < tau if tau < 1.0 else np.ones(n, dtype=bool)
        share = float(sent.mean()) if n else 0.0
        answer = np.where(sent, teacher, student)
        mean_ms = None
        if student_ms is not None:
            mean_ms = student_ms + share * (teacher_ms or 0.0)
        rows.append(
            {
                "threshold": float(tau),
                "share_to_teacher": share,
                "accuracy": float(np.mean(answer == gold)) if n else None,
                "cost_per_1m_usd": share * teacher_cost_usd * 1e6,
                "mean_ms": mean_ms,
            }
        )
    best = None
    if teacher_accuracy is not None:
        good = [
            r
            for r in rows
            if r["accuracy"] is not None and r["accuracy"] >= teacher_accuracy - tolerance - 1e-12
        ]
        if good:
            best = min(good, key=lambda r: (r["share_to_teacher"], -r["accuracy"], r["threshold"]))
    return {
        "rows": rows,
        "best": best,
        "teacher_accuracy": teacher_accuracy,
        "tolerance": tolerance,
        "n": n,
    }
