"""Evaluation of a run on the test split: ``evaluate(project_path, run_id)`` yields events and
stores the report in the project; ``format_report`` turns it into text for the command line.

The report, a typed :class:`~kdstudio.core.evaluate.result.EvalReport` whose ``to_json()`` is what
``kdstudio eval --json`` prints, holds among others:

- quality: ``teacher_accuracy``, ``student_accuracy`` (vs gold), ``agreement`` (student top-1 =
  teacher top-1), ``retention`` (student / teacher accuracy), ``kl`` (mean KL(teacher ‖ student)),
  ``student_ece`` / ``teacher_ece`` (15 bins) with ``reliability`` bins (and, for a teacher
  calibrated by its harvest, ``teacher_ece_calibrated`` and ``teacher_calibration``), ``per_class`` precision,
  recall, F1 and support, and the ``confusion`` matrices student × teacher and student × gold;
- speed and size: ``student_params`` / ``teacher_params``, ``student_size_mb`` /
  ``teacher_size_mb``, p50/p95 latency at batch 1 and throughput at batch 64 of both in torch on
  ``device`` (on CPU with ``threads`` torch threads: all cores but one, as in training),
  ``speedup`` (teacher p50 / student p50 in the runtime ``speedup_runtime`` names: ``"torch"``, or
  ``"recorded"`` for an API teacher's recorded latency), ``teacher_cost_per_1m_usd``;
- ``latency``: every runtime timed in one interleaved session (:mod:`.runtimes`), tokenization
  included — ``{"student": {"torch", "onnx", "onnx_int8"}, "teacher": {"torch", "onnx"}}``, each
  ``{"batch1_ms_p50", "batch1_ms_p95", "batch64_ms_p50", "batch64_per_s"}`` or None;
  ``speedups`` per runtime family (``onnx_int8``: the ONNX float teacher against the int8
  student), and the sizes of the ONNX files (``student_onnx_size_mb``, ``student_int8_size_mb``,
  ``teacher_onnx_size_mb``);
- ``cascade``: per confidence threshold the share sent to the teacher, accuracy, $ per 1M
  predictions and mean time, and ``best`` (the cheapest threshold within 1 point of the teacher).

A generation project's report is a
:class:`~kdstudio.core.evaluate.generation_report.GenerationReport` (:mod:`.generation`: ROUGE-L,
chrF, BLEU, exact match and length ratio against the teacher and the references, latency per
completion and tokens/s, the cascade on the student's mean token log-probability);
:mod:`kdstudio.core.evaluate.tasks` is the one table that picks the evaluation by task.

The dashboard's data (the stored report, golden-set scores, the runs' Pareto points) and the job
that evaluates several runs in turn are in :mod:`kdstudio.core.evaluate.dashboard`.

Importing this package is cheap; numpy and torch load when a function runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kdstudio.core.evaluate.result import EvalReport
from kdstudio.core.events import CancelToken, Event


def evaluate(
    project_path: str | Path,
    run_id: int | None = None,
    *,
    speed: bool = True,
    onnx: bool = True,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """Evaluate run ``run_id`` (default: the latest finished run) on the test split.

    The project's task picks the evaluation (:mod:`kdstudio.core.evaluate.tasks`): this docstring
    describes classification's; a generation project finishes with a
    :class:`~kdstudio.core.evaluate.generation_report.GenerationReport` instead.
    Opens its own ``Project``; yields ``Progress(stage="eval")`` events, a ``Log`` warning when
    the teacher cannot be loaded for timing, and ``Finished(EvalReport)``. The report is saved
    with ``Project.save_evaluation`` (its ``to_json()``). ``speed=False`` skips the timing
    (latencies are None); ``onnx=False`` times torch only (no ONNX export: the ONNX entries of
    ``latency`` and ``speedups`` are None; a generation evaluation times torch only anyway).
    Raises ``ConfigError`` for a project without such a run or a run without test predictions.
    """
    from kdstudio.core.evaluate.tasks import evaluation_for
    from kdstudio.core.store import Project

    with Project(project_path) as project:
        task = project.task
    options = {"onnx": onnx} if task == "classification" else {}
    yield from evaluation_for(task).job(project_path, run_id, speed=speed, cancel=cancel, **options)


def _num(value: Any, spec: str = ".3f", suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def _speedup_basis(r: EvalReport) -> str:
    """What the headline speed-up compares: ``" (torch, batch 1)"``, or the recorded API latency."""
    if r.speedup is None or r.speedup_runtime is None:
        return ""
    if r.speedup_runtime == "recorded":
        return " (student in torch vs the teacher's recorded latency)"
    return f" ({r.speedup_runtime}, batch 1)"


#: The runtime matrix's rows: (caption, side, runtime) in the order they print.
RUNTIME_ROWS = (
    ("student torch", "student", "torch"),
    ("student ONNX", "student", "onnx"),
    ("student ONNX int8", "student", "onnx_int8"),
    ("teacher torch", "teacher", "torch"),
    ("teacher ONNX", "teacher", "onnx"),
)


def _runtime_lines(r: EvalReport) -> list[str]:
    """The latency matrix as a small table, and the speed-up in each runtime family."""
    if r.latency is None:
        return []
    lines = ["", f"{'runtime':22}{'b1 p50 ms':>11}{'b1 p95 ms':>11}{'b64 ms':>10}{'texts/s':>10}{'file MB':>9}"]
    sizes = {("student", "onnx"): r.student_onnx_size_mb, ("student", "onnx_int8"): r.student_int8_size_mb,
             ("teacher", "onnx"): r.teacher_onnx_size_mb}
    for caption, side, runtime in RUNTIME_ROWS:
        t = getattr(getattr(r.latency, side), runtime)
        if t is None:
            continue
        lines.append(f"{caption:22}{_num(t.batch1_ms_p50, '.2f'):>11}{_num(t.batch1_ms_p95, '.2f'):>11}"
                     f"{_num(t.batch64_ms_p50, '.1f'):>10}{_num(t.batch64_per_s, ',.0f'):>10}"
                     f"{_num(sizes.get((side, runtime)), '.2f'):>9}")
    s = r.speedups
    if s is not None and any(v is not None for v in (s.torch, s.onnx, s.onnx_int8)):
        lines.append(f"speed-up at batch 1: torch {_num(s.torch, '.1f', 'x')}   ONNX {_num(s.onnx, '.1f', 'x')}"
                     f"   ONNX int8 {_num(s.onnx_int8, '.1f', 'x')} (vs the teacher's ONNX float)")
    return lines


def format_report(report: EvalReport) -> str:
    """A readable multi-line summary of an evaluation report."""
    r = report
    lines = [
        f"run #{r.run} ({r.student}) against teacher #{r.teacher} ({r.teacher_spec}), "
        f"{r.n_test} test examples ({r.n_gold or 0} with gold labels)",
        "",
        f"{'':22}{'student':>12}{'teacher':>12}",
        f"{'accuracy':22}{_num(r.student_accuracy):>12}{_num(r.teacher_accuracy):>12}",
        f"{'macro F1':22}{_num(r.student_macro_f1):>12}{_num(r.teacher_macro_f1):>12}",
        f"{'ECE (15 bins)':22}{_num(r.student_ece):>12}{_num(r.teacher_ece):>12}",
        *([f"{'  calibrated teacher':22}{'':>12}{_num(r.teacher_ece_calibrated):>12}"
           f"   (v{r.teacher_calibration['version']}: temperature {r.teacher_calibration['temperature']:.2f}"
           + (", not applied" if not r.teacher_calibration.get("applied", True) else "") + ")"]
          if r.teacher_calibration else []),
        f"{'parameters':22}{_num(r.student_params, ','):>12}{_num(r.teacher_params, ','):>12}",
        f"{'size on disk (MB)':22}{_num(r.student_size_mb, '.2f'):>12}{_num(r.teacher_size_mb, '.2f'):>12}",
        f"{'latency p50 (ms)':22}{_num(r.student_latency_ms_p50, '.2f'):>12}"
        f"{_num(r.teacher_latency_ms_p50, '.2f'):>12}",
        f"{'latency p95 (ms)':22}{_num(r.student_latency_ms_p95, '.2f'):>12}"
        f"{_num(r.teacher_latency_ms_p95, '.2f'):>12}",
        f"{'throughput (/s, b64)':22}{_num(r.student_throughput_per_s, '.0f'):>12}"
        f"{_num(r.teacher_throughput_per_s, '.0f'):>12}",
        "",
        f"agreement {_num(r.agreement)}   retention {_num(r.retention)}   KL(teacher||student) "
        f"{_num(r.kl, '.4f')}   speed-up {_num(r.speedup, '.1f', 'x')}{_speedup_basis(r)}   on {r.device or '?'}"
        + (f" ({r.threads} thread{'s' if r.threads > 1 else ''})" if r.threads else ""),
        *_runtime_lines(r),
    ]
    if r.teacher_cost_per_1m_usd:
        lines.append(f"teacher cost: ${r.teacher_cost_per_1m_usd:,.2f} per 1M predictions")
    per_class = r.per_class.student if r.per_class is not None else ()
    if per_class:
        lines += ["", f"{'class':24}{'precision':>10}{'recall':>10}{'F1':>10}{'support':>9}"]
        lines += [
            f"{c.label[:23]:24}{c.precision:>10.3f}{c.recall:>10.3f}{c.f1:>10.3f}{c.support:>9}"
            for c in per_class
        ]
    b = r.best_cascade
    if b is not None:
        cost = f", ${b.cost_per_1m_usd:,.2f} per 1M" if b.cost_per_1m_usd else ""
        lines += [
            "",
            f"cascade: send cases with student confidence < {b.threshold:.2f} to the teacher "
            f"({b.share_to_teacher:.0%} of traffic) for accuracy {b.accuracy:.3f}{cost} "
            f"(teacher alone {_num(r.cascade.teacher_accuracy)})",
        ]
    return "\n".join(lines)


__all__ = ["EvalReport", "evaluate", "format_report"]
