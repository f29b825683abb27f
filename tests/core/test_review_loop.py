"""The review loop: what a person marks in the comparison viewer changes the next run and the
evaluation — corrected labels on the transfer set train the student, on the test set they are
the gold label; excluded rows are left out of both."""

from __future__ import annotations

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
    import json
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
