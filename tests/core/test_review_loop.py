"""The review loop: what a person marks in the comparison viewer changes the next run and the
evaluation — corrected labels on the transfer set train the student, on the test set they are
the gold label; excluded rows are left out of both."""

from __future__ import annotations

import json

from fakes.tiny_models import build_toy_project

from kdstudio.core.evaluate import evaluate
from kdstudio.core.events import run_to_end
from kdstudio.core.store import Project
from kdstudio.core.train import TrainConfig, train

FAST = {"student": "cnn", "epochs": 1, "batch_size": 16, "num_threads": 1}


def test_the_viewer_lists_the_transfer_set_and_reviews_there_reach_the_next_run(tmp_path):
    path = tmp_path / "toy.kdproj"
    build_toy_project(path)[0].close()
    first = run_to_end(train(path, TrainConfig(**FAST))).run
    with Project(path) as project:
        n_test = len(project.examples("test"))
        n_transfer = len(project.examples("train")) + len(project.examples("unlabeled"))
        _test_rows, total_test = project.compare_page(first, filters={"split": ["test"]}, limit=1000)
        transfer, total_transfer = project.compare_page(first, filters={"split": ["train", "unlabeled"]},
                                                        limit=5)
        assert total_test == n_test and total_transfer == n_transfer
        assert sum(sum(r) for r in project.confusion_counts(first)) == n_test  # the test split by default
        # a person corrects the teacher on two transfer rows and excludes a third
        for row in transfer[:2]:
            project.set_review(row["example"], corrected_label=(row["teacher_label"] + 1) % 3)
        project.set_review(transfer[2]["example"], exclude=True)
    second = run_to_end(train(path, TrainConfig(**FAST)))
    assert second.reviews_used == 3
    with Project(path) as project:
        assert project.run(second.run)["summary"]["reviews_used"] == 3


def test_evaluation_takes_corrected_test_labels_as_gold_and_leaves_excluded_rows_out(tmp_path):
    path = tmp_path / "toy.kdproj"
    build_toy_project(path)[0].close()
    run = run_to_end(train(path, TrainConfig(**FAST))).run
    before = run_to_end(evaluate(path, run, speed=False))
    with Project(path) as project:
        preds = {p["example"]: p["label"] for p in project.predictions(run, split="test")}
        test = project.examples("test")
        wrong = [ex for ex, _t, gold in test if preds[ex] != gold]
        right = [ex for ex, _t, gold in test if preds[ex] == gold]
        # mark one wrong answer's gold as what the student said, and exclude one right answer
        project.set_review(wrong[0], corrected_label=preds[wrong[0]])
        project.set_review(right[0], exclude=True)
    after = run_to_end(evaluate(path, run, speed=False))
    assert after.n_test == before.n_test - 1
    assert after.reviews_applied == {"corrected": 1, "excluded": 1}
    hits_before = round(before.student_accuracy * before.n_gold)
    # one wrong answer became right (+1) and one right answer left the set (-1)
    assert round(after.student_accuracy * after.n_gold) == hits_before
    assert after.n_gold == before.n_gold - 1


