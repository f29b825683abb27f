"""Comparison-viewer queries: filters, sorts, paging, counts, confusion cells, staleness."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest

from kdstudio.core.evaluate.metrics import confusion_matrix
from kdstudio.core.store import SCHEMA_VERSION, Project, TeacherOutput

LABELS = ["neg", "neu", "pos"]
N = 300


@pytest.fixture
def compared(tmp_path):
    """A project with N test rows, a teacher, and a run whose predictions are known."""
    rng = np.random.default_rng(0)
    words = random.Random(0)
    project = Project.create(tmp_path / "v.kdproj", "classification", labels=LABELS)
    rows = []
    for i in range(N):
        text = " ".join(words.choices(["good", "bad", "fine", "movie", "plot"], k=4)) + f" {i}"
        if i == 7:
            text = "100% sure_thing Refund " + text
        gold = None if i % 10 == 9 else i % 3
        rows.append((text, gold, None, "test", "t", i, hashlib.sha1(text.encode()).hexdigest()))
    with project.transaction():
        project.insert_examples(rows)
    ids = [r[0] for r in project.examples("test")]
    teacher_id = project.upsert_teacher("x:t", "x", "t", "fp", {})
    teacher = rng.dirichlet(np.ones(3), N)
    project.save_outputs(
        teacher_id,
        [
            TeacherOutput(example=i, probs=t.tolist())
            for i, t in zip(ids[:-5], teacher, strict=False)
        ],
    )  # 5 unanswered
    run_id = project.create_run("bilstm", teacher_id, {}, status="finished")
    student = rng.dirichlet(np.ones(3), N)
    records = []
    for k, (i, s) in enumerate(zip(ids, student, strict=True)):
        top = np.sort(s)[::-1]
        records.append(
            {
                "example": i,
                "probs": s.tolist(),
                "label": int(s.argmax()),
                "confidence": float(top[0]),
                "margin": float(top[0] - top[1]),
                "entropy": float(-(s * np.log(s)).sum()),
                "kl": float((teacher[k] * np.log(teacher[k] / s)).sum()) if k < N - 5 else None,
            }
        )
    project.save_predictions(run_id, records)
    truth = {"ids": ids, "teacher": teacher, "student": student, "records": records}
    yield project, run_id, teacher_id, truth
    project.close()


def _all(project, run_id, **kw):
    rows, total = project.compare_page(run_id, limit=10_000, **kw)
    assert total == len(rows)
    return rows


def test_schema_has_the_viewer_table_and_indexes(compared):
    project = compared[0]
    assert project.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 2
    names = {r[0] for r in project.conn.execute("SELECT name FROM sqlite_master")}
    assert {"compare_rows", "compare_cache", "compare_rows_kl", "compare_rows_cell"} <= names


def test_rows_carry_both_sides_and_default_to_the_runs_teacher(compared):
    project, run_id, teacher_id, truth = compared
    rows, total = project.compare_page(run_id, sort="id", descending=False, limit=3)
    assert total == N and [r["example"] for r in rows] == truth["ids"][:3]
    first = rows[0]
    assert first["student_probs"] == pytest.approx(truth["student"][0].tolist())
    assert first["teacher_probs"] == pytest.approx(truth["teacher"][0].tolist(), abs=1e-6)
    assert first["student_label"] == int(truth["student"][0].argmax())
    assert first["teacher_label"] == int(truth["teacher"][0].argmax())
    assert first["gold"] == 0 and first["text"].endswith(" 0")
    assert project.compare_page(run_id, teacher_id, limit=3)[1] == N


def test_pages_follow_the_sort_without_overlap_or_gaps(compared):
    project, run_id, _, truth = compared
    for sort in ("kl", "margin", "entropy", "confidence", "teacher_confidence", "id"):
        for descending in (True, False):
            seen = []
            for offset in range(0, N, 64):
                page, _ = project.compare_page(
                    run_id,
                    sort=sort,
                    descending=descending,
                    offset=offset,
                    limit=64,
                    with_total=False,
                )
                seen += page
            assert sorted(r["example"] for r in seen) == sorted(truth["ids"])
            key = "example" if sort == "id" else sort
            values = [r[key] for r in seen if r[key] is not None]
            assert values == sorted(values, reverse=descending)
    kl_desc = _all(project, run_id, sort="kl")
    assert kl_desc[0]["kl"] == max(r["kl"] for r in truth["records"] if r["kl"] is not None)


def test_filters_match_a_python_reference(compared):
    project, run_id, _, truth = compared
    s_label = truth["student"].argmax(1)
    t_label = {
        i: int(t.argmax()) for i, t in zip(truth["ids"][:-5], truth["teacher"], strict=False)
    }
    gold = {r["example"]: r["gold"] for r in _all(project, run_id, sort="id")}
    ids = truth["ids"]
    cases = {
        "disagreement": (
            {"disagreement": True},
            {i for k, i in enumerate(ids) if i in t_label and s_label[k] != t_label[i]},
        ),
        "agreement": (
            {"disagreement": False},
            {i for k, i in enumerate(ids) if i in t_label and s_label[k] == t_label[i]},
        ),
        "cell": (
            {"student_label": 2, "teacher_label": 0},
            {i for k, i in enumerate(ids) if s_label[k] == 2 and t_label.get(i) == 0},
        ),
        "gold wrong": (
            {"gold": "wrong"},
            {i for k, i in enumerate(ids) if gold[i] is not None and s_label[k] != gold[i]},
        ),
        "gold right": ({"gold": "right"}, {i for k, i in enumerate(ids) if s_label[k] == gold[i]}),
        "class": ({"gold_label": 1}, {i for i in ids if gold[i] == 1}),
        "confidence": (
            {"confidence": (0.5, 0.7)},
            {r["example"] for r in truth["records"] if 0.5 <= r["confidence"] <= 0.7},
        ),
        "kl": (
            {"kl": (0.3, None)},
            {r["example"] for r in truth["records"] if r["kl"] is not None and r["kl"] >= 0.3},
        ),
    }
    for name, (filters, expected) in cases.items():
        got = {r["example"] for r in _all(project, run_id, filters=filters)}
        assert got == expected, name
        assert project.compare_count(run_id, filters=filters) == len(expected), name
    both = _all(
        project, run_id, filters={"disagreement": True, "gold": "wrong", "confidence": (None, 0.6)}
    )
    assert all(r["student_label"] != r["teacher_label"] and r["confidence"] <= 0.6 for r in both)


def test_text_search_is_case_insensitive_and_takes_wildcards_literally(compared):
    project, run_id, _, truth = compared
    assert [r["example"] for r in _all(project, run_id, filters={"text": "refund"})] == [
        truth["ids"][7]
    ]
    assert len(_all(project, run_id, filters={"text": "100%"})) == 1
    assert len(_all(project, run_id, filters={"text": "100_"})) == 0  # "_" is not a wildcard
    assert len(_all(project, run_id, filters={"text": "sure_thing"})) == 1
    assert (
        len(_all(project, run_id, filters={"text": "MOVIE"}))
        == project.compare_count(run_id, filters={"text": "movie"})
        > 1
    )


def test_text_search_gives_the_same_rows_for_rare_and_common_terms(compared, monkeypatch):
    from kdstudio.core.store import viewer

    project, run_id, _, _ = compared
    listed = _all(project, run_id, filters={"text": "movie"})
    monkeypatch.setattr(viewer, "TEXT_LIST_MAX", 3)  # "movie" now counts as a common term
    walked = _all(project, run_id, filters={"text": "movie"})
    assert [r["example"] for r in walked] == [r["example"] for r in listed] and len(listed) > 3
    assert len(_all(project, run_id, filters={"text": "100%"})) == 1


def test_confusion_counts_match_the_metric_function(compared):
    project, run_id, _, truth = compared
    s = truth["student"].argmax(1)
    t = truth["teacher"][: N - 5].argmax(1)
    assert project.confusion_counts(run_id) == confusion_matrix(s[: N - 5], t, 3)
    gold = [r["gold"] for r in _all(project, run_id, sort="id", descending=False)]
    has = [g is not None for g in gold]
    assert project.confusion_counts(run_id, against="gold") == confusion_matrix(
        s[has], [g for g in gold if g is not None], 3
    )
    with pytest.raises(ValueError):
        project.confusion_counts(run_id, against="nobody")


def test_viewer_rows_follow_new_teacher_answers_predictions_and_gold(compared):
    project, run_id, teacher_id, truth = compared
    assert project.compare_count(run_id, filters={"teacher_label": 1}) >= 0
    last = truth["ids"][-1]
    project.save_outputs(teacher_id, [TeacherOutput(example=last, probs=[0.0, 1.0, 0.0])])
    row = next(r for r in _all(project, run_id, sort="id") if r["example"] == last)
    assert row["teacher_label"] == 1
    project.save_predictions(run_id, [{**truth["records"][-1], "label": 1, "kl": 9.0}])
    assert _all(project, run_id, sort="kl")[0]["example"] == last
    with project.transaction():
        project.conn.execute("UPDATE examples SET label = 2 WHERE id = ?", (last,))
    assert _all(project, run_id, sort="kl")[0]["gold"] == 2


def test_reviews_show_in_the_rows_and_bad_arguments_are_errors(compared):
    project, run_id, _, truth = compared
    project.set_review(truth["ids"][0], corrected_label=2, note="sarcasm")
    row = _all(project, run_id, sort="id", descending=False)[0]
    assert (row["corrected_label"], row["note"]) == (2, "sarcasm")
    with pytest.raises(ValueError, match="unknown sort"):
        project.compare_page(run_id, sort="text")
    with pytest.raises(ValueError, match="unknown viewer filters"):
        project.compare_page(run_id, filters={"colour": "red"})
