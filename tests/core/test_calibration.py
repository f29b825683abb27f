"""Calibrating a teacher's verbalized distributions on gold labels: fitted on half, checked on
the other half, stored per teacher with a version, refitted only when the gold answers change."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from fakes.anthropic_server import FakeAnthropic, project_with_texts

from kdstudio.core.calibration import Calibration, calibrated, fit_calibration, held_out
from kdstudio.core.events import Log, run_to_end
from kdstudio.core.harvest import HarvestConfig, harvest
from kdstudio.core.store import Project

LABELS = [f"intent_{i}" for i in range(12)]


def overconfident(n: int, k: int = 12, accuracy: float = 0.6, stated: float = 0.95, seed: int = 0):
    """Answers that state ``stated`` for their top label but are right only ``accuracy`` of the time."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, k, n)
    top = np.where(rng.random(n) < accuracy, gold, (gold + rng.integers(1, k, n)) % k)
    probs = np.full((n, k), (1 - stated) / (k - 1))
    probs[np.arange(n), top] = stated
    return probs, gold


def test_an_overconfident_teacher_is_softened_and_checked_on_rows_it_was_not_fitted_on():
    probs, gold = overconfident(400)
    cal = fit_calibration(list(range(400)), probs, gold)
    assert cal is not None and cal.applied
    assert cal.n_fit + cal.n_check == 400 and 150 < cal.n_check < 250
    assert cal.temperature > 1.5  # softer
    assert cal.ece_before > 0.3 and cal.ece_after < 0.1
    assert cal.nll_after < cal.nll_before
    after = cal.apply(probs)
    assert np.allclose(after.sum(axis=1), 1.0) and (after.argmax(axis=1) == probs.argmax(axis=1)).all()


def test_a_calibrated_teacher_is_left_about_as_it_is():
    probs, gold = overconfident(600, accuracy=0.8, stated=0.8, seed=1)
    cal = fit_calibration(list(range(600)), probs, gold)
    assert cal is not None and 0.7 < cal.temperature < 1.4
    assert cal.ece_after < 0.08


def test_too_few_gold_rows_fit_nothing():
    probs, gold = overconfident(10)
    assert fit_calibration(list(range(10)), probs, gold) is None


def test_k_sample_answers_are_calibrated_before_the_votes_are_mixed_in():
    cal = Calibration(temperature=2.0)
    row = {"probs": [0.7, 0.2, 0.1], "components": {"verbalized": [0.9, 0.05, 0.05], "votes": [0.5, 0.5, 0.0]}}
    got = calibrated(row, cal)
    softened = cal.apply(np.asarray([[0.9, 0.05, 0.05]]))[0]
    assert got == pytest.approx(list(0.5 * softened + 0.5 * np.array([0.5, 0.5, 0.0])))
    assert calibrated({"probs": [0.7, 0.3]}, None) == [0.7, 0.3]
    assert calibrated({"probs": [0.7, 0.3]}, Calibration(temperature=3.0, applied=False)) == [0.7, 0.3]


def test_the_harvest_calibrates_a_claude_teacher_on_gold_training_rows(tmp_path):
    """A simulated teacher that states 0.95 and is right 60% of the time."""
    texts = [f"customer message number {i} about some banking problem" for i in range(120)]
    gold = {t: int(hashlib.sha256(t.encode()).hexdigest(), 16) % len(LABELS) for t in texts}

    def belief(text, labels, seen):
        wrong = int(hashlib.sha256(("w" + text).encode()).hexdigest(), 16) % 10 < 4
        top = labels[(gold[text] + 1) % len(labels)] if wrong else labels[gold[text]]
        return {lab: 0.95 if lab == top else 0.05 / (len(labels) - 1) for lab in labels}

    path = tmp_path / "p.kdproj"
    project = project_with_texts(path, texts, labels=tuple(LABELS))
    with project.transaction():
        for t in texts:
            project.conn.execute("UPDATE examples SET label = ? WHERE text = ?", (gold[t], t))
    project.close()
    with FakeAnthropic(distribution=belief) as server:
        cfg = HarvestConfig(teacher="claude:claude-haiku-5-5", concurrency=4,
                            options={"api_key": "test-key", "base_url": server.url})
        events = list(harvest(path, cfg))
        result = events[-1].result
        assert result.calibration is not None and result.calibration["version"] == 1
        cal = result.calibration
        assert cal["applied"] and (cal["temperature"] > 1.0 or cal["smoothing"] > 0)  # softer
        assert cal["ece_after"] < 0.5 * cal["ece_before"]
        assert any(isinstance(e, Log) and e.message.startswith("calibration v1: temperature") for e in events)
        again = run_to_end(harvest(path, cfg))  # nothing new answered: the same calibration, no refit
        assert again.calibration["version"] == 1
    with Project(path) as project:
        assert project.calibration(result.teacher)["version"] == 1
    assert sum(held_out(i) for i in range(1, 121)) == result.calibration["n_check"]


