"""The typed result of a training run: what ``kdstudio train --json`` prints and the run's stored
summary. Imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass

from kdstudio.core.events import JobResult


@dataclass(frozen=True)
class TrainResult(JobResult):
    """One finished run. ``valid_*`` are the valid metrics of the best checkpoint (None when the
    valid split cannot give them); ``test_*`` come from the best checkpoint's predictions on the
    test split. Under several processes only the main one predicts: the others leave
    ``n_test``, ``test_*`` and ``checkpoint`` None."""

    run: int
    best_step: int
    steps: int
    valid_accuracy: float | None
    valid_agreement: float | None
    valid_kl: float | None
    seconds: float
    student: str
    params: int
    device: str
    examples_per_s: float
    stopped_early: bool
    stop_reason: str | None  #: why it stopped before its last epoch (None when it did not)
    reviews_used: int
    teacher_calibration: int | None  #: version of the teacher's calibration the soft labels went through
    n_train: int
    n_valid: int
    hard_labels: bool
    peak_memory_mb: float | None
    n_test: int | None = None
    test_accuracy: float | None = None
    test_agreement: float | None = None
    checkpoint: str | None = None
    task: str = "classification"  #: the project's task: classification or generation
    kd: str | None = None  #: generation: "sequence", "token", or "references" (--hard-labels); else None
    valid_loss: float | None = None  #: the best checkpoint's valid loss (its run's loss terms)
    # generation runs (None for classification): the best checkpoint's valid perplexity (exp of the
    # cross-entropy per target completion token) and its test scores (kdstudio.core.predict.HeldOutScores)
    valid_perplexity: float | None = None
    test_rouge_l_teacher: float | None = None
    test_chrf_teacher: float | None = None
    test_rouge_l_references: float | None = None
    test_chrf_references: float | None = None
    test_bleu_references: float | None = None
    test_latency_ms: float | None = None
    test_tokens_per_s: float | None = None


__all__ = ["TrainResult"]
