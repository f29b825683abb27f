"""Calibrated soft labels from a teacher that has no log-probabilities.

Claude states its distribution in words (the *verbalized* distribution, see
``teachers.claude.prompt``); such confidences are known to be badly calibrated (mostly too sure).
Where the project has gold labels, :func:`fit_calibration` fits a correction on half of the gold
rows the teacher answered and checks it on the other half:

    q ∝ p^(1/T)                 then    q ← (1 − ε)·q + ε/k

a temperature ``T`` on log p (Guo et al. 2017) and a share ``ε`` of uniform mass (label smoothing),
both chosen by the negative log-likelihood of the gold labels on the fitting half (grid search,
then a finer grid around the best ``T``). ``ε`` stays 0 unless it lowers that NLL. The check half
then gives ECE and NLL before and after; when the correction does not lower the check half's NLL
it is recorded but not applied (``applied`` False). Rows split by a hash of the example id, so a
rerun fits on the same rows.

A :class:`Calibration` is stored with the teacher (``Project.save_calibration``), numbered: each
fit is a new ``version``, and a training run records the version it trained on. Training applies
it to every soft label (:meth:`Calibration.apply`); with k-sample answers the correction applies to
the mean verbalized distribution before it is mixed with the vote frequencies
(:meth:`Calibration.apply_components`).

ECE (:func:`expected_calibration_error`) lives here because the harvest (which fits) sits below
evaluation in the pipeline; ``evaluate.metrics`` re-exports it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ECE_BINS = 15
MIN_GOLD = 20  #: gold rows (both halves together) needed before a calibration is fitted
_EPS = 1e-6
_SMOOTHING = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


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


def _bin(edges: np.ndarray, b: int, count: int, conf: float | None, acc: float | None) -> dict[str, Any]:
    return {"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": count, "confidence": conf, "accuracy": acc}


@dataclass(frozen=True)
class Calibration:
    """One fitted correction of a teacher's distributions, with how it was checked."""

    temperature: float = 1.0
    smoothing: float = 0.0
    version: int = 0  #: 1, 2, ... per teacher; 0 for one not stored
    applied: bool = True  #: False: it did not help on the check half, so training leaves p as it is
    n_fit: int = 0
    n_check: int = 0
    ece_before: float | None = None  #: on the check half
    ece_after: float | None = None
    nll_before: float | None = None
    nll_after: float | None = None

    def apply(self, probs: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """The calibrated distributions (rows of ``probs``); unchanged when not ``applied``."""
        p = np.asarray(probs, dtype=np.float64)
        if not self.applied:
            return p
        return _transform(p, self.temperature, self.smoothing)

    def apply_components(self, verbalized: Sequence[float], votes: Sequence[float], weight: float = 0.5) -> np.ndarray:
        """A k-sample answer: the calibrated mean verbalized distribution mixed with the vote
        frequencies (``weight`` on the verbalized part, as the harvest mixes them)."""
        v = self.apply(np.asarray([verbalized]))[0]
        q = weight * v + (1.0 - weight) * np.asarray(votes, dtype=np.float64)
        return q / q.sum()

    def summary(self) -> str:
        """One line: what was fitted and what it did on the rows it was not fitted on."""
        what = f"temperature {self.temperature:.2f}" + (f", smoothing {self.smoothing:g}" if self.smoothing else "")
        check = ""
        if self.ece_before is not None and self.ece_after is not None:
            check = f"; teacher ECE on {self.n_check} held-out gold rows {self.ece_before:.3f} → {self.ece_after:.3f}"
        state = "" if self.applied else " (not applied: it did not lower the held-out NLL)"
        return f"calibration v{self.version}: {what} fitted on {self.n_fit} gold rows{check}{state}"

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, fields: dict[str, Any] | None) -> Calibration | None:
        if not fields:
            return None
        return cls(**{k: v for k, v in fields.items() if k in cls.__dataclass_fields__})


def verbalized_part(row: dict[str, Any]) -> list[float] | None:
    """The distribution a calibration corrects: a k-sample answer's mean verbalized distribution,
    else the stored one."""
    components = row.get("components")
    return components["verbalized"] if components else row.get("probs")


def calibrated(row: dict[str, Any], calibration: Calibration | None) -> list[float] | None:
    """The soft label KD trains on for a stored answer (``teacher_outputs`` row)."""
    if calibration is None or not calibration.applied or row.get("probs") is None:
        return row.get("probs")
    components = row.get("components")
    if components:
        return calibration.apply_components(components["verbalized"], components["votes"]).tolist()
    return calibration.apply(np.asarray([row["probs"]]))[0].tolist()


def _transform(p: np.ndarray, temperature: float, smoothing: float) -> np.ndarray:
    logits = np.log(np.clip(p, _EPS, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    q = np.exp(logits)
    q /= q.sum(axis=-1, keepdims=True)
    if smoothing:
        q = (1.0 - smoothing) * q + smoothing / q.shape[-1]
    return q


def _nll(p: np.ndarray, gold: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(p[np.arange(len(gold)), gold], _EPS, 1.0))))


def held_out(example_id: int) -> bool:
    """Whether a gold row checks the calibration rather than fitting it (a fixed hash half)."""
    return hashlib.sha256(f"calibration:{example_id}".encode()).digest()[0] % 2 == 1


def fit_calibration(
    example_ids: Sequence[int], probs: np.ndarray | Sequence[Sequence[float]], gold: Sequence[int], *,
    version: int = 0,
) -> Calibration | None:
    """Fit a :class:`Calibration` on the gold rows that :func:`held_out` leaves in and check it
    on the others; None with fewer than ``MIN_GOLD`` rows or an empty half."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(gold, dtype=np.int64)
    if len(y) < MIN_GOLD:
        return None
    check = np.array([held_out(int(i)) for i in example_ids], dtype=bool)
    if check.all() or not check.any():
        return None
    fit_p, fit_y, chk_p, chk_y = p[~check], y[~check], p[check], y[check]

    def loss(t: float, s: float) -> float:
        return _nll(_transform(fit_p, t, s), fit_y)

    best = (loss(1.0, 0.0), 1.0, 0.0)
    for s in _SMOOTHING:
        for t in np.exp(np.linspace(np.log(0.25), np.log(16.0), 41)):
            best = min(best, (loss(float(t), s), float(t), s))
    _, t0, s0 = best
    for t in t0 * np.exp(np.linspace(-0.1, 0.1, 21)):
        best = min(best, (loss(float(t), s0), float(t), s0))
    _, temperature, smoothing = best
    after = _transform(chk_p, temperature, smoothing)
    nll_before, nll_after = _nll(chk_p, chk_y), _nll(after, chk_y)
    return Calibration(
        temperature=round(temperature, 4), smoothing=smoothing, version=version, applied=nll_after < nll_before,
        n_fit=len(fit_y), n_check=len(chk_y),
        ece_before=expected_calibration_error(chk_p, chk_y)[0], ece_after=expected_calibration_error(after, chk_y)[0],
        nll_before=round(nll_before, 4), nll_after=round(nll_after, 4),
    )
