"""Evaluation of a trained run: the report's keys and values, speed, teachers, storage, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fakes.tiny_models import LABELS, build_toy_project, save_tiny_bert

from kdstudio.core.errors import ConfigError
from kdstudio.core.evaluate import EvalReport, evaluate, format_report
from kdstudio.core.events import Finished, Progress, run_to_end
from kdstudio.core.store import Project, TeacherOutput
from kdstudio.core.train import TrainConfig, train

FAST = {"epochs": 1, "batch_size": 16, "num_threads": 1}
DESIGN_KEYS = {
    "run",
    "n_test",
    "teacher_accuracy",
    "student_accuracy",
    "agreement",
    "retention",
    "kl",
    "student_ece",
    "teacher_ece",
    "student_params",
    "teacher_params",
    "student_latency_ms_p50",
    "teacher_latency_ms_p50",
    "speedup",
    "student_size_mb",
}


#: Every key of ``kdstudio eval --json``, in the order it prints them.
EVAL_JSON_KEYS = [
    "run", "student", "teacher", "teacher_spec", "labels", "n_test", "n_gold", "reviews_applied", "n_teacher",
    "teacher_accuracy", "student_accuracy", "agreement", "retention", "kl", "student_ece", "teacher_ece",
    "teacher_ece_calibrated", "teacher_calibration", "reliability", "per_class", "student_macro_f1", "teacher_macro_f1", "confusion", "device", "student_params",
    "student_size_mb", "student_latency_ms_p50", "student_latency_ms_p95", "student_throughput_per_s", "threads",
    "teacher_params", "teacher_size_mb", "teacher_latency_ms_p50", "teacher_latency_ms_p95",
    "teacher_throughput_per_s", "teacher_cost_per_1m_usd", "teacher_timing", "speedup", "speedup_runtime", "speedups",
    "latency", "student_onnx_size_mb", "student_int8_size_mb", "teacher_onnx_size_mb", "cascade", "seconds",
]


def _trained(path, **toy):
    build_toy_project(path, **toy)[0].close()
    return run_to_end(train(path, TrainConfig(student="bilstm", **FAST))).run


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "toy.kdproj"
    return path, _trained(path)


def test_report_has_the_design_keys_and_is_consistent_with_the_predictions(toy_run):
    path, run_id = toy_run
    events = list(evaluate(path, speed=False))
    assert isinstance(events[-1], Finished)
    assert [e.done for e in events if isinstance(e, Progress)][-1] == 4
    report = events[-1].result
    assert isinstance(report, EvalReport)
    assert set(report.to_json()) >= DESIGN_KEYS and report.run == run_id
    with Project(path) as project:
        preds = project.predictions(run_id, split="test")
        tid = project.run(run_id)["teacher"]
        teacher = {o["id"]: o["probs"] for o in project.teacher_outputs(tid, ["test"])}
        gold = {i: g for i, _, g in project.examples("test")}
        assert project.evaluation(run_id) == json.loads(json.dumps(report.to_json()))
    s = np.array([p["label"] for p in preds])
    t = np.array([int(np.argmax(teacher[p["example"]])) for p in preds])
    g = np.array([gold[p["example"]] for p in preds])
    assert report.n_test == len(preds) == 12
    assert report.student_accuracy == pytest.approx(np.mean(s == g))
    assert report.teacher_accuracy == pytest.approx(np.mean(t == g))
    assert report.agreement == pytest.approx(np.mean(s == t))
    assert report.retention == pytest.approx(
        report.student_accuracy / report.teacher_accuracy
    )
    assert report.kl == pytest.approx(np.mean([p["kl"] for p in preds]), rel=1e-3)
    assert np.array(report.confusion.student_teacher).sum() == 12
    assert [c.support for c in report.per_class.student] == [4, 4, 4]
    assert len(report.reliability.student) == 15
    assert report.student_params > 0 and report.student_size_mb > 0.1
    assert report.student_latency_ms_p50 is None and report.speedup is None
    plan = report.cascade
    assert len(plan.rows) == 21 and plan.best.accuracy >= report.teacher_accuracy - 0.01
    text = format_report(report)
    assert "accuracy" in text and "agreement" in text and "cascade" in text and "sports" in text


def test_speed_is_measured_for_the_student_and_a_fake_teacher_is_reported_not_timed(toy_run):
    path, _ = toy_run
    events = list(evaluate(path))
    report = events[-1].result
    assert 0 < report.student_latency_ms_p50 <= report.student_latency_ms_p95
    assert report.student_throughput_per_s > 0 and report.device == "cpu"
    assert report.teacher_latency_ms_p50 is None and report.speedup is None
    assert any("not timed" in getattr(e, "message", "") for e in events)


def test_a_local_teacher_is_loaded_counted_and_timed(tmp_path):
    from transformers import AutoConfig

    folder = save_tiny_bert(tmp_path / "teacher", n_labels=3)
    config = AutoConfig.from_pretrained(folder)
    config.id2label = dict(enumerate(LABELS))
    config.label2id = {v: k for k, v in config.id2label.items()}
    config.save_pretrained(folder)
    path = tmp_path / "p.kdproj"
    run_id = _trained(path, teacher_spec=f"hf:{folder}")
    report = run_to_end(evaluate(path, run_id))
    assert report.teacher_params > 10_000 and report.teacher_size_mb > 0
    assert report.teacher_latency_ms_p50 > 0 and report.teacher_throughput_per_s > 0
    assert report.speedup == pytest.approx(
        report.teacher_latency_ms_p50 / report.student_latency_ms_p50, rel=1e-2
    )
    assert report.teacher_cost_per_1m_usd == 0 and report.teacher_timing == "measured"


def test_an_api_teacher_reports_recorded_latency_and_cost_per_million(tmp_path):
    path = tmp_path / "c.kdproj"
    project, tid = build_toy_project(path, teacher_spec="claude:claude-haiku-test")
    rows = project.teacher_outputs(tid)
    project.save_outputs(
        tid,
        [
            TeacherOutput(
                example=r["id"], probs=r["probs"], cost_usd=0.0005, latency_ms=400.0 + r["id"]
            )
            for r in rows
        ],
    )
    project.close()
    run_to_end(train(path, TrainConfig(student="bilstm", **FAST)))
    report = run_to_end(evaluate(path))
    assert report.teacher_timing == "recorded"
    assert 400 < report.teacher_latency_ms_p50 < 500 and report.teacher_params is None
    assert report.teacher_cost_per_1m_usd == pytest.approx(500.0)
    assert report.speedup == pytest.approx(
        report.teacher_latency_ms_p50 / report.student_latency_ms_p50, rel=1e-2
    )
    best = report.cascade.best
    assert best.cost_per_1m_usd == pytest.approx(best.share_to_teacher * 500.0)
    assert "per 1M predictions" in format_report(report)


def test_missing_runs_are_clear_errors(tmp_path, toy_run):
    path = tmp_path / "empty.kdproj"
    build_toy_project(path)[0].close()
    with pytest.raises(ConfigError, match="no finished run"):
        run_to_end(evaluate(path))
    with pytest.raises(ConfigError, match="no run #99"):
        run_to_end(evaluate(toy_run[0], 99))


def test_eval_cli_prints_json_with_the_design_keys(toy_run, capsys):
    from kdstudio.cli import main

    path, run_id = toy_run
    assert main(["eval", str(path), "--run", str(run_id), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= DESIGN_KEYS and out["run"] == run_id
    assert list(out) == EVAL_JSON_KEYS
    assert list(out["cascade"]) == ["rows", "best", "teacher_accuracy", "tolerance", "n"]
    assert list(out["cascade"]["rows"][0]) == ["threshold", "share_to_teacher", "accuracy", "cost_per_1m_usd",
                                               "mean_ms"]
    assert list(out["reliability"]["student"][0]) == ["lo", "hi", "count", "confidence", "accuracy"]
    assert list(out["per_class"]["teacher"][0]) == ["label", "precision", "recall", "f1", "support"]
    assert list(out["confusion"]) == ["student_teacher", "student_gold"]
    assert list(out["reviews_applied"]) == ["corrected", "excluded"]


def test_a_stored_report_reads_back_as_the_same_typed_report(toy_run):
    path, run_id = toy_run
    report = run_to_end(evaluate(path, run_id, speed=False))
    with Project(path) as project:
        stored = project.evaluation(run_id)
    again = EvalReport.from_json(stored)
    assert again == report and again.to_json() == stored
    assert again.best_cascade == report.cascade.best
    # a report an earlier version stored, without the keys added since, still reads
    older = {k: v for k, v in stored.items() if k not in ("threads", "teacher_timing", "reviews_applied")}
    old = EvalReport.from_json({**older, "a_key_no_longer_written": 1})
    assert old.threads is None and old.reviews_applied is None and old.student_accuracy == report.student_accuracy


def test_the_report_is_built_from_every_part_and_nothing_else(toy_run):
    path, run_id = toy_run
    parts = run_to_end(evaluate(path, run_id, speed=False)).to_json()
    with pytest.raises(ValueError, match="missing \\['kl'\\]"):
        EvalReport.of({k: v for k, v in parts.items() if k != "kl"})
    with pytest.raises(ValueError, match="unknown \\['klx'\\]"):
        EvalReport.of({**parts, "klx": 0.0})
