"""Golden-set accuracy: the examples a person checked, scored against their corrected labels."""

from __future__ import annotations

from fakes.tiny_models import build_toy_project

from kdstudio.core.evaluate.golden import golden_accuracy, golden_report


def test_golden_accuracy_uses_the_corrected_label_over_the_gold_label():
    reviews = {
        1: {"golden": True, "corrected_label": None},
        2: {"golden": True, "corrected_label": 2},  # gold says 0, a person says 2
        3: {"golden": True, "corrected_label": None},
        4: {"golden": False, "corrected_label": 1},  # not golden: ignored
    }
    gold = {1: 0, 2: 0, 3: 1, 4: 1}
    student = {1: 0, 2: 2, 3: 0, 4: 1}
    teacher = {1: 0, 2: 0, 3: 1}
    result = golden_accuracy(reviews, gold, student, teacher, floor=0.7)
    assert result["n_golden"] == 3
    assert result["n_student"] == 3 and result["student_accuracy"] == 2 / 3
    assert result["n_teacher"] == 3 and result["teacher_accuracy"] == 2 / 3
    assert result["below_floor"] is True


def test_golden_examples_without_any_label_or_prediction_are_not_scored():
    reviews = {
        1: {"golden": True, "corrected_label": None},
        2: {"golden": True, "corrected_label": 1},
    }
    result = golden_accuracy(reviews, {1: None, 2: 0}, {2: 1}, {})
    assert (
        result["n_golden"] == 2 and result["n_student"] == 1 and result["student_accuracy"] == 1.0
    )
    assert result["teacher_accuracy"] is None and result["n_teacher"] == 0
    assert result["below_floor"] is False  # no floor set


def test_no_golden_set_gives_none_and_never_flags():
    result = golden_accuracy({}, {}, {}, {}, floor=0.9)
    assert result["student_accuracy"] is None and result["below_floor"] is False


def test_golden_report_reads_reviews_predictions_teacher_and_floor(tmp_path):
    project, teacher_id = build_toy_project(tmp_path / "g.kdproj")
    test = project.examples("test")
    outputs = {o["id"]: o["label"] for o in project.teacher_outputs(teacher_id, ["test"])}
    run = project.create_run("cnn", teacher_id, {}, status="finished")
    # the student answers gold everywhere except on the first test example
    rows = [
        {"example": ex, "probs": [0.0, 0.0, 0.0], "label": (g + 1) % 3 if i == 0 else g}
        for i, (ex, _t, g) in enumerate(test)
    ]
    project.save_predictions(run, rows)
    for ex, _t, _g in test[:4]:
        project.set_review(ex, golden=True)
    project.update_settings(golden_floor=0.8)
    report = golden_report(project, run)
    assert report["run"] == run and report["n_golden"] == 4
    assert (
        report["student_accuracy"] == 0.75
        and report["below_floor"] is True
        and report["floor"] == 0.8
    )
    expected = sum(outputs[ex] == g for ex, _t, g in test[:4]) / 4
    assert report["teacher_accuracy"] == expected
    project.close()
