"""Classification metrics as small pure functions on numpy arrays.

Probabilities are ``(n, k)`` arrays whose rows sum to 1; labels are ``(n,)`` integer arrays of
class indices. Every function returns plain Python numbers and lists, ready for JSON.
``kl_divergence(teacher, student)`` (per-row KL in nats) is ``kdstudio.core.predict.kl_from_probs``,
the one definition of KL that training uses too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kdstudio.core.calibration import expected_calibration_error  # shared with the harvest's fit
from kdstudio.core.predict import kl_from_probs as kl_divergence  # the one KL (see predict)


def accuracy(
    predicted: Sequence[int] | np.ndarray, gold: Sequence[int] | np.ndarray
) -> float | None:
    """Share of ``predicted == gold``; None when there is nothing to compare."""
    predicted, gold = np.asarray(predicted), np.asarray(gold)
    if predicted.size == 0:
        return None
    return float(np.mean(predicted == gold))


def confusion_matrix(
    rows: Sequence[int] | np.ndarray, cols: Sequence[int] | np.ndarray, n_labels: int
) -> list[list[int]]:
    """``m[i][j]`` = how many items have ``rows == i`` and ``cols == j`` (e.g. student × teacher)."""
    m = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(m, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)), 1)
    return m.tolist()


def per_class_prf(
    predicted: Sequence[int] | np.ndarray, gold: Sequence[int] | np.ndarray, labels: Sequence[str]
) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support (gold count) of each class; 0 where undefined."""
    m = np.asarray(confusion_matrix(predicted, gold, len(labels)), dtype=np.float64)
    out = []
    for i, name in enumerate(labels):
        tp, predicted_i, support = m[i, i], m[i, :].sum(), m[:, i].sum()
        precision = tp / predicted_i if predicted_i else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append(
            {
                "label": name,
                "precision": float(precision),
                "recall": float(recall),
                "f1": float(f1),
                "support": int(support),
            }
        )
    return out


def macro_f1(per_class: Sequence[dict[str, Any]]) -> float | None:
    """Mean F1 over the classes that have support."""
    scores = [c["f1"] for c in per_class if c["support"]]
    return float(np.mean(scores)) if scores else None


def percentile_ms(samples: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile of latency samples (linear interpolation), None when empty."""
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q)) if len(samples) else None


__all__ = [
    "accuracy",
    "confusion_matrix",
    "expected_calibration_error",
    "kl_divergence",
    "macro_f1",
    "per_class_prf",
    "percentile_ms",
]
