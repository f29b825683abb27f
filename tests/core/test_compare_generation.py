"""The generation comparison as core functions: the rows the viewer shows (prompt, the student's and
the teacher's completions, every reference, the scores), its filters, search and sort, the word
diff and the export of the visible rows."""

from __future__ import annotations

import csv
import json

import pytest
from fakes.generation_review_project import build_generation_project

from kdstudio.core.errors import ConfigError
from kdstudio.core.evaluate.compare_generation import (
    GenerationCompareData,
    GenerationFilters,
    excerpt,
    generation_counts,
    load_generation_compare,
    prepare_generation_compare,
    query_generation,
    word_diff,
)
from kdstudio.core.events import Finished
from kdstudio.core.export.compare_generation import REFERENCE_SEPARATOR, write_generation_view
from kdstudio.core.store import Project


@pytest.fixture
def generation(tmp_path):
    return build_generation_project(tmp_path)


def _data(path, run) -> GenerationCompareData:
    with Project(path) as project:
        return load_generation_compare(project, run)


def test_the_job_reads_every_scored_prompt_with_its_teacher_completion_and_all_references(generation):
    path, run = generation
    events = list(prepare_generation_compare(path, None))
    data = events[-1].result
    assert isinstance(events[-1], Finished) and isinstance(data, GenerationCompareData)
    assert data.run == run and data.teacher_spec == "recorded:e2e"
    assert {r.split for r in data.rows} == {"valid", "test"}
    assert len(data.rows) == 12  # 24 prompts: 6 valid, 6 test; train has no predictions
    row = data.rows[0]
    assert row.prompt.startswith("name[") and row.teacher and row.student
    assert len(row.references) == 3 and row.references[0] != row.references[1]
    assert set(row.teacher_scores) == {"rouge_l", "chrf", "exact", "length_ratio"}
    assert row.score == row.teacher_scores["rouge_l"]
    assert data.to_json()["rows"][0]["references"] == list(row.references)


def test_a_classification_project_or_a_missing_run_is_one_clear_error(tmp_path, generation):
    from fakes.tiny_models import build_toy_project

    with pytest.raises(ConfigError, match="classification"):
        toy = tmp_path / "toy.kdproj"
        build_toy_project(toy)
        list(prepare_generation_compare(toy, None))
    with pytest.raises(ConfigError, match="no run #99"):
        list(prepare_generation_compare(generation[0], 99))


def test_rows_come_lowest_score_first_and_filter_by_split_text_score_and_worst(generation):
    data = _data(*generation)
    page = query_generation(data, GenerationFilters())
    scores = [r.score for r in page.rows]
    assert len(page.rows) == page.total == 6 and all(r.split == "test" for r in page.rows)
    assert scores == sorted(scores) and scores[0] < 0.5 and scores[-1] == 1.0
    both = query_generation(data, GenerationFilters(splits=("test", "valid")), sort="score", descending=True)
    assert [r.score for r in both.rows] == sorted((r.score for r in both.rows), reverse=True) and both.total == 12
    station = query_generation(data, GenerationFilters(splits=("test", "valid"), text="STATION"))
    assert station.rows and all("station" in r.student for r in station.rows)
    assert len(station.rows) < both.total
    by_reference = query_generation(data, GenerationFilters(text="is a cheap"))  # only in a reference
    assert by_reference.rows and all(any("is a cheap" in ref for ref in r.references) for r in by_reference.rows)
    high = query_generation(data, GenerationFilters(score=(0.9, None)))
    assert high.rows and all(r.score >= 0.9 for r in high.rows)
    worst = query_generation(data, GenerationFilters(splits=("test", "valid"), worst=3), sort="id")
    assert len(worst.rows) == 3 and [r.example for r in worst.rows] == sorted(r.example for r in worst.rows)
    assert max(r.score for r in worst.rows) <= min(r.score for r in both.rows if r not in worst.rows)
    with pytest.raises(ConfigError, match="unknown split"):
        query_generation(data, GenerationFilters(splits=("unlabeled",)))


def test_review_marks_filter_and_count(generation):
    path, run = generation
    data = _data(path, run)
    first, second = (r.example for r in query_generation(data, GenerationFilters()).rows[:2])
    with Project(path) as project:
        project.set_review(first, corrected_completion="The Eagle is a cheap place.")
        project.set_review(second, golden=True, exclude=True)
        reviews = project.reviews()
    corrected = query_generation(data, GenerationFilters(review="corrected"), reviews)
    assert [r.example for r in corrected.rows] == [first]
    assert [r.example for r in query_generation(data, GenerationFilters(review="golden"), reviews).rows] == [second]
    assert len(query_generation(data, GenerationFilters(review="unreviewed"), reviews).rows) == 4
    # the search looks in a person's corrected completion too
    assert [r.example for r in query_generation(data, GenerationFilters(text="a cheap place"), reviews).rows] == [first]
    counts = generation_counts(data, reviews)
    assert (counts.rows, counts.scored, counts.reviewed, counts.corrected, counts.golden, counts.excluded) == \
        (6, 6, 2, 1, 1, 1)
    assert 0 < counts.mean_score < 1


def test_word_diff_marks_what_the_student_left_out_and_added():
    diff = word_diff("The Eagle serves cheap Italian food", "The Eagle serves French food in the centre")
    assert diff == [("equal", "The Eagle serves"), ("delete", "French"), ("insert", "cheap Italian"),
                    ("equal", "food"), ("delete", "in the centre")]
    assert word_diff("same words", "same  words") == [("equal", "same words")]
    assert word_diff(None, "only the teacher") == [("delete", "only the teacher")]
    assert excerpt("a\nlong   text " * 20, 20).endswith("…") and len(excerpt("a " * 50, 20)) <= 20


def test_the_visible_rows_export_as_csv_and_json_lines(generation, tmp_path):
    path, run = generation
    data = _data(path, run)
    rows = query_generation(data, GenerationFilters()).rows[:4]
    reviews = {rows[0].example: {"corrected_completion": "=fixed", "exclude": False, "golden": True, "note": "n"}}
    assert write_generation_view(rows, reviews, tmp_path / "out.csv") == 4
    with (tmp_path / "out.csv").open(encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert [int(r["example"]) for r in table] == [r.example for r in rows]
    assert table[0]["corrected_completion"] == "'=fixed"  # a spreadsheet never runs it as a formula
    assert table[0]["references"].split(REFERENCE_SEPARATOR) == list(rows[0].references)
    assert float(table[0]["rouge_l_teacher"]) == rows[0].teacher_scores["rouge_l"]
    assert float(table[0]["chrf_references"]) == rows[0].reference_scores["chrf"]
    assert write_generation_view(rows, reviews, tmp_path / "out.jsonl") == 4
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert records[0]["references"] == list(rows[0].references) and records[0]["golden"] is True
    assert records[0]["student_completion"] == rows[0].student and records[0]["teacher_completion"] == rows[0].teacher
    assert records[1]["scores"]["references"] == rows[1].reference_scores
