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

from kdstudio.core.predict import kl_from_probs as kl_divergence  # the one KL (see predict)

ECE_BINS = 15


def accuracy(
    predicted: Sequence[int] | np.ndarray, gold: Sequence[int] | np.ndarray
) -> float | None:
    """Share of ``predicted == gold``; None when there is nothing to compare."""
    predicted, gold = np.asarray(predicted), np.asarray(gold)
    if predicted.size == 0:
        return None
    return float(np.mean(predicted == gold))


def expected_calibration_error(
    probs: np.ndarray, gold: Sequence[int] | np.ndarray, n_bins: int = ECE_BINS
) -> tuple[float | None, list[dict[str, Any]]]:
    """ECE with ``n_bins`` equal-width confidence bins (Guo et al. 2017, "On Calibration of Modern
    Neural Networks"): ``Σ_b |B_b|/n · |acc(B_b) − conf(B_b)|``, where confidence is the top
    probability and bin ``b`` holds confidences in ``(b/n_bins, (b+1)/n_bins]`` (0 goes to the
    first bin).

    Returns ``(ece, bins)``; each bin is ``{lo, hi, count, confidence, accuracy}`` with mean
    confidence and accuracy None for an empty bin — the points of a reliability diagram.
    """
    probs = np.asarray(probs, dtype=np.float64)
    gold = np.asarray(gold)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    if probs.size == 0:
        return None, [_bin(edges, b, 0, None, None) for b in range(n_bins)]
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == gold
    index = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        member = index == b
        count = int(member.sum())
        if count == 0:
            bins.append(_bin(edges, b, 0, None, None))
            continue
        conf, acc = float(confidence[member].mean()), float(correct[member].mean())
        ece += count / len(confidence) * abs(acc - conf)
        bins.append(_bin(edges, b, count, conf, acc))
    return float(ece), bins


def _bin(
    edges: np.ndarray, b: int, count: int, conf: float | None, acc: float | None
) -> dict[str, Any]:
    return {
        "lo": float(edges[b]),
        "hi": float(edges[b + 1]),
        "count": count,
        "confidence": conf,
        "accuracy": acc,
    }


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
