"""What the evaluation dashboard shows, read in a worker: ``load_dashboard`` (the stored report of
one run, its golden-set scores, and one point per evaluated run for the accuracy-vs-latency plot
with its Pareto frontier) and ``evaluate_runs`` (``kdstudio eval`` for several runs in one job).

Both are jobs like every other: generators of events that end with ``Finished`` and a typed
result, so the GUI only draws what they return.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from kdstudio.core.evaluate.generation_report import GenerationReport
from kdstudio.core.evaluate.result import EvalReport
from kdstudio.core.events import CancelToken, Event, Finished, JobResult, Log


@dataclass(frozen=True)
class ParetoPoint:
    """One evaluated run on the accuracy-vs-latency plot (a generation run's ``accuracy`` is its
    ROUGE-L: see ``DashboardData.quality_name``). ``frontier``: no other run is at least
    as fast and as accurate and strictly better in one (see :func:`pareto_points`)."""

    run: int
    name: str
    student: str
    accuracy: float | None
    latency_ms: float | None
    params: int | None = None
    size_mb: float | None = None
    frontier: bool = False

    @property
    def plotted(self) -> bool:
        """It has both numbers the plot needs."""
        return self.accuracy is not None and self.latency_ms is not None


@dataclass(frozen=True)
class TeacherPoint:
    """The teacher on the same plot (it has a latency only when it was timed or recorded)."""

    name: str
    accuracy: float | None
    latency_ms: float


@dataclass(frozen=True)
class RunChoice:
    """A finished run the dashboard can show; ``evaluated``: it has a stored report."""

    id: int
    name: str
    student: str
    evaluated: bool


@dataclass(frozen=True)
class GoldenScore:
    """Student and teacher accuracy of one run on the golden set (the examples a person checked),
    as :func:`kdstudio.core.evaluate.golden.golden_report` computes them."""

    run: int
    n_golden: int
    n_student: int
    n_teacher: int
    student_accuracy: float | None
    teacher_accuracy: float | None
    floor: float | None
    below_floor: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GoldenScore:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass(frozen=True, kw_only=True)
class DashboardData(JobResult):
    """Everything the dashboard draws. ``run``: the run shown (the latest finished one unless
    asked; None when the project has none); ``report`` and ``golden`` are None while that run is
    not evaluated. ``runs``: every finished run, oldest first; ``unevaluated``: those without a
    report; ``points``: one per evaluated run."""

    run: int | None
    report: EvalReport | None
    golden: GoldenScore | None
    runs: tuple[RunChoice, ...]
    points: tuple[ParetoPoint, ...]
    teacher_point: TeacherPoint | None
    unevaluated: tuple[int, ...]
    golden_floor: float | None
    #: the project's task; a generation project's runs have ``generation`` (the shown run's report)
    #: instead of ``report``, and their points' ``accuracy`` is the score named by ``quality_name``
    #: (ROUGE-L against the references, else against the teacher)
    task: str = "classification"
    generation: GenerationReport | None = None
    quality_name: str = "accuracy"


@dataclass(frozen=True)
class EvaluatedRuns(JobResult):
    """What :func:`evaluate_runs` finishes with: the runs it evaluated, in order."""

    runs: tuple[int, ...]


def pareto_points(points: Sequence[ParetoPoint]) -> list[ParetoPoint]:
    """``points`` with ``frontier`` set: True when no other point is at least as fast and as
    accurate and strictly better in one (lower ``latency_ms``, higher ``accuracy``). Points
    without both numbers are never on the frontier."""
    scored = [(i, p) for i, p in enumerate(points) if p.plotted]

    def beaten(i: int, p: ParetoPoint) -> bool:
        return any(
            j != i
            and q.latency_ms <= p.latency_ms
            and q.accuracy >= p.accuracy
            and (q.latency_ms < p.latency_ms or q.accuracy > p.accuracy)
            for j, q in scored
        )

    on_front = {i for i, p in scored if not beaten(i, p)}
    return [replace(p, frontier=i in on_front) for i, p in enumerate(points)]


def load_dashboard(
    project_path: str | Path, run_id: int | None = None, *, cancel: CancelToken | None = None
) -> Iterator[Event]:
    """Read what the dashboard shows for ``run_id`` (default: the project's preferred finished
    run) and finish with :class:`DashboardData`. Reads only; evaluates nothing."""
    from kdstudio.core.evaluate.golden import golden_report
    from kdstudio.core.evaluate.tasks import report_from_json
    from kdstudio.core.store import Project

    with Project(project_path) as project:
        task = project.task
        finished = [r for r in project.runs() if r["status"] == "finished"]
        if run_id is None and finished:
            run_id = project.preferred_run()
        stored = project.evaluation(run_id) if run_id is not None else None
        shown = report_from_json(stored) if stored is not None else None
        report = shown if isinstance(shown, EvalReport) else None
        generation = shown if isinstance(shown, GenerationReport) else None
        golden = GoldenScore.from_json(golden_report(project, run_id)) if report is not None else None
        points, unevaluated = [], []
        for r in finished:
            stored_run = project.evaluation(r["id"])
            if stored_run is None:
                unevaluated.append(r["id"])
                continue
            rep = shown if r["id"] == run_id and shown is not None else report_from_json(stored_run)
            points.append(
                ParetoPoint(
                    run=r["id"],
                    name=r.get("name") or r["student"],
                    student=r["student"],
                    accuracy=_quality(rep),
                    latency_ms=rep.student_latency_ms_p50,
                    params=rep.student_params,
                    size_mb=rep.student_size_mb,
                )
            )
        teacher_point = None
        if shown is not None and shown.teacher_latency_ms_p50 is not None:
            teacher_point = TeacherPoint(
                name=f"teacher {shown.teacher_spec or ''}".strip(),
                accuracy=shown.teacher_quality if generation is not None else shown.teacher_accuracy,
                latency_ms=shown.teacher_latency_ms_p50,
            )
        runs = tuple(
            RunChoice(
                id=r["id"],
                name=r.get("name") or r["student"],
                student=r["student"],
                evaluated=r["id"] not in unevaluated,
            )
            for r in finished
        )
        floor = project.settings().get("golden_floor")
    yield Finished(
        DashboardData(
            run=run_id,
            report=report,
            golden=golden,
            runs=runs,
            points=tuple(pareto_points(points)),
            teacher_point=teacher_point,
            unevaluated=tuple(unevaluated),
            golden_floor=floor,
            task=task,
            generation=generation,
            quality_name=generation.quality_name if generation is not None
            else "ROUGE-L" if task == "generation" else "accuracy",
        )
    )


def _quality(report: EvalReport | GenerationReport) -> float | None:
    """A run's height on the quality-vs-latency plot: accuracy, or a generation run's ROUGE-L."""
    return report.quality if isinstance(report, GenerationReport) else report.student_accuracy


def evaluate_runs(
    project_path: str | Path,
    run_ids: Sequence[int],
    *,
    speed: bool = True,
    cancel: CancelToken | None = None,
) -> Iterator[Event]:
    """``kdstudio eval`` for each run in turn, in one job (each report is stored); passes on
    their events and finishes with :class:`EvaluatedRuns`."""
    from kdstudio.core.evaluate import evaluate

    done = []
    for i, run_id in enumerate(run_ids, start=1):
        yield Log(f"evaluating run #{run_id} ({i}/{len(run_ids)})")
        for event in evaluate(project_path, run_id, speed=speed, cancel=cancel):
            if not isinstance(event, Finished):
                yield event
        done.append(run_id)
    yield Finished(EvaluatedRuns(tuple(done)))


__all__ = [
    "DashboardData",
    "EvaluatedRuns",
    "GoldenScore",
    "ParetoPoint",
    "RunChoice",
    "TeacherPoint",
    "evaluate_runs",
    "load_dashboard",
    "pareto_points",
]
