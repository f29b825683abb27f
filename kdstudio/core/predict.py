"""A student's predictions on the project's examples, and the scores stored with each one.

:func:`predict_examples` runs a saved student over the test split and the transfer set (train and
unlabeled, less the variants ``kdstudio augment`` made) and writes one ``predictions`` row per
example: probabilities, label, confidence, margin, entropy and KL(teacher ‖ student). Training
calls it with the best checkpoint when a run finishes; the evaluation report and the comparison
viewer read those rows.

:func:`kl_divergence` is the one definition of KL in KD Studio: the KD loss and the valid KL in
training (``kdstudio.core.train.losses``), the stored rows here and the evaluation report
(``kdstudio.core.evaluate.metrics``) all call it.

This stage sits below training and evaluation in the layers contract (pyproject.toml): both use
it, and training may not import evaluation. numpy loads on import; torch when a function runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

KL_FLOOR = 1e-12  # student probabilities are floored here before the log


def kl_divergence(target: Any, log_q: Any) -> Any:
    """Per-row ``KL(p ‖ q) = Σ p · (log p − log q)`` in nats over the last axis, with
    ``0 · log 0 = 0`` (Kullback and Leibler 1951).

    ``target`` holds probabilities ``p`` (rows summing to 1) and ``log_q`` the other side's
    log-probabilities, both torch tensors; differentiable in ``log_q``, so the KD loss uses it.
    """
    return (target.xlogy(target) - target * log_q).sum(-1)


def kl_from_probs(teacher: np.ndarray, student: np.ndarray, *, eps: float = KL_FLOOR) -> np.ndarray:
    """:func:`kl_divergence` of probability arrays: per-row ``KL(teacher ‖ student)`` in nats.

    Teacher rows are renormalised; student probabilities are floored at ``eps`` so a confident
    wrong student gives a large but finite value.
    """
    import torch

    t = np.asarray(teacher, dtype=np.float64)
    s = np.asarray(student, dtype=np.float64)
    t = t / t.sum(axis=-1, keepdims=True)
    log_s = np.log(np.maximum(s, eps))
    return kl_divergence(torch.from_numpy(t), torch.from_numpy(log_s)).numpy()


def entropy(probs: np.ndarray) -> np.ndarray:
    """Per-row Shannon entropy ``−Σ p log p`` in nats (terms with p = 0 are 0)."""
    p = np.asarray(probs, dtype=np.float64)
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def prediction_record(
    example: int, probs: np.ndarray, kl: float | None = None
) -> dict[str, Any]:
    """One ``predictions`` row: label, probabilities and how sure the student was."""
    top = np.sort(probs)[::-1]
    return {
        "example": example,
        "probs": [round(float(x), 6) for x in probs],
        "label": int(probs.argmax()),
        "confidence": float(top[0]),
        "margin": float(top[0] - (top[1] if len(top) > 1 else 0.0)),
        "entropy": float(entropy(probs)),
        "kl": kl,
        "latency_ms": None,
    }


@dataclass(frozen=True)
class HeldOutScores:
    """How the student did on the test split, from the prediction rows a run wrote
    (:func:`predict_examples`; a generation run's ``train.generation``). Every field is a
    ``TrainResult`` field of the same name. Generation: corpus ROUGE-L and chrF (fractions) of the
    student's completions against the teacher's (corrected where a person corrected it) and
    against the references, corpus BLEU against the references, and the mean latency and
    tokens/s of one completion (greedy, one prompt at a time)."""

    n_test: int
    test_accuracy: float | None
    test_agreement: float | None
    test_rouge_l_teacher: float | None = None
    test_chrf_teacher: float | None = None
    test_rouge_l_references: float | None = None
    test_chrf_references: float | None = None
    test_bleu_references: float | None = None
    test_latency_ms: float | None = None
    test_tokens_per_s: float | None = None


def predict_examples(
    project: Any,
    run_id: int,
    checkpoint: str | Path,
    *,
    teacher_id: int | None,
    device: str = "cpu",
    batch_size: int = 128,
) -> HeldOutScores:
    """Write the predictions of the student saved at ``checkpoint`` for run ``run_id`` — the test
    split, and the transfer set so the comparison viewer can show where the student parts from
    the teacher on the data it learned from — and return test accuracy and agreement with
    teacher ``teacher_id``. A project without a test split writes nothing."""
    from kdstudio.core.students import load_student, predict_probs

    test_ids = {r[0] for r in project.examples("test")}
    if not test_ids:
        return HeldOutScores(0, None, None)
    variants = project.augmented_ids()
    rows = sorted(project.examples("test") + project.examples("train")
                  + [r for r in project.examples("unlabeled") if r[0] not in variants])
    model, tokenizer, meta = load_student(checkpoint, device=device)
    probs = predict_probs(
        model, tokenizer, [r[1] for r in rows], batch_size=batch_size, max_length=meta["max_length"]
    ).astype(np.float64)
    n_labels = len(project.labels())
    teacher: dict[int, np.ndarray] = {}
    if teacher_id is not None:
        teacher = {
            o["id"]: np.asarray(o["probs"], dtype=np.float64)
            for o in project.teacher_outputs(teacher_id, ["test", "train", "unlabeled"])
            if o["probs"] is not None and len(o["probs"]) == n_labels
        }
    with_teacher = [i for i, (ex_id, _, _) in enumerate(rows) if ex_id in teacher]
    kl: dict[int, float] = {}
    if with_teacher:
        values = kl_from_probs(np.stack([teacher[rows[i][0]] for i in with_teacher]),
                               probs[with_teacher])
        kl = {rows[i][0]: float(v) for i, v in zip(with_teacher, values, strict=True)}
    records, hits, agree = [], [], []
    for (ex_id, _, gold), p in zip(rows, probs, strict=True):
        record = prediction_record(ex_id, p, kl.get(ex_id))
        if ex_id in test_ids:
            if ex_id in teacher:
                agree.append(record["label"] == int(teacher[ex_id].argmax()))
            if gold is not None:
                hits.append(record["label"] == gold)
        records.append(record)
    project.save_predictions(run_id, records)
    return HeldOutScores(
        len(test_ids),
        float(np.mean(hits)) if hits else None,
        float(np.mean(agree)) if agree else None,
    )


__all__ = [
    "HeldOutScores",
    "entropy",
    "kl_divergence",
    "kl_from_probs",
    "predict_examples",
    "prediction_record",
]