def test_review_and_sweep_commands(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "toy.kdproj"
    build_toy_project(path)[0].close()

    def kd(*args):
        return subprocess.run([sys.executable, "-m", "kdstudio", *args], capture_output=True, text=True)

    out = kd("review", str(path), "3", "--label", "weather", "--golden", "--json")
    assert out.returncode == 0, out.stderr
    review = json.loads(out.stdout)["review"]
    assert review["golden"] and review["corrected_label"] == 1
    bad = kd("review", str(path), "3", "--label", "nope")
    assert bad.returncode == 2 and "unknown label 'nope'" in bad.stderr
    out = kd("sweep", str(path), "--students", "cnn", "--epochs", "1", "--no-speed", "--json")
    assert out.returncode == 0, out.stderr
    runs = json.loads(out.stdout)["runs"]
    assert [r["student"] for r in runs] == ["cnn"] and runs[0]["student_accuracy"] is not None


def test_a_review_is_merged_by_one_rule_whatever_the_order_of_the_changes(tmp_path):
    """The store merges: the fields given change, the others keep their value, and a review left
    with nothing in it is removed — the rule the viewer and ``kdstudio review`` both write by."""
    import itertools

    project, _teacher = build_toy_project(tmp_path / "toy.kdproj")
    steps = [{"golden": True}, {"corrected_label": 2}, {"note": "sarcasm"}, {"exclude": True}]
    examples = [ex for ex, _t, _g in project.examples("train")]
    finals = []
    for ex, order in zip(examples, itertools.permutations(steps), strict=False):
        for step in order:
            project.set_review(ex, **step)
        finals.append(project.review(ex))
    assert len(finals) == 24
    assert all(f == {"corrected_label": 2, "corrected_completion": None, "exclude": True, "golden": True, "note": "sarcasm"} for f in finals)
    ex = examples[0]
    assert project.set_review(ex, exclude=False, golden=False) == {
        "corrected_label": 2, "corrected_completion": None, "exclude": False, "golden": False, "note": "sarcasm"}
    assert project.set_review(ex, corrected_label=None, note="") is None  # nothing left: no review
    assert ex not in project.reviews() and project.review(ex) is None
    assert project.set_review(ex) is None and ex not in project.reviews()  # nothing given, nothing stored
    project.close()


def test_the_review_command_merges_into_the_stored_review_as_the_viewer_does(tmp_path, capsys):
    from kdstudio.cli import main

    path = tmp_path / "toy.kdproj"
    build_toy_project(path)[0].close()

    def review(*flags: str) -> dict | None:
        assert main(["review", str(path), "3", *flags, "--json"]) == 0
        return json.loads(capsys.readouterr().out)["review"]

    assert review("--golden") == {"corrected_label": None, "corrected_completion": None, "exclude": False, "golden": True, "note": None}
    assert review("--label", "money") == {"corrected_label": 2, "corrected_completion": None, "exclude": False, "golden": True, "note": None}
    with Project(path) as project:  # what the viewer's X does: only that flag changes
        project.set_review(3, exclude=True)
    assert review("--note", "sarcasm", "--no-golden") == {
        "corrected_label": 2, "corrected_completion": None, "exclude": True, "golden": False, "note": "sarcasm"}
    assert review() == {"corrected_label": 2, "corrected_completion": None, "exclude": True, "golden": False, "note": "sarcasm"}  # no flags: shown
    assert review("--clear") is None
    assert main(["review", str(path), "3", "--exclude"]) == 0 and "exclude" in capsys.readouterr().out
    assert main(["review", str(path), "3", "--no-exclude"]) == 0
    assert "not reviewed" in capsys.readouterr().out
    with Project(path) as project:
        assert project.review(3) is None


def test_training_validation_evaluation_and_the_golden_set_apply_reviews_by_one_rule(tmp_path):
    """On every split an excluded example is left out and a corrected label replaces gold; what
    training, validation, evaluation and the golden set see is ``Project.reviewed_examples``."""
    from fakes.tiny_models import make_compare_project

    from kdstudio.core.evaluate.golden import golden_report
    from kdstudio.core.evaluate.report import quality_report
    from kdstudio.core.train.data import load_training_data

    path, run = make_compare_project(tmp_path)
    with Project(path) as project:
        teacher = project.default_teacher()
        teacher_label = {o["id"]: o["label"] for o in project.teacher_outputs(teacher)}
        corrected, excluded = {}, set()
        for split in ("train", "valid", "test"):
            (a, _ta, gold_a), (b, _tb, _gold_b) = project.examples(split)[:2]
            corrected[a] = (gold_a + 1) % 3
            excluded.add(b)
            project.set_review(a, corrected_label=corrected[a], golden=True)
            project.set_review(b, exclude=True, golden=True)
        seen = {split: project.reviewed_examples(split).labels() for split in ("train", "valid", "test")}
        for split, labels in seen.items():
            gold = {ex: g for ex, _t, g in project.examples(split)}
            assert labels == {ex: corrected.get(ex, g) for ex, g in gold.items() if ex not in excluded}, split

        data = load_training_data(project, teacher_id=teacher, hard_labels=False, seed=0)
        assert dict(zip(data.train.ids, data.train.gold.tolist(), strict=True)) == seen["train"]
        assert dict(zip(data.valid.ids, data.valid.gold.tolist(), strict=True)) == seen["valid"]
        assert data.reviews_used == 2
        (train_fix,) = set(corrected) & set(data.train.ids)
        one_hot = [float(i == corrected[train_fix]) for i in range(3)]
        assert data.train.teacher[data.train.ids.index(train_fix)].tolist() == one_hot

        report, _data = quality_report(project, run, project.run(run))
        predicted = {p["example"]: p["label"] for p in project.predictions(run, split="test")}
        assert report["n_test"] == report["n_gold"] == len(seen["test"])
        assert report["reviews_applied"] == {"corrected": 1, "excluded": 1}
        expected = sum(predicted[ex] == label for ex, label in seen["test"].items()) / len(seen["test"])
        assert report["student_accuracy"] == expected

        golden = golden_report(project, run)
        assert golden["n_golden"] == 6  # excluded golden examples count as marked, but are not scored
        assert golden["n_teacher"] == 3 and golden["n_student"] == 1  # the run predicted the test split only
        assert golden["teacher_accuracy"] == sum(teacher_label[ex] == label for ex, label in corrected.items()) / 3
