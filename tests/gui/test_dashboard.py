"""The evaluation dashboard: cards and the cascade slider against ``kdstudio eval --json``, the
empty state's Evaluate button, the golden-set floor, the Pareto frontier and the size sweep
(offscreen, on a toy project with a one-epoch CNN)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil

import pytest
from fakes.tiny_models import build_toy_project

from kdstudio.gui.evaluate import EvaluationDashboard
from kdstudio.gui.job_host import JobHost

FAST = {"epochs": 1, "batch_size": 16, "num_threads": 1}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A toy project with one trained CNN run and the JSON ``kdstudio eval --json`` printed."""
    from kdstudio.cli import main
    from kdstudio.core.events import run_to_end
    from kdstudio.core.train import TrainConfig, train

    folder = tmp_path_factory.mktemp("dash")
    path = folder / "toy.kdproj"
    build_toy_project(path, sizes={"train": 36, "unlabeled": 12, "valid": 12, "test": 30})[
        0
    ].close()
    run = run_to_end(train(path, TrainConfig(student="cnn", **FAST))).run
    copy_project(path, folder / "fresh.kdproj")  # kept as trained, before any evaluation
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["eval", str(path), "--run", str(run), "--json"]) == 0
    return path, run, json.loads(out.getvalue())


def copy_project(source, target):
    """Copy a project file and its run checkpoints."""
    shutil.copy(source, target)
    shutil.copytree(str(source) + ".runs", str(target) + ".runs")
    return target


@pytest.fixture
def copy_of(trained, tmp_path):
    """A private copy of the trained, evaluated project that a test may change."""
    path, run, report = trained
    return copy_project(path, tmp_path / path.name), run, report


def open_dashboard(qtbot, path, jobs=None) -> EvaluationDashboard:
    widget = EvaluationDashboard(path, jobs or JobHost())
    qtbot.addWidget(widget)
    widget.resize(1280, 900)
    widget.show()
    qtbot.waitUntil(lambda: widget.data is not None, timeout=5000)
    return widget


def test_cards_show_the_report(qtbot, trained):
    path, run, report = trained
    dash = open_dashboard(qtbot, path)
    assert dash.run_id == run and dash.stack.currentWidget() is dash.page
    assert dash.cards["accuracy"].value.text() == f"{report['student_accuracy']:.1%}"
    assert f"{report['teacher_accuracy']:.1%}" in dash.cards["accuracy"].detail.text()
    assert dash.cards["agreement"].value.text() == f"{report['agreement']:.1%}"
    assert dash.cards["retention"].value.text() == f"{report['retention']:.1%}"
    assert dash.cards["size"].value.text() == f"{report['student_size_mb']:,.1f} MB"
    xs, ys = dash.reliability.points["student"]
    bins = [b for b in report["reliability"]["student"] if b["count"]]
    assert xs == pytest.approx([b["confidence"] for b in bins]) and ys == pytest.approx(
        [b["accuracy"] for b in bins]
    )


