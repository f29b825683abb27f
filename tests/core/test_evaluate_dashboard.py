"""The dashboard's data jobs, with no GUI: the Pareto frontier, what ``load_dashboard`` reads for
an unevaluated and an evaluated run, and ``evaluate_runs`` over several runs in one job."""

from __future__ import annotations

from fakes.tiny_models import build_toy_project

from kdstudio.core.evaluate.dashboard import (
    DashboardData,
    EvaluatedRuns,
    ParetoPoint,
    evaluate_runs,
    load_dashboard,
    pareto_points,
)
from kdstudio.core.evaluate.result import EvalReport
from kdstudio.core.events import Log, run_to_end
from kdstudio.core.store import Project
from kdstudio.core.train import TrainConfig, train

FAST = {"epochs": 1, "batch_size": 16, "num_threads": 1}


def point(run: int, accuracy: float | None, latency_ms: float | None) -> ParetoPoint:
    return ParetoPoint(run=run, name=f"run {run}", student="cnn", accuracy=accuracy, latency_ms=latency_ms)


def test_pareto_frontier_keeps_runs_no_other_beats():
    points = pareto_points(
        [
            point(1, 0.80, 1.0),
            point(2, 0.85, 3.0),
            point(3, 0.82, 4.0),  # slower and worse than run 2
            point(4, 0.90, None),  # no latency: not plotted
        ]
    )
    assert [p.frontier for p in points] == [True, True, False, False]
    assert [p.run for p in points] == [1, 2, 3, 4] and not points[3].plotted


def test_two_equal_points_are_both_on_the_frontier():
    assert [p.frontier for p in pareto_points([point(1, 0.8, 2.0), point(2, 0.8, 2.0)])] == [True, True]


def test_load_dashboard_before_and_after_evaluate_runs(tmp_path):
    path = tmp_path / "toy.kdproj"
    build_toy_project(path)[0].close()
    first = run_to_end(train(path, TrainConfig(student="cnn", **FAST))).run
    second = run_to_end(train(path, TrainConfig(student="bilstm", **FAST))).run

    data = run_to_end(load_dashboard(path))
    assert isinstance(data, DashboardData)
    assert data.report is None and data.golden is None and data.points == ()
    assert [r.id for r in data.runs] == [first, second] and not any(r.evaluated for r in data.runs)
    assert set(data.unevaluated) == {first, second} and data.run in (first, second)

    events = list(evaluate_runs(path, [first, second], speed=False))
    assert [e.message for e in events if isinstance(e, Log) and e.message.startswith("evaluating")] == [
        f"evaluating run #{first} (1/2)", f"evaluating run #{second} (2/2)"]
    assert events[-1].result == EvaluatedRuns((first, second))

    data = run_to_end(load_dashboard(path, first))
    assert data.run == first and isinstance(data.report, EvalReport) and data.report.run == first
    with Project(path) as project:
        assert data.report.to_json() == project.evaluation(first)
    assert data.unevaluated == () and all(r.evaluated for r in data.runs)
    assert [p.run for p in data.points] == [first, second]
    assert data.points[0].accuracy == data.report.student_accuracy and data.points[0].latency_ms is None
    assert data.golden is not None and data.golden.n_golden == 0 and data.golden.run == first
    assert data.teacher_point is None  # the toy teacher is not timed
