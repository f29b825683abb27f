"""The typed evaluation report: what ``kdstudio eval --json`` prints, what the project stores
(``Project.save_evaluation``) and what the dashboard, the model card and the demo read.

:class:`EvalReport`'s fields are the ``--json`` keys in the order they are printed; the nested
parts (reliability bins, per-class scores, confusion matrices, the cascade) are small frozen
dataclasses whose fields are their JSON keys. ``EvalReport.from_json`` reads a stored report back,
also one an earlier KD Studio wrote. Imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from kdstudio.core.events import JobResult


@dataclass(frozen=True)
class ReliabilityBin:
    """Confidences in ``(lo, hi]``: how many, their mean confidence and accuracy (None when empty)."""

    lo: float
    hi: float
    count: int
    confidence: float | None
    accuracy: float | None


@dataclass(frozen=True)
class Reliability:
    """The reliability diagram's bins of the student and of the teacher."""

    student: tuple[ReliabilityBin, ...]
    teacher: tuple[ReliabilityBin, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reliability:
        return cls(**{who: tuple(ReliabilityBin(**b) for b in data.get(who) or ()) for who in ("student", "teacher")})


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall, F1 and support (gold count) of one label."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class PerClass:
    student: tuple[ClassScores, ...]
    teacher: tuple[ClassScores, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PerClass:
        return cls(**{who: tuple(ClassScores(**c) for c in data.get(who) or ()) for who in ("student", "teacher")})


@dataclass(frozen=True)
class Confusion:
    """``student_teacher[i][j]``: test rows the student called ``i`` and the teacher ``j``;
    ``student_gold`` the same against the gold label."""

    student_teacher: tuple[tuple[int, ...], ...]
    student_gold: tuple[tuple[int, ...], ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Confusion:
        return cls(**{k: tuple(tuple(row) for row in data.get(k) or ()) for k in ("student_teacher", "student_gold")})


@dataclass(frozen=True)
class CascadeRow:
    """Send a case to the teacher when the student's confidence is below ``threshold``: the share
    sent, the accuracy against gold, $ per 1M predictions and the mean time per prediction."""

    threshold: float
    share_to_teacher: float
    accuracy: float | None
    cost_per_1m_usd: float
    mean_ms: float | None


@dataclass(frozen=True)
class CascadePlan:
    """One row per threshold, and ``best``: the cheapest row within ``tolerance`` of the teacher's
    accuracy (None when no row gets there). ``n``: the cases with gold and teacher labels."""

    rows: tuple[CascadeRow, ...]
    best: CascadeRow | None
    teacher_accuracy: float | None
    tolerance: float
    n: int

    def best_within(self, tolerance: float) -> CascadeRow | None:
        """The best row for another target: the fewest cases sent to the teacher with an accuracy
        within ``tolerance`` of the teacher's (the rule ``best`` was chosen by)."""
        from kdstudio.core.evaluate.cascade import cheapest_within

        return cheapest_within(self.rows, self.teacher_accuracy, tolerance)

    def most_accurate(self) -> CascadeRow | None:
        """The row with the highest accuracy (the fewest sent among equals)."""
        known = [r for r in self.rows if r.accuracy is not None]
        return max(known, key=lambda r: (r.accuracy, -r.share_to_teacher)) if known else None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CascadePlan:
        best = data.get("best")
        return cls(
            rows=tuple(CascadeRow(**r) for r in data.get("rows") or ()),
            best=CascadeRow(**best) if best else None,
            teacher_accuracy=data.get("teacher_accuracy"),
            tolerance=data.get("tolerance", 0.01),
            n=data.get("n", 0),
        )


@dataclass(frozen=True)
class RuntimeLatency:
    """One model in one runtime, tokenization included: p50 and p95 ms of a one-text call, p50 ms
    of a 64-text call and the texts per second that gives."""

    batch1_ms_p50: float | None
    batch1_ms_p95: float | None
    batch64_ms_p50: float | None
    batch64_per_s: float | None

    @classmethod
    def maybe(cls, data: Mapping[str, Any] | None) -> RuntimeLatency | None:
        return cls(**{f.name: data.get(f.name) for f in fields(cls)}) if data else None


@dataclass(frozen=True)
class StudentLatency:
    """The student in torch, as an ONNX float file and as its int8 twin (None: not measured)."""

    torch: RuntimeLatency | None
    onnx: RuntimeLatency | None
    onnx_int8: RuntimeLatency | None


@dataclass(frozen=True)
class TeacherLatency:
    """A local teacher in torch and exported to ONNX (None: not measured, or a metered teacher)."""

    torch: RuntimeLatency | None
    onnx: RuntimeLatency | None


@dataclass(frozen=True)
class LatencyMatrix:
    """Every runtime measured in one interleaved session (:func:`~kdstudio.core.evaluate.speed.time_interleaved`)."""

    student: StudentLatency
    teacher: TeacherLatency

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LatencyMatrix:
        s, t = data.get("student") or {}, data.get("teacher") or {}
        return cls(
            student=StudentLatency(**{k: RuntimeLatency.maybe(s.get(k)) for k in ("torch", "onnx", "onnx_int8")}),
            teacher=TeacherLatency(**{k: RuntimeLatency.maybe(t.get(k)) for k in ("torch", "onnx")}),
        )


@dataclass(frozen=True)
class Speedups:
    """Teacher batch-1 p50 / student batch-1 p50 in one runtime family: ``torch`` both in torch,
    ``onnx`` both as ONNX float, ``onnx_int8`` the teacher as ONNX float against the int8 student
    (the teacher is not quantized). None where either side was not measured."""

    torch: float | None
    onnx: float | None
    onnx_int8: float | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Speedups:
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})


@dataclass(frozen=True, kw_only=True)
class EvalReport(JobResult):
    """One run evaluated on the test split (see :mod:`kdstudio.core.evaluate` for what each part
    means). ``teacher_timing`` is ``"measured"`` (a local teacher, timed like the student),
    ``"recorded"`` (a metered teacher: the latencies its harvest recorded) or None (not timed).
    ``latency`` holds every runtime timed in one interleaved session (:mod:`~kdstudio.core.evaluate.runtimes`);
    the flat ``*_latency_ms_*`` and ``*_throughput_per_s`` keys are its torch column, and ``speedup``
    compares the runtime ``speedup_runtime`` names. Reports stored before these keys read them as None."""

    # what was evaluated
    run: int
    student: str | None
    teacher: int | None
    teacher_spec: str | None
    labels: tuple[str, ...]
    n_test: int
    n_gold: int
    reviews_applied: dict[str, int] | None
    n_teacher: int
    # quality
    teacher_accuracy: float | None
    student_accuracy: float | None
    agreement: float | None
    retention: float | None
    kl: float | None
    student_ece: float | None
    teacher_ece: float | None
    #: with a calibrated teacher: its ECE on test through the calibration, and the calibration
    teacher_ece_calibrated: float | None = None
    teacher_calibration: dict[str, Any] | None = None
    reliability: Reliability | None
    per_class: PerClass | None
    student_macro_f1: float | None
    teacher_macro_f1: float | None
    confusion: Confusion | None
    # speed and size
    device: str | None
    student_params: int | None
    student_size_mb: float | None
    student_latency_ms_p50: float | None
    student_latency_ms_p95: float | None
    student_throughput_per_s: float | None
    threads: int | None
    teacher_params: int | None
    teacher_size_mb: float | None
    teacher_latency_ms_p50: float | None
    teacher_latency_ms_p95: float | None
    teacher_throughput_per_s: float | None
    teacher_cost_per_1m_usd: float | None
    teacher_timing: str | None
    speedup: float | None
    #: the runtime the headline ``speedup`` compares (the flat latency keys are its batch-1 figures)
    speedup_runtime: str | None = None
    #: the speed-up in each runtime family, and every runtime's latency (one interleaved session)
    speedups: Speedups | None = None
    latency: LatencyMatrix | None = None
    student_onnx_size_mb: float | None = None
    student_int8_size_mb: float | None = None
    teacher_onnx_size_mb: float | None = None
    # the cascade (None without gold labels and teacher answers on the test split)
    cascade: CascadePlan | None
    seconds: float | None

    @classmethod
    def of(cls, parts: Mapping[str, Any]) -> EvalReport:
        """The report from the parts the evaluation assembled (plain numbers, lists and dicts, as
        the metric functions return them); every field must be there and nothing else."""
        names = [f.name for f in fields(cls)]
        missing, unknown = set(names) - set(parts), set(parts) - set(names)
        if missing or unknown:
            raise ValueError(f"evaluation report: missing {sorted(missing)}, unknown {sorted(unknown)}")
        return cls._typed(parts)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EvalReport:
        """A report as :meth:`to_json` wrote it (a stored one: ``Project.evaluation``). Keys an
        earlier KD Studio did not write are None; keys this one does not know are left out."""
        return cls._typed(data)

    @classmethod
    def _typed(cls, data: Mapping[str, Any]) -> EvalReport:
        values = {f.name: data.get(f.name) for f in fields(cls)}
        for name, nested in _NESTED.items():
            if values[name] is not None:
                values[name] = nested(values[name])
        values["labels"] = tuple(values["labels"] or ())
        return cls(**values)

    @property
    def best_cascade(self) -> CascadeRow | None:
        """The cascade's cheapest threshold within a point of the teacher, when there is one."""
        return self.cascade.best if self.cascade is not None else None


_NESTED = {
    "reliability": Reliability.from_json,
    "per_class": PerClass.from_json,
    "confusion": Confusion.from_json,
    "cascade": CascadePlan.from_json,
    "speedups": Speedups.from_json,
    "latency": LatencyMatrix.from_json,
}


__all__ = [
    "CascadePlan",
    "CascadeRow",
    "ClassScores",
    "Confusion",
    "EvalReport",
    "LatencyMatrix",
    "PerClass",
    "Reliability",
    "ReliabilityBin",
    "RuntimeLatency",
    "Speedups",
    "StudentLatency",
    "TeacherLatency",
]