def test_training_reads_the_calibrated_soft_labels_and_records_the_version(tmp_path):
    from kdstudio.core.train.data import load_training_data

    path = tmp_path / "p.kdproj"
    project = project_with_texts(path, [f"text {i}" for i in range(40)], labels=tuple(LABELS))
    tid = project.upsert_teacher("claude:claude-haiku-5-5", "claude", "claude-haiku-5-5", "fp", {})
    from kdstudio.core.store import TeacherOutput

    raw = [[0.9] + [0.1 / 11] * 11 for _ in range(40)]
    project.save_outputs(tid, [TeacherOutput(i + 1, probs=p, method="verbalized") for i, p in enumerate(raw)])
    cal = Calibration(temperature=2.5, n_fit=20, n_check=20)
    version = project.save_calibration(tid, {k: v for k, v in cal.as_dict().items() if k != "version"})

    data = load_training_data(project, teacher_id=tid, hard_labels=False, seed=0)
    rows = data.train.teacher if len(data.valid) == 0 else np.concatenate([data.train.teacher, data.valid.teacher])
    assert data.calibration == version == 1
    assert np.allclose(rows, cal.apply(np.asarray(raw))[: len(rows)], atol=1e-6)
    assert any("calibration v1" in note for note in data.notes)
    plain = load_training_data(project, teacher_id=tid, hard_labels=False, seed=0, calibrate=False)
    assert plain.calibration is None and np.allclose(plain.train.teacher[0], raw[0], atol=1e-6)
    project.close()


def test_eval_reports_the_teacher_ece_before_and_after_calibration(tmp_path):
    from fakes.tiny_models import add_stored_run, build_toy_project

    from kdstudio.core.evaluate import format_report
    from kdstudio.core.evaluate.report import quality_report

    path = tmp_path / "toy.kdproj"
    project, teacher = build_toy_project(path, sizes={"train": 24, "valid": 6, "test": 60})
    project.close()
    run = add_stored_run(path)
    with Project(path) as project:
        before, _ = quality_report(project, run, project.run(run))
        assert before["teacher_ece_calibrated"] is None and before["teacher_calibration"] is None
        cal = Calibration(temperature=3.0, n_fit=12, n_check=12)
        project.save_calibration(teacher, {k: v for k, v in cal.as_dict().items() if k != "version"})
        after, _ = quality_report(project, run, project.run(run))
        rows = [o for o in project.teacher_outputs(teacher, ["test"])]
        gold = [o["gold"] for o in rows]
    from kdstudio.core.calibration import expected_calibration_error

    expected = expected_calibration_error(cal.apply([o["probs"] for o in rows]), gold)[0]
    assert after["teacher_ece"] == before["teacher_ece"]
    assert after["teacher_ece_calibrated"] == pytest.approx(expected)
    assert after["teacher_calibration"]["version"] == 1 and after["teacher_calibration"]["temperature"] == 3.0
    from kdstudio.core.evaluate.result import EvalReport

    text = format_report(EvalReport.from_json({**after, "labels": after["labels"]}))
    assert "calibrated teacher" in text and "v1: temperature 3.00" in text
