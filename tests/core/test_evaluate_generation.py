"""Evaluation of a generation run: corpus scores against the teacher and the references as
text_metrics computes them on the stored completions, per-example scores written where missing,
latency and tokens/s (measured for a local teacher, recorded for Claude), the cascade on the
student's mean token log-probability, the dashboard's fields and the command line."""

from __future__ import annotations

import json

import pytest
from fakes.generation_project import make_generation_project

from kdstudio.cli import main
from kdstudio.core.evaluate import evaluate
from kdstudio.core.evaluate.dashboard import load_dashboard
from kdstudio.core.evaluate.generation_report import GenerationReport
from kdstudio.core.evaluate.tasks import report_from_json
from kdstudio.core.events import run_to_end
from kdstudio.core.store import Project
from kdstudio.core.text_metrics import corpus_scores, primary_score, rouge_l

GEN_EVAL_JSON_KEYS = [
    "task", "run", "student", "teacher", "teacher_spec", "n_test", "n_teacher", "n_references", "reviews_applied",
    "rouge_l", "chrf", "exact_match", "length_ratio", "rouge_l_reference", "chrf_reference", "exact_match_reference",
    "length_ratio_reference", "student_vs_teacher", "student_vs_references", "teacher_vs_references", "retention", "student_mean_logprob",
    "scores_written", "device", "threads", "speed_prompts", "student_params", "student_size_mb",
    "student_latency_ms_p50", "student_latency_ms_p95", "student_tokens_per_s", "teacher_params", "teacher_size_mb",
    "teacher_latency_ms_p50", "teacher_latency_ms_p95", "teacher_tokens_per_s", "teacher_timing",
    "teacher_cost_per_1m_usd", "speedup", "cascade", "seconds",
]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    gen = make_generation_project(tmp_path_factory.mktemp("gen"), n_test=12)
    report = run_to_end(evaluate(gen.path, gen.run))
    return gen, report


def stored(gen):
    with Project(gen.path) as project:
        predictions = project.predictions(gen.run, "test")
        teacher = {o["id"]: o["completion"] for o in project.teacher_outputs(gen.teacher, ["test"])}
        references = project.references_of(split="test")
    return predictions, teacher, references


def test_report_holds_the_corpus_scores_of_the_stored_completions(evaluated):
    gen, report = evaluated
    predictions, teacher, references = stored(gen)
    texts = [p["completion"] for p in predictions]
    ids = [p["example"] for p in predictions]
    assert isinstance(report, GenerationReport) and report.n_test == 12 == report.n_teacher == report.n_references
    assert max(len(r) for r in references.values()) == 3  # several references per prompt
    assert report.student_vs_teacher == report.student_vs_teacher.of(corpus_scores(texts, [[teacher[i]] for i in ids]))
    assert report.student_vs_references.rouge_l == corpus_scores(texts, [references[i] for i in ids])["rouge_l"]
    assert report.student_vs_references.chrf == corpus_scores(texts, [references[i] for i in ids])["chrf"]
    hand = corpus_scores([teacher[i] for i in ids], [references[i] for i in ids])
    assert report.teacher_vs_references.rouge_l == hand["rouge_l"] and report.teacher_vs_references.bleu == hand["bleu"]
    student = sum(rouge_l(t, references[i]) for t, i in zip(texts, ids, strict=True))
    assert report.retention == pytest.approx(student / sum(rouge_l(teacher[i], references[i]) for i in ids), abs=1e-6)


def test_missing_per_example_scores_are_computed_and_stored(evaluated):
    gen, report = evaluated
    predictions, teacher, references = stored(gen)
    assert report.scores_written == 12
    for p in predictions:
        assert set(p["scores"]) == {"teacher", "references"}
        assert p["scores"]["references"]["rouge_l"] == rouge_l(p["completion"], references[p["example"]])
        assert p["scores"]["teacher"]["rouge_l"] == rouge_l(p["completion"], [teacher[p["example"]]])
        assert p["score"] == primary_score(p["scores"])


