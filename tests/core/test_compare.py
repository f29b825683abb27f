"""The comparison of a run with its teacher as core jobs: the typed filters, the job that prepares
the viewer and the export the viewer and ``kdstudio compare`` share (CSV and JSON Lines)."""

from __future__ import annotations

import csv
import json

import pytest
from fakes.tiny_models import LABELS, make_compare_project

from kdstudio.core.errors import ConfigError
from kdstudio.core.evaluate.compare import CompareData, CompareFilters, prepare_compare
from kdstudio.core.events import Finished, run_to_end
from kdstudio.core.export.compare import (
    CompareExportConfig,
    CompareExportResult,
    export_compare,
    write_rows,
)
from kdstudio.core.store import Project


@pytest.fixture
def compared(tmp_path):
    return make_compare_project(tmp_path)


def test_filters_round_trip_through_the_store_form_and_resolve_label_names():
    store = {"split": ["test"], "disagreement": True, "confidence": (0.5, None), "gold_label": 1}
    filters = CompareFilters.from_store(store)
    assert filters.splits == ("test",) and filters.disagreement is True and filters.confidence == (0.5, None)
    assert filters.store_filters() == store
    named = CompareFilters(student_label="money", teacher_label=0)
    assert named.store_filters({name: i for i, name in enumerate(LABELS)}) == {
        "split": ["test"], "student_label": 2, "teacher_label": 0}
    with pytest.raises(ConfigError, match="unknown label 'nope'"):
        CompareFilters(gold_label="nope").store_filters({"a": 0})
    with pytest.raises(ConfigError, match="unknown comparison filters: colour"):
        CompareFilters.from_store({"colour": "red"})


def test_prepare_compare_builds_the_table_and_finishes_with_a_typed_result(compared):
    path, run = compared
    events = list(prepare_compare(path, run))
    assert isinstance(events[-1], Finished)
    result = events[-1].result
    assert isinstance(result, CompareData)
    with Project(path) as project:
        assert result.teacher == project.default_teacher()
    assert result.run == run and result.rows == 40 and result.teacher_spec == "fake:teacher"
    assert result.rationales == {}  # the fake teacher gives none


def test_export_writes_the_filtered_rows_in_the_viewers_order(compared, tmp_path):
    path, run = compared
    out = tmp_path / "rows" / "disagreements.jsonl"
    config = CompareExportConfig(out=str(out), filters=CompareFilters(disagreement=True), sort="margin",
                                 descending=False)
    result = run_to_end(export_compare(path, config))
    assert isinstance(result, CompareExportResult)
    assert result.run == run and result.format == "jsonl" and result.rows == 10 and result.out == str(out)
    assert result.filters == {"split": ["test"], "disagreement": True}
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 10 and all(x["student_label"] != x["teacher_label"] for x in lines)
    margins = [x["margin"] for x in lines]
    assert margins == sorted(margins)
    assert set(lines[0]["teacher_probabilities"]) == set(LABELS)


def test_export_takes_the_format_from_the_file_name_and_refuses_others(compared, tmp_path):
    path, _run = compared
    result = run_to_end(export_compare(path, CompareExportConfig(out=str(tmp_path / "all.csv"))))
    assert result.format == "csv" and result.rows == 40
    with (tmp_path / "all.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 40 and f"student_p_{LABELS[0]}" in rows[0]
    with pytest.raises(ConfigError, match="csv or jsonl"):
        run_to_end(export_compare(path, CompareExportConfig(out=str(tmp_path / "x.csv"), format="xlsx")))
    with pytest.raises(ConfigError, match="no run #99"):
        run_to_end(export_compare(path, CompareExportConfig(out=str(tmp_path / "x.csv"), run=99)))


def test_csv_export_neutralises_formulas(tmp_path):
    row = {
        "example": 1,
        "text": '=HYPERLINK("x")',
        "gold": 0,
        "teacher_label": 0,
        "teacher_confidence": 0.9,
        "student_label": 0,
        "confidence": 0.8,
        "kl": 0.1,
        "margin": 0.5,
        "entropy": 0.3,
        "teacher_probs": [0.9, 0.1],
        "student_probs": [0.8, 0.2],
        "corrected_label": None,
        "note": "+1",
    }
    write_rows([row], ["a", "b"], tmp_path / "x.csv", "csv")
    with (tmp_path / "x.csv").open(newline="", encoding="utf-8") as f:
        record = next(csv.DictReader(f))
    assert record["text"].startswith("'=") and record["note"] == "'+1"


def test_compare_command_writes_what_the_viewer_exports_and_prints_the_typed_result(compared, tmp_path, capsys):
    from kdstudio.cli import main

    path, run = compared
    out = tmp_path / "cell.jsonl"
    assert main(["compare", str(path), "--out", str(out), "--disagreements", "--student-label", "money",
                 "--sort", "id", "--ascending", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"run", "teacher", "out", "format", "rows", "filters", "seconds"}
    assert printed["run"] == run and printed["format"] == "jsonl" and printed["out"] == str(out)
    assert printed["filters"] == {"split": ["test"], "disagreement": True, "student_label": 2}
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == printed["rows"] > 0
    assert all(x["student_label"] == "money" and x["teacher_label"] != "money" for x in lines)
    assert [x["example"] for x in lines] == sorted(x["example"] for x in lines)
    # the same rows as the job with the same typed config
    config = CompareExportConfig(out=str(tmp_path / "job.jsonl"), sort="id", descending=False,
                                 filters=CompareFilters(disagreement=True, student_label="money"))
    assert run_to_end(export_compare(path, config)).rows == printed["rows"]
    assert (tmp_path / "job.jsonl").read_text(encoding="utf-8") == out.read_text(encoding="utf-8")


def test_compare_command_reads_the_transfer_set_and_says_what_is_wrong_in_one_line(compared, tmp_path, capsys):
    from kdstudio.cli import main

    path, _run = compared
    assert main(["compare", str(path), "--out", str(tmp_path / "t.csv"), "--split", "train,unlabeled"]) == 0
    assert "wrote 0 rows of run" in capsys.readouterr().out  # the stored run predicted the test split only
    assert main(["compare", str(path), "--out", str(tmp_path / "x.csv"), "--gold-label", "nope"]) == 2
    assert "unknown label 'nope'" in capsys.readouterr().err
    assert main(["compare", str(path), "--out", str(tmp_path / "x.csv"), "--split", "tset"]) == 2
    assert "unknown split 'tset'" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
