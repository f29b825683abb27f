"""``kdstudio demo`` end to end on a small sample in banking77's layout (the real sample takes
minutes; the same code path runs here in seconds), and resuming a finished demo."""

from __future__ import annotations

import csv
import json
import random

import pytest

from kdstudio.core.demo import DemoResult, demo, format_demo, sample_is_ready, write_few_gold_train
from kdstudio.core.events import Finished, Log, run_to_end
from kdstudio.core.store import Project

INTENTS = {
    "card_arrival": ["when will my card arrive", "my card has not arrived yet", "card still not here"],
    "exchange_rate": ["what is the exchange rate", "how much is a dollar in euro", "rate for pounds today"],
    "lost_card": ["i lost my card", "my card was stolen", "someone took my card"],
}
DESIGN_KEYS = {"run", "n_test", "teacher_accuracy", "student_accuracy", "agreement", "retention", "kl",
               "student_ece", "teacher_ece", "student_params", "teacher_params", "student_latency_ms_p50",
               "teacher_latency_ms_p50", "speedup", "student_size_mb", "hard_label_accuracy", "seconds"}


@pytest.fixture
def small_sample(tmp_path):
    rng = random.Random(0)
    folder = tmp_path / "sample"
    folder.mkdir()
    for name, n in (("train.csv", 30), ("test.csv", 8)):
        with (folder / name).open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "category"])
            for label, phrases in INTENTS.items():
                for i in range(n):
                    writer.writerow([f"{rng.choice(phrases)} {name[:-4]} {i}", label])
    return folder


def test_few_gold_copy_keeps_the_asked_number_of_labels_per_class(small_sample, tmp_path):
    kept = write_few_gold_train(small_sample / "train.csv", tmp_path / "few.csv", 4, seed=1)
    with (tmp_path / "few.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert kept == 12 and len(rows) == 90
    assert sorted(r["category"] for r in rows if r["category"]).count("lost_card") == 4


def test_demo_runs_the_whole_pipeline_and_a_rerun_resumes(small_sample, tmp_path):
    out = tmp_path / "demo"
    kwargs = {"sample": small_sample, "gold_per_class": 6, "epochs": 2, "speed": False}
    assert not sample_is_ready(out / "sample.kdproj")
    events = list(demo(out, **kwargs))
    assert sample_is_ready(out / "sample.kdproj")
    result = events[-1].result
    assert isinstance(events[-1], Finished)
    assert isinstance(result, DemoResult)
    assert DESIGN_KEYS - {"speedup", "student_latency_ms_p50", "teacher_latency_ms_p50", "student_params",
                          "teacher_params"} <= set(result.to_json())
    # demo --json: the KD run's report keys (student and seconds are the demo's), then the demo's own
    with Project(out / "sample.kdproj") as project:
        stored = project.evaluation(result.run)
    assert list(result.to_json()) == [*stored, "hard_label_run", "hard_label_accuracy", "project", "export",
                                      "gold_per_class"]
    assert {k: v for k, v in result.to_json().items() if k in stored and k != "seconds"} == \
        {k: v for k, v in stored.items() if k != "seconds"}
    assert result.hard_label_run != result.run
    assert (out / "student-onnx" / "model.onnx").is_file()
    marker = json.loads((out / "student-onnx" / "kdstudio.json").read_text())
    warned = [e.message for e in events if isinstance(e, Log) and "exporting the float model alone" in e.message]
    assert (marker["int8"] == "model_int8.onnx") != bool(warned)  # the int8 twin, or a line saying why not
    with Project(out / "sample.kdproj") as project:
        assert [r["config"]["hard_labels"] for r in project.runs()] == [False, True]
        assert project.split_counts()["unlabeled"] > 0  # the non-gold train rows
    assert "hard-label baseline" in format_demo(result)
    again = run_to_end(demo(out, **kwargs))  # every step found done: nothing is trained again
    assert again.run == result.run and again.hard_label_run == result.hard_label_run


def test_a_demo_whose_int8_model_falls_short_exports_the_float_model_and_says_so(small_sample, tmp_path,
                                                                                   monkeypatch):
    import kdstudio.core.export as export_module
    from kdstudio.core.export.int8 import Int8CheckFailed

    def short(*args, **kwargs):
        raise Int8CheckFailed("the int8 model agrees with the float one on at most 97.00% of 24 texts")
        yield  # a generator, as the real check is

    monkeypatch.setattr(export_module, "write_int8", short)
    events = list(demo(tmp_path / "demo", sample=small_sample, gold_per_class=6, epochs=1, speed=False))
    assert isinstance(events[-1], Finished)
    out = tmp_path / "demo" / "student-onnx"
    assert (out / "model.onnx").is_file() and not (out / "model_int8.onnx").exists()
    assert any(isinstance(e, Log) and e.level == "warning" and "97.00%" in e.message for e in events)


def test_a_rows_subset_is_seeded_keeps_the_header_and_quoted_commas(small_sample, tmp_path):
    from kdstudio.core.demo import write_subset

    source = tmp_path / "quoted.csv"
    with source.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "category"])
        writer.writerows([f"hello, row {i}", "a"] for i in range(50))
    first = write_subset(source, tmp_path / "one.csv", 10, seed=3)
    write_subset(source, tmp_path / "two.csv", 10, seed=3)
    rows = list(csv.DictReader((tmp_path / "one.csv").open()))
    assert first == 10 and len(rows) == 10 and rows[0]["text"].startswith("hello, row ")
    assert (tmp_path / "one.csv").read_text() == (tmp_path / "two.csv").read_text()
    assert write_subset(source, tmp_path / "all.csv", 500, seed=0) == 50


def test_demo_refuses_a_rows_count_below_one(small_sample, tmp_path):
    from kdstudio.core.errors import KDStudioError

    with pytest.raises(KDStudioError, match="--rows"):
        list(demo(tmp_path / "demo", sample=small_sample, rows=0))


def test_cli_demo_options_reach_the_job(monkeypatch):
    import kdstudio.core.demo as demo_module
    from kdstudio import cli

    seen = {}

    def fake_demo(out, **kwargs):
        seen.update(kwargs, out=out)
        yield Finished({})

    monkeypatch.setattr(demo_module, "demo", fake_demo)
    monkeypatch.setattr(demo_module, "format_demo", lambda r: "summary")
    assert cli.main(["demo", "--rows", "300", "--epochs", "1", "--gold-per-class", "5", "--student", "bilstm",
                     "--out", "somewhere"]) == 0
    assert seen["rows"] == 300 and seen["epochs"] == 1 and seen["gold_per_class"] == 5
    assert seen["student"] == "bilstm" and seen["out"] == "somewhere"


def test_a_sample_file_that_is_no_project_or_has_no_finished_run_is_not_ready(tmp_path):
    (tmp_path / "junk.kdproj").write_text("not a database")
    assert not sample_is_ready(tmp_path / "junk.kdproj")
    Project.create(tmp_path / "empty.kdproj", "classification").close()
    assert not sample_is_ready(tmp_path / "empty.kdproj")
