"""The typed evaluation report of a generation run: what ``kdstudio eval --json`` prints for a
generation project, what the project stores (``Project.save_evaluation``) and what the dashboard,
the model card and the export read.

:class:`GenerationReport`'s fields are the ``--json`` keys in the order they are printed. Scores are
fractions in [0, 1] (see :mod:`kdstudio.core.text_metrics`) except ``length_ratio``. A
stored report carries ``"task": "generation"``, which is how
:func:`kdstudio.core.evaluate.tasks.report_from_json` tells it from a classification report.
Imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from kdstudio.core.events import JobResult


@dataclass(frozen=True)
class CorpusScores:
    """A split's scores against one kind of target (:func:`~kdstudio.core.text_metrics.corpus_scores`):
    ``n`` examples scored, mean ROUGE-L and exact match, corpus chrF and BLEU, the length ratio."""

    n: int
    rouge_l: float | None = None
    chrf: float | None = None
    bleu: float | None = None
    exact: float | None = None
    length_ratio: float | None = None

    @classmethod
    def of(cls, data: Mapping[str, Any] | None) -> CorpusScores | None:
        """None when nothing was scored (``n`` is 0 or missing)."""
        if not data or not data.get("n"):
            return None
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})


@dataclass(frozen=True)
class GenerationCascadeRow:
    """Send a prompt to the teacher when the student's mean token log-probability is below
    ``threshold``: the share sent, the resulting mean ``score`` (the plan's metric), $ per 1M
    completions and the mean time per completion."""

    threshold: float
    share_to_teacher: float
    score: float | None
    cost_per_1m_usd: float
    mean_ms: float | None


@dataclass(frozen=True)
class GenerationCascadePlan:
    """One row per threshold over the range of the student's confidences (the last one, at 0, sends
    every prompt), and ``best``: the row sending the fewest prompts whose score is within
    ``tolerance`` of the teacher's. ``metric`` is the score (``rouge_l``), ``against`` what it is
    measured against (``references``, else ``teacher``: then the teacher scores 1). ``n``: prompts
    with a student completion, a teacher completion and (against references) references."""

    rows: tuple[GenerationCascadeRow, ...]
    best: GenerationCascadeRow | None
    teacher_score: float | None
    student_score: float | None
    metric: str
    against: str
    tolerance: float
    n: int

    def best_within(self, tolerance: float) -> GenerationCascadeRow | None:
        """The best row for another target (the rule ``best`` was chosen by)."""
        from kdstudio.core.evaluate.cascade import cheapest_within

        return cheapest_within(self.rows, self.teacher_score, tolerance, key="score")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GenerationCascadePlan:
        best = data.get("best")
        return cls(
            rows=tuple(GenerationCascadeRow(**r) for r in data.get("rows") or ()),
            best=GenerationCascadeRow(**best) if best else None,
            teacher_score=data.get("teacher_score"),
            student_score=data.get("student_score"),
            metric=data.get("metric", "rouge_l"),
            against=data.get("against", "references"),
            tolerance=data.get("tolerance", 0.01),
            n=data.get("n", 0),
        )


#: The flat ``--json`` keys (DESIGN's contract) → (the nested scores, the metric) they repeat.
FLAT = {
    "rouge_l": ("student_vs_teacher", "rouge_l"),
    "chrf": ("student_vs_teacher", "chrf"),
    "exact_match": ("student_vs_teacher", "exact"),
    "length_ratio": ("student_vs_teacher", "length_ratio"),
    "rouge_l_reference": ("student_vs_references", "rouge_l"),
    "chrf_reference": ("student_vs_references", "chrf"),
    "exact_match_reference": ("student_vs_references", "exact"),
    "length_ratio_reference": ("student_vs_references", "length_ratio"),
}


@dataclass(frozen=True, kw_only=True)
class GenerationReport(JobResult):
    """One generation run evaluated on the test split.

    Quality: the student's completions against the teacher's (``student_vs_teacher``; a person's
    corrected completion replaces the teacher's) and against the references
    (``student_vs_references``, several per prompt where the data has them), the teacher's own
    completions against the references (``teacher_vs_references``) and ``retention``: the
    student's ROUGE-L against the references over the teacher's, on the prompts both have.

    Speed: latency per completion (p50/p95, ms) and tokens/s of the student, measured with
    :func:`~kdstudio.core.generate.generate` at batch 1 on ``speed_prompts`` test prompts, on
    ``device``. ``teacher_timing``: ``"measured"`` (a local ``lm:`` teacher, timed on the same
    prompts, interleaved with the student), ``"recorded"`` (an API or recorded teacher: the
    latencies and output tokens its harvest stored) or None. ``speedup``: teacher p50 / student p50.

    ``scores_written``: test predictions that had no per-example scores and got them now.
    ``rouge_l`` … ``length_ratio_reference`` repeat the headline scores flat (:data:`FLAT`).
    """

    task: str = "generation"
    # what was evaluated
    run: int
    student: str | None
    teacher: int | None
    teacher_spec: str | None
    n_test: int
    n_teacher: int
    n_references: int
    reviews_applied: dict[str, int] | None
    # the headline scores, flat (student vs the teacher's completions; ``*_reference``: vs the references)
    rouge_l: float | None = None
    chrf: float | None = None
    exact_match: float | None = None
    length_ratio: float | None = None
    rouge_l_reference: float | None = None
    chrf_reference: float | None = None
    exact_match_reference: float | None = None
    length_ratio_reference: float | None = None
    # quality
    student_vs_teacher: CorpusScores | None
    student_vs_references: CorpusScores | None
    teacher_vs_references: CorpusScores | None
    retention: float | None
    student_mean_logprob: float | None
    scores_written: int
    # speed and size
    device: str | None
    threads: int | None
    speed_prompts: int | None
    student_params: int | None
    student_size_mb: float | None
    student_latency_ms_p50: float | None
    student_latency_ms_p95: float | None
    student_tokens_per_s: float | None
    teacher_params: int | None
    teacher_size_mb: float | None
    teacher_latency_ms_p50: float | None
    teacher_latency_ms_p95: float | None
    teacher_tokens_per_s: float | None
    teacher_timing: str | None
    teacher_cost_per_1m_usd: float | None
    speedup: float | None
    # the cascade (None without teacher completions on the test split)
    cascade: GenerationCascadePlan | None
    seconds: float | None

    @classmethod
    def of(cls, parts: Mapping[str, Any]) -> GenerationReport:
        """The report from the parts the evaluation assembled; every field but ``task`` must be there."""
        names = {f.name for f in fields(cls)} - {"task"} - set(FLAT)
        missing, unknown = names - set(parts), set(parts) - names - {"task"}
        if missing or unknown:
            raise ValueError(f"generation report: missing {sorted(missing)}, unknown {sorted(unknown)}")
        return cls._typed(parts)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GenerationReport:
        """A report as :meth:`to_json` wrote it; keys an earlier KD Studio did not write are None."""
        return cls._typed(data)

    @classmethod
    def _typed(cls, data: Mapping[str, Any]) -> GenerationReport:
        values = {f.name: data.get(f.name) for f in fields(cls)}
        values["task"] = "generation"
        values["scores_written"] = values["scores_written"] or 0
        for name in ("student_vs_teacher", "student_vs_references", "teacher_vs_references"):
            value = values[name]
            values[name] = value if isinstance(value, CorpusScores) or value is None else CorpusScores.of(value)
        for key, (part, metric) in FLAT.items():
            scores = values[part]
            values[key] = getattr(scores, metric) if scores is not None else None
        if isinstance(values["cascade"], Mapping):
            values["cascade"] = GenerationCascadePlan.from_json(values["cascade"])
        return cls(**values)

    @property
    def best_cascade(self) -> GenerationCascadeRow | None:
        return self.cascade.best if self.cascade is not None else None

    @property
    def quality(self) -> float | None:
        """The one quality number a plot shows: ROUGE-L against the references, else against the teacher."""
        part = self.student_vs_references or self.student_vs_teacher
        return part.rouge_l if part is not None else None

    @property
    def quality_name(self) -> str:
        """What :attr:`quality` is, in words."""
        return "ROUGE-L vs references" if self.student_vs_references is not None else "ROUGE-L vs teacher"

    @property
    def teacher_quality(self) -> float | None:
        """The teacher on the same axis: its ROUGE-L against the references (1 against itself)."""
        if self.student_vs_references is not None:
            return self.teacher_vs_references.rouge_l if self.teacher_vs_references is not None else None
        return 1.0 if self.student_vs_teacher is not None else None


__all__ = ["CorpusScores", "GenerationCascadePlan", "GenerationCascadeRow", "GenerationReport"]