def test_cascade_slider_numbers_match_eval_json(qtbot, trained):
    path, _run, report = trained
    dash = open_dashboard(qtbot, path)
    rows = report["cascade"]["rows"]
    card = dash.cascade
    assert card.slider.maximum() == len(rows) - 1
    best = report["cascade"]["best"]
    if best is not None:
        assert card.current().threshold == best["threshold"]
    for i in (0, len(rows) // 2, len(rows) - 1):
        card.slider.setValue(i)
        expected = rows[i]
        assert dataclasses.asdict(card.current()) == expected
        assert card.threshold_label.text() == f"confidence < {expected['threshold']:.2f}"
        assert card.share.text() == f"{expected['share_to_teacher']:.1%}"
        assert card.accuracy.text() == f"{expected['accuracy']:.1%}"
        assert card.cost.text() == f"${expected['cost_per_1m_usd']:,.2f}"
    card.slider.setValue(len(rows) - 1)  # everything to the teacher: its accuracy
    assert card.current().share_to_teacher == 1.0
    assert card.current().accuracy == pytest.approx(report["cascade"]["teacher_accuracy"])


def test_an_unevaluated_run_offers_evaluate_and_the_worker_fills_the_dashboard(
    qtbot, trained, tmp_path
):
    from kdstudio.core.store import Project

    source, run, _report = trained
    path = copy_project(source.parent / "fresh.kdproj", tmp_path / "fresh.kdproj")
    dash = open_dashboard(qtbot, path)
    assert dash.stack.currentWidget() is dash.empty
    assert dash.empty.action.text() == f"Evaluate run #{run}"
    with qtbot.waitSignal(dash.evaluated, timeout=60000):
        dash.empty.action.click()
    qtbot.waitUntil(lambda: dash.stack.currentWidget() is dash.page, timeout=5000)
    with Project(path) as project:
        assert project.evaluation(run) is not None


def test_golden_floor_flags_a_run_below_it(qtbot, copy_of):
    from kdstudio.core.store import Project

    path, run, _report = copy_of
    with Project(path) as project:
        preds = {p["example"]: p["label"] for p in project.predictions(run)}
        test = project.examples("test")
        wrong = [(ex, g) for ex, _t, g in test if preds[ex] != g][:1]
        right = [(ex, g) for ex, _t, g in test if preds[ex] == g][:1]
        for ex, _g in wrong + right:
            project.set_review(ex, golden=True)
    dash = open_dashboard(qtbot, path)
    golden = dash.data.golden
    assert golden.n_golden == len(wrong + right)
    expected = len(right) / len(wrong + right)
    assert golden.student_accuracy == pytest.approx(expected)
    dash.golden.use_floor.setChecked(True)
    dash.golden.floor.setValue(min(1.0, expected + 0.05))
    qtbot.waitUntil(
        lambda: (
            dash.data.golden.floor is not None
            and dash.data.golden.floor == pytest.approx(min(1.0, expected + 0.05))
        ),
        timeout=5000,
    )
    assert dash.data.golden.below_floor is True
    assert "below the golden-set floor" in dash.flag.text()
    with Project(path) as project:
        assert project.settings()["golden_floor"] == pytest.approx(min(1.0, expected + 0.05))


def test_size_sweep_trains_presets_in_one_job_uses_reviews_and_feeds_the_pareto_plot(
    qtbot, copy_of
):
    from kdstudio.core.store import Project

    path, run, _report = copy_of
    with Project(path) as project:
        train_ids = [ex for ex, _t, _g in project.examples("train")]
        project.set_review(train_ids[0], corrected_label=1)
        project.set_review(train_ids[1], exclude=True)
    jobs = JobHost()
    dash = open_dashboard(qtbot, path, jobs)
    worker = dash.start_sweep(["cnn", "bilstm"], epochs=1)
    assert worker is not None and jobs.current is worker
    qtbot.waitUntil(lambda: worker.status is not None, timeout=120000)
    assert worker.status == "finished", worker.message
    swept = worker.result.runs
    assert [s.student for s in swept] == ["cnn", "bilstm"] and all(s.run for s in swept)
    with Project(path) as project:
        for s in swept:
            assert project.run(s.run)["summary"]["reviews_used"] == 2
            assert project.evaluation(s.run) is not None
    qtbot.waitUntil(lambda: len(dash.data.points) == 3, timeout=5000)
    assert any(p.frontier for p in dash.data.points)
    assert run in [p.run for p in dash.data.points]


def test_the_cascade_card_states_its_rule_and_lets_the_person_choose_the_target(qtbot):
    from kdstudio.core.evaluate.result import CascadePlan, CascadeRow
    from kdstudio.gui.evaluate.cards import CascadeCard

    rows = (CascadeRow(0.0, 0.0, 0.895, 0.0, 1.0), CascadeRow(0.5, 0.15, 0.905, 0.0, 2.0),
            CascadeRow(0.8, 0.4, 0.902, 0.0, 4.0), CascadeRow(1.0, 1.0, 0.90, 0.0, 9.0))
    plan = CascadePlan(rows=rows, best=rows[0], teacher_accuracy=0.90, tolerance=0.01, n=200)
    card = CascadeCard()
    qtbot.addWidget(card)
    card.set_plan(plan)
    assert card.target.currentText() == "within 1 point" and card.current() == rows[0]
    note = card.note.text()
    assert note.startswith("Best = the fewest cases sent to the teacher with accuracy within 1 point of the "
                           "teacher's (90.0% alone): the student answers everything, for 89.5% accuracy.")
    assert "The most accurate: 90.5% with 15% sent (+1.0 points)." in note
    card.target.setCurrentIndex(card.target.findText("the teacher's or better"))
    assert card.current() == rows[1]  # the slider moves to the new best
    assert "at least the teacher's (90.0% alone): below 0.50 confidence, 15% of cases go to the teacher" in card.note.text()
    assert "most accurate" not in card.note.text()
    assert plan.best_within(0.0) == rows[1] and plan.best_within(0.005) == plan.best_within(0.02) == rows[0]


def test_the_latency_table_shows_every_runtime_and_the_speedup_names_its_runtime(qtbot, trained):
    from kdstudio.core.evaluate.result import EvalReport
    from kdstudio.gui.evaluate.latency_card import ROWS

    path, _run, report = trained
    dash = open_dashboard(qtbot, path)
    card = dash.latency
    assert card.isVisible() and card.table.isVisible()
    student = report["latency"]["student"]
    for runtime in ("torch", "onnx", "onnx_int8"):
        cells = card.text_of("student", runtime)
        assert cells[0] != "–" and cells[3] == f"{student[runtime]['batch64_per_s']:,.0f}", runtime
    assert card.text_of("student", "onnx_int8")[5] == f"{report['student_int8_size_mb']:,.1f} MB"
    assert card.text_of("teacher", "onnx")[:5] == ["–"] * 5  # the toy's teacher is not a model: not timed
    assert len(card.cells) == len(ROWS)
    # a teacher timed in torch: the headline names the runtime it compares
    timed = EvalReport.from_json({**report, "speedup": 28.94, "speedup_runtime": "torch",
                                  "speedups": {"torch": 28.94, "onnx": 20.0, "onnx_int8": 41.5},
                                  "latency": {**report["latency"], "teacher": {"torch": student["torch"], "onnx": None}}})
    dash._show_report(timed)
    assert dash.cards["speedup"].value.text() == "28.9×"
    assert dash.cards["speedup"].detail.text() == "faster · torch, batch 1"
    assert card.text_of("student", "onnx_int8")[4] == "41.5×" and card.text_of("student", "onnx")[4] == "20.0×"
    assert card.text_of("teacher", "torch")[0] != "–"


def test_an_evaluation_stored_before_the_runtime_matrix_still_shows(qtbot, copy_of):
    from kdstudio.core.store import Project

    path, run, report = copy_of
    new = ("speedup_runtime", "speedups", "latency", "student_onnx_size_mb", "student_int8_size_mb",
           "teacher_onnx_size_mb")
    older = {k: v for k, v in report.items() if k not in new}
    older.update(speedup=12.5, teacher_latency_ms_p50=10.0)
    with Project(path) as project:
        project.save_evaluation(run, older)
    dash = open_dashboard(qtbot, path)
    assert dash.stack.currentWidget() is dash.page
    assert dash.cards["speedup"].value.text() == "12.5×"
    assert "vs 10 ms p50" in dash.cards["speedup"].detail.text()
    assert not dash.latency.table.isVisible() and "Evaluate again" in dash.latency.note.text()
