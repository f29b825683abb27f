"""The student–teacher cascade: the student answers first and hands its low-confidence cases
to the teacher.

For a confidence threshold ``τ`` a case goes to the teacher when the student's top probability
is below ``τ`` (at ``τ = 1`` every case goes). The cascade's answer is the teacher's label for
those cases and the student's for the rest. Costs: the student is free to run, the teacher costs
``teacher_cost_usd`` per prediction, so $ per 1M predictions = share sent × cost × 10⁶; the mean
time per prediction is the student's latency plus the share sent × the teacher's latency (the
student always runs first).

A generation student's confidence is its mean token log-probability (≤ 0):
:func:`generation_cascade` sends a prompt to the teacher when it is below the threshold and
scores the cascade's completions (ROUGE-L against the references, or against the teacher).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def default_thresholds(step: float = 0.05) -> list[float]:
    """0.0, 0.05, …, 1.0."""
    return [round(x, 4) for x in np.arange(0.0, 1.0 + step / 2, step)]


#: The accuracy targets a person can choose for the cascade's "best" threshold: within this many
#: points (fractions) of the teacher's accuracy. 0 means the teacher's accuracy or better.
TARGETS = (0.0, 0.005, 0.01, 0.02)


def cheapest_within(rows: Sequence[Any], teacher_accuracy: float | None, tolerance: float, *,
                    key: str = "accuracy") -> Any:
    """The rule for the best threshold: of the rows whose accuracy is at least the teacher's
    accuracy minus ``tolerance``, the one that sends the smallest share to the teacher (then the
    more accurate, then the lower threshold); None when no row gets there. ``rows`` are dicts or
    objects with ``share_to_teacher``, ``accuracy`` and ``threshold`` (``key`` names another
    quality field: a generation cascade's ``score``)."""
    if teacher_accuracy is None:
        return None

    def get(r: Any, name: str) -> Any:
        return r[name] if isinstance(r, dict) else getattr(r, name)

    good = [r for r in rows if get(r, key) is not None and get(r, key) >= teacher_accuracy - tolerance - 1e-12]
    if not good:
        return None
    return min(good, key=lambda r: (get(r, "share_to_teacher"), -get(r, key), get(r, "threshold")))


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
    best = cheapest_within(rows, teacher_accuracy, tolerance)
    return {
        "rows": rows,
        "best": best,
        "teacher_accuracy": teacher_accuracy,
        "tolerance": tolerance,
        "n": n,
    }


def generation_thresholds(confidence: Sequence[float] | np.ndarray, steps: int = 20) -> list[float]:
    """Thresholds over the range of a generation student's confidences (mean token
    log-probabilities, ≤ 0): the quantiles at 0, 1/steps, …, 1 (so the shares sent spread evenly),
    then 0, which sends every prompt."""
    conf = np.asarray(confidence, dtype=np.float64)
    if not len(conf):
        return [0.0]
    quantiles = np.quantile(conf, np.linspace(0.0, 1.0, steps + 1))
    return sorted({round(float(q), 6) for q in quantiles if q < 0.0} | {0.0})


def generation_cascade(
    confidence: Sequence[float] | np.ndarray,
    student_score: Sequence[float] | np.ndarray,
    teacher_score: Sequence[float] | np.ndarray,
    *,
    thresholds: Sequence[float] | None = None,
    teacher_cost_usd: float = 0.0,
    student_ms: float | None = None,
    teacher_ms: float | None = None,
    tolerance: float = 0.01,
    metric: str = "rouge_l",
    against: str = "references",
) -> dict[str, Any]:
    """The cascade of a generation student: a prompt goes to the teacher when the student's mean
    token log-probability (its ``confidence``) is below ``τ`` (at ``τ = 0``, the top of the range,
    every prompt goes), and the cascade's completion scores what the teacher's does for those
    prompts and what the student's does for the rest. Rows: ``threshold``, ``share_to_teacher``,
    ``score`` (the mean per-prompt ``metric``), ``cost_per_1m_usd``, ``mean_ms``; ``best``: the row
    sending the fewest prompts whose score is at least the teacher's minus ``tolerance``."""
    conf = np.asarray(confidence, dtype=np.float64)
    student = np.asarray(student_score, dtype=np.float64)
    teacher = np.asarray(teacher_score, dtype=np.float64)
    n = len(conf)
    rows: list[dict[str, Any]] = []
    for tau in thresholds if thresholds is not None else generation_thresholds(conf):
        sent = conf < tau if tau < 0.0 else np.ones(n, dtype=bool)
        share = float(sent.mean()) if n else 0.0
        if rows and rows[-1]["share_to_teacher"] == share and tau < 0.0:
            continue  # the same prompts as the row before
        rows.append({
            "threshold": float(tau),
            "share_to_teacher": share,
            "score": round(float(np.where(sent, teacher, student).mean()), 6) if n else None,
            "cost_per_1m_usd": share * teacher_cost_usd * 1e6,
            "mean_ms": None if student_ms is None else student_ms + share * (teacher_ms or 0.0),
        })
    teacher_mean = round(float(teacher.mean()), 6) if n else None
    return {
        "rows": rows,
        "best": cheapest_within(rows, teacher_mean, tolerance, key="score"),
        "teacher_score": teacher_mean,
        "student_score": round(float(student.mean()), 6) if n else None,
        "metric": metric,
        "against": against,
        "tolerance": tolerance,
        "n": n,
    }