def test_speed_of_student_and_local_teacher_is_measured_on_the_same_prompts(evaluated):
    _, report = evaluated
    assert report.teacher_timing == "measured" and report.speed_prompts == 12 and report.device == "cpu"
    assert report.teacher_params > report.student_params > 0 and report.teacher_size_mb > report.student_size_mb > 0
    for who in ("student", "teacher"):
        p50, p95, tps = (getattr(report, f"{who}_{k}") for k in ("latency_ms_p50", "latency_ms_p95", "tokens_per_s"))
        assert 0 < p50 <= p95 and tps > 0


def test_cascade_sends_more_as_the_threshold_rises_and_all_of_it_scores_as_the_teacher(evaluated):
    _, report = evaluated
    plan = report.cascade
    shares = [r.share_to_teacher for r in plan.rows]
    assert shares == sorted(shares) and shares[0] == 0.0 and shares[-1] == 1.0
    assert [r.threshold for r in plan.rows] == sorted(r.threshold for r in plan.rows)
    assert plan.against == "references" and plan.n == 12
    assert plan.rows[-1].score == pytest.approx(report.teacher_vs_references.rouge_l, abs=1e-6)
    assert plan.rows[0].score == pytest.approx(report.student_vs_references.rouge_l, abs=1e-6)
    assert plan.best is not None and plan.best.score >= plan.teacher_score - plan.tolerance - 1e-9
    assert plan.best_within(1.0) == plan.rows[0]  # any score will do: send nothing


def test_json_keys_are_pinned_and_the_stored_report_reads_back(evaluated):
    gen, report = evaluated
    assert list(report.to_json()) == GEN_EVAL_JSON_KEYS
    assert report.rouge_l == report.student_vs_teacher.rouge_l is not None
    assert report.exact_match_reference == report.student_vs_references.exact is not None
    with Project(gen.path) as project:
        again = report_from_json(project.evaluation(gen.run))
    assert again == report


def test_dashboard_shows_a_generation_run_in_typed_fields(evaluated):
    gen, report = evaluated
    data = run_to_end(load_dashboard(gen.path))
    assert data.task == "generation" and data.report is None and data.generation == report
    assert data.quality_name == "ROUGE-L vs references"
    (point,) = data.points
    assert point.accuracy == report.student_vs_references.rouge_l and point.latency_ms == report.student_latency_ms_p50
    assert data.teacher_point.accuracy == report.teacher_vs_references.rouge_l


def test_a_claude_teacher_reports_its_recorded_latency_tokens_per_second_and_cost(tmp_path):
    gen = make_generation_project(tmp_path, n_test=6, teacher_spec="claude:claude-haiku-4-5", latency_ms=800.0,
                                  output_tokens=20, scores=True)
    with Project(gen.path) as project:
        project.set_review(project.examples("test")[0][0], corrected_completion="Alimentum serves food.")
        project.set_review(project.examples("test")[1][0], exclude=True)
    report = run_to_end(evaluate(gen.path, gen.run, speed=False))
    assert report.teacher_timing == "recorded" and report.student_latency_ms_p50 is None
    assert 600 < report.teacher_latency_ms_p50 < 1000 and 20 < report.teacher_tokens_per_s < 30
    assert report.teacher_cost_per_1m_usd == pytest.approx(1000.0)
    assert report.teacher_params is None and report.scores_written == 0
    assert report.reviews_applied == {"corrected": 1, "excluded": 1} and report.n_test == 5


def test_kdstudio_eval_prints_the_generation_report(evaluated, capsys):
    gen, _ = evaluated
    assert main(["eval", str(gen.path), "--run", str(gen.run), "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == GEN_EVAL_JSON_KEYS
    assert main(["eval", str(gen.path)]) == 0
    text = capsys.readouterr().out
    assert "student vs references" in text and "tokens/s" in text and "cascade:" in text
