"""A new project in one job (the wizard's): the validation split is made once every file is in,
whatever split the training file was given, and the plan reports exactly the counts the project gets."""

from __future__ import annotations

import sqlite3

import pytest

from kdstudio.core.data import DataFile, check_splits, create_project, plan_project
from kdstudio.core.data.importer import NO_LABEL_COLUMN
from kdstudio.core.errors import DataError
from kdstudio.core.events import run_to_end


def write_trec(path, n, seed=0):
    labels = ("DESC:def", "HUM:ind", "LOC:city", "NUM:date")
    path.write_bytes("".join(f"{labels[i % 4]} What about question {seed}-{i} ?\n"
                             for i in range(n)).encode("latin-1"))
    return path


def stored_counts(path):
    with sqlite3.connect(path) as conn:
        counts = dict.fromkeys(("train", "valid", "test", "unlabeled"), 0)
        counts.update(conn.execute("SELECT split, COUNT(*) FROM examples GROUP BY split"))
    conn.close()
    return counts


@pytest.mark.parametrize("split", ["auto", "train"])
def test_a_training_file_gets_the_promised_validation_split_whatever_its_split(tmp_path, split):
    files = [DataFile(str(write_trec(tmp_path / "TREC.train", 200)), split),
             DataFile(str(write_trec(tmp_path / "TREC.test", 40, seed=1)))]
    plan = run_to_end(plan_project("classification", files, valid_fraction=0.1))
    made = run_to_end(create_project(tmp_path / "p.kdproj", "classification", files, valid_fraction=0.1))
    assert plan.splits == made.splits == stored_counts(tmp_path / "p.kdproj")
    assert made.splits == {"train": 180, "valid": 20, "test": 40, "unlabeled": 0} and made.valid_carved == 20
    assert [f.splits for f in plan.files] == [f.splits for f in made.files] == [
        {"train": 180, "valid": 20, "test": 0, "unlabeled": 0}, {"train": 0, "valid": 0, "test": 40, "unlabeled": 0}]
    assert check_splits(made, "classification") == []
    assert not list(tmp_path.glob("plan*")) and sorted(p.name for p in tmp_path.iterdir()) == [
        "TREC.test", "TREC.train", "p.kdproj"]


def test_a_validation_file_means_nothing_is_carved(tmp_path):
    files = [DataFile(str(write_trec(tmp_path / "train.txt", 100))), DataFile(str(write_trec(tmp_path / "dev.txt", 20, 1)))]
    made = run_to_end(plan_project("classification", files))
    assert made.splits["valid"] == 20 and made.splits["train"] == 100 and made.valid_carved == 0


def test_check_splits_names_what_stops_a_project(tmp_path):
    only_test = [DataFile(str(write_trec(tmp_path / "TREC.test", 40)))]
    problems = check_splits(run_to_end(plan_project("classification", only_test)), "classification")
    assert [p.blocking for p in problems] == [True]
    assert problems[0].message.startswith("No training rows (TREC.test: 40 test)")
    assert "the name says test; set the split to train" in problems[0].message

    no_test = run_to_end(plan_project("classification", [DataFile(str(write_trec(tmp_path / "a.txt", 40)))]))
    assert [(p.blocking, p.message[:13]) for p in check_splits(no_test, "classification")] == [(False, "No test rows:")]

    unlabelled = [DataFile(str(write_trec(tmp_path / "q.txt", 40)))]
    plan = run_to_end(plan_project("classification", unlabelled, label_col=NO_LABEL_COLUMN))
    assert plan.splits["unlabeled"] == 40 and plan.labels == []
    assert check_splits(plan, "classification")[0].message.startswith("No labels to learn from")

    no_valid = run_to_end(plan_project("classification", unlabelled, valid_fraction=0))
    assert any(p.blocking and p.message.startswith("No validation rows") for p in check_splits(no_valid,
                                                                                                "classification"))


def test_a_failed_plan_leaves_nothing_behind_and_says_why(tmp_path):
    bad = tmp_path / "one.csv"
    bad.write_text("text,label\nx,a\ny,a\n")
    with pytest.raises(DataError, match="single class"):
        run_to_end(plan_project("classification", [DataFile(str(bad))]))
    with pytest.raises(DataError, match="validation share"):
        run_to_end(create_project(tmp_path / "p.kdproj", "classification", [DataFile(str(bad))], valid_fraction=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.csv"]
